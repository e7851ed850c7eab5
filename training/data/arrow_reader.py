"""The pyarrow backend: read a snapshot's Parquet files row group by row group.

Small tables (nodes, the run manifest) are read whole with `read_files`, partition columns restored
from the snapshot's add actions. Training data streams through `ArrowExampleReader`: every rank
plans the same (seeded, optionally shuffled) order of row groups and takes one contiguous, balanced
range of its rows, so each example is read exactly once per epoch across ranks.

Throughput: `workers` threads decode row groups in parallel (in order), and a background thread
re-batches, shuffles and (for a GPU) pins the batches, so the training loop only issues copies.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from functools import partial
from typing import Iterator, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import torch

from training.data.arrow_columns import table_to_numpy
from training.data.batching import EpochOptions, ordered_map, prefetch, rebatch
from training.data.snapshot import DataFile, Snapshot


def _open(uri: str) -> pq.ParquetFile:
    fs, path = pafs.FileSystem.from_uri(uri)
    return pq.ParquetFile(fs.open_input_file(path))


def read_files(snapshot: Snapshot, files: Sequence[DataFile], columns: Optional[Sequence[str]] = None) -> pa.Table:
    """The rows of `files` (all of one snapshot) as one table, partition columns restored."""
    columns = list(columns) if columns is not None else snapshot.schema.names
    stored = [c for c in columns if c not in snapshot.partition_columns]
    parts = []
    for f in files:
        t = _open(f.uri).read(columns=stored)
        for c in columns:
            if c in snapshot.partition_columns:
                typ = snapshot.schema.field(c).type
                t = t.append_column(c, pa.array([f.partition[c]] * t.num_rows, pa.string()).cast(typ))
        parts.append(t.select(columns))
    if not parts:
        return snapshot.schema.empty_table().select(columns)
    return pa.concat_tables(parts)


@dataclass(frozen=True)
class RowGroup:
    uri: str
    index: int
    rows: int


def plan_row_groups(files: Sequence[DataFile]) -> list[RowGroup]:
    """Every row group of `files`, from the Parquet footers (one small read per file)."""
    out: list[RowGroup] = []
    for f in files:
        meta = _open(f.uri).metadata
        out.extend(RowGroup(f.uri, i, meta.row_group(i).num_rows) for i in range(meta.num_row_groups))
    return out


def shard_slices(groups: Sequence[RowGroup], rank: int, world: int) -> list[tuple[RowGroup, int, int]]:
    """(row group, start, stop) pieces of rank's contiguous share [total*rank//world, total*(rank+1)//world)."""
    total = sum(g.rows for g in groups)
    lo, hi = total * rank // world, total * (rank + 1) // world
    out, offset = [], 0
    for g in groups:
        start, stop = max(lo, offset), min(hi, offset + g.rows)
        if start < stop:
            out.append((g, start - offset, stop - offset))
        offset += g.rows
    return out


class ArrowExampleReader:
    """One epoch of fixed-size batches (dict of CPU tensors) from a list of Parquet files."""

    def __init__(self, files: Sequence[DataFile], columns: Sequence[str], options: EpochOptions, *,
                 pin_memory: bool = False, groups: Optional[Sequence[RowGroup]] = None):
        self.columns = list(columns)
        self.options = options
        self.pin_memory = pin_memory
        self.groups = list(groups) if groups is not None else plan_row_groups(files)

    def _chunks(self) -> Iterator[dict[str, np.ndarray]]:
        o = self.options
        order = list(self.groups)
        if o.shuffle:
            random.Random(o.seed).shuffle(order)  # same seed on every rank: one global order
        return ordered_map(partial(read_piece_numpy, columns=self.columns), shard_slices(order, o.rank, o.world), o.workers)

    def _batches(self) -> Iterator[dict[str, torch.Tensor]]:
        o = self.options
        rng = np.random.default_rng(o.seed) if o.shuffle else None
        return rebatch(self._chunks(), o.batch_size, shuffle_buffer=o.shuffle_buffer, rng=rng,
                       drop_last=o.drop_last, pin_memory=self.pin_memory)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        yield from prefetch(self._batches(), 2)


def read_piece(piece: tuple[RowGroup, int, int], columns: Sequence[str]) -> pa.Table:
    """Rows [start, stop) of one row group, as Arrow."""
    g, start, stop = piece
    return _open(g.uri).read_row_group(g.index, columns=list(columns)).slice(start, stop - start)


def read_piece_numpy(piece: tuple[RowGroup, int, int], columns: Sequence[str]) -> dict[str, np.ndarray]:
    """Rows [start, stop) of one row group as numpy columns (lists as 2-D arrays)."""
    g = piece[0]
    return table_to_numpy(read_piece(piece, columns), columns, f"{g.uri} row group {g.index}")
