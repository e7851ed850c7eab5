"""Device-resident training data: the sampled graph as a node-indexed table, a split's rows decoded once.

The streaming path decodes every example's 2 x k neighbour ids from Parquet on the host each epoch,
although gold.neighbors holds each node's list once (an impression log repeats a node's list once
per impression). Here:

- `ResidentGraph` is the pinned gold.neighbors version as (N, k) ids, (N,) counts and (N,)
  full-graph degrees on the device, cut and padded to k exactly as the examples stage does
  (first k of each list, by descending sampling key, padded with PAD_NODE). An example's lists are
  gathered there by node id, so they equal the arrays a self-contained examples row carries.
- `ResidentExamples` holds a split's slim columns (ids, day, domain, labels) decoded once, by
  parallel row-group decoding, into device tensors, or into page-locked host memory when they do
  not fit (`Residency.HOST`: each epoch is then streamed to the device in large chunks, two in
  flight). An epoch is one permutation drawn on the device, interleaved over DDP ranks; a batch
  is an index gather. No host work and no host sync per step.

Which pinned tables the lists come from is the caller's choice (training.data.loader pins the
gold.neighbors version the examples were built from), so a graph built from another window only
changes that pin.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import Iterable, Iterator, Mapping, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from schemas import contract
from schemas.tables import PAD_NODE
from training.config import Residency
from training.data.arrow_reader import plan_row_groups, read_files, read_piece, read_piece_numpy, shard_slices
from training.data.batching import ordered_map
from training.data.examples import Neighbours
from training.data.snapshot import DataFile, Snapshot, SnapshotError, require_columns

log = logging.getLogger(__name__)

NEIGHBOR_COLUMNS = ["node_id", "nbr_ids", "degree"]
# Share of the device's free memory the examples may take before they stay in host memory.
DEVICE_SHARE = 0.5
HOST_CHUNK_ROWS = 1 << 22


@dataclass(frozen=True)
class ResidentGraph:
    """Every node's sampled 1-hop list (cut to k), its real length and its full-graph degree."""

    ids: torch.Tensor     # (N, k) int32 (int64 past 2^31 nodes); PAD_NODE past count
    count: torch.Tensor   # (N,) int32
    degree: torch.Tensor  # (N,) float32

    @property
    def k(self) -> int:
        return self.ids.shape[1]

    def to(self, device: torch.device) -> "ResidentGraph":
        return ResidentGraph(self.ids.to(device), self.count.to(device), self.degree.to(device))

    def neighbours(self, nodes: torch.Tensor, exclude: Optional[torch.Tensor] = None) -> Neighbours:
        return Neighbours(self.ids[nodes], self.count[nodes], self.degree[nodes], exclude)

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.ids, self.count, self.degree))


def neighbors_k(examples: Snapshot, neighbors: Snapshot) -> int:
    """The k the examples were built with (their grec.k), else the longest list of gold.neighbors."""
    prop = examples.configuration.get(contract.K.key)
    if prop:
        return int(prop)
    t = read_files(neighbors, neighbors.files, ["nbr_ids"])
    return int(pc.max(pc.list_value_length(t.column("nbr_ids"))).as_py() or 0)


def load_resident_graph(snapshot: Snapshot, k: int, fallback_degree: torch.Tensor, device: torch.device,
                        workers: int = 4) -> ResidentGraph:
    """gold.neighbors at the pinned version as a ResidentGraph on `device`.

    Nodes without a row keep an empty list and their gold.nodes degree (`fallback_degree`). Lists
    are cut and padded on the device, one row group at a time, so host memory holds one group.
    """
    require_columns(snapshot, NEIGHBOR_COLUMNS)
    where = f"{snapshot.table} v{snapshot.version}"
    if k < 1:
        raise SnapshotError(f"{where}: neighbour list length k must be >= 1, got {k}")
    n = fallback_degree.shape[0]
    dtype = torch.int32 if n < 2**31 else torch.int64
    ids = torch.full((n, k), PAD_NODE, dtype=dtype, device=device)
    count = torch.zeros(n, dtype=torch.int32, device=device)
    degree = fallback_degree.to(device=device, dtype=torch.float32).clone()
    seen = 0
    pieces = shard_slices(plan_row_groups(snapshot.files), 0, 1)
    for table in ordered_map(partial(read_piece, columns=NEIGHBOR_COLUMNS), pieces, workers):
        seen += table.num_rows
        _scatter_lists(table, where, ids, count, degree, n)
    log.info("%s: %d lists of %d nodes resident (k=%d, %.1f MiB)", where, seen, n, k,
             (ids.numel() * ids.element_size()) / 2**20)
    return ResidentGraph(ids, count, degree)


def _scatter_lists(table: pa.Table, where: str, ids: torch.Tensor, count: torch.Tensor, degree: torch.Tensor,
                   n: int) -> None:
    """Write one row group's lists into the (N, k) table: row r's first min(len, k) ids at node_id[r]."""
    if table.num_rows == 0:
        return
    for name in NEIGHBOR_COLUMNS:
        if table.column(name).null_count:
            raise SnapshotError(f"{where}: column {name!r} has null values")
    device, k = ids.device, ids.shape[1]
    lists = table.column("nbr_ids").combine_chunks()
    lengths = torch.from_numpy(pc.list_value_length(lists).to_numpy().astype(np.int64)).to(device)
    values = torch.from_numpy(lists.flatten().to_numpy(zero_copy_only=False)).to(device)
    nodes = torch.from_numpy(table.column("node_id").to_numpy()).to(device)
    if len(nodes) and (int(nodes.min()) < 0 or int(nodes.max()) >= n):
        raise SnapshotError(f"{where}: node_id outside gold.nodes' 0..{n - 1}")
    if len(values) and (int(values.min()) < 0 or int(values.max()) >= n):
        raise SnapshotError(f"{where}: nbr_ids reach {int(values.max())}, outside gold.nodes' 0..{n - 1}")
    cut = lengths.clamp(max=k)
    starts = torch.cumsum(lengths, 0) - lengths
    row = torch.repeat_interleave(torch.arange(len(nodes), device=device), cut)
    pos = torch.arange(row.numel(), device=device) - (torch.cumsum(cut, 0) - cut)[row]
    ids[nodes[row], pos] = values[starts[row] + pos].to(ids.dtype)
    count[nodes] = cut.to(count.dtype)
    degree[nodes] = torch.from_numpy(table.column("degree").to_numpy()).to(device=device, dtype=torch.float32)


class ResidentExamples:
    """One split's columns, decoded once, served as batches by index gathers.

    `columns` live on the device (Residency.DEVICE), or in (pinned) host memory and are `staged`
    to the device in chunks of about `chunk_rows` rows (Residency.HOST).
    """

    def __init__(self, columns: Mapping[str, torch.Tensor], device: torch.device, staged: bool = False,
                 chunk_rows: int = HOST_CHUNK_ROWS):
        self.columns = dict(columns)
        self.device = device
        self.rows = len(next(iter(self.columns.values()))) if self.columns else 0
        self.on_device = not staged and all(v.device.type == device.type for v in self.columns.values())
        self.chunk_rows = chunk_rows

    def nbytes(self) -> int:
        return sum(v.numel() * v.element_size() for v in self.columns.values())

    def steps(self, batch_size: int, world: int = 1, drop_last: bool = True) -> int:
        """Batches one rank serves per epoch; with drop_last the same on every rank (the smallest share
        decides), so ranks need no per-step agreement."""
        per_rank = self.rows // world
        return per_rank // batch_size if drop_last else -(-per_rank // batch_size)

    def epoch(self, batch_size: int, *, shuffle: bool, seed: int, rank: int = 0, world: int = 1,
              drop_last: bool = True) -> Iterator[dict[str, torch.Tensor]]:
        """This rank's batches of one epoch: every world-th position of one permutation (the same on
        every rank for one seed), starting at `rank`, or of the stored order.

        Interleaving makes W ranks with batch B see, step by step, exactly the rows that one
        process with batch W·B sees, so DDP and a single process train on the same batches.
        """
        gen_device = self.device if self.on_device else torch.device("cpu")
        order: Optional[torch.Tensor] = None
        if shuffle:
            gen = torch.Generator(device=gen_device).manual_seed(seed)
            order = torch.randperm(self.rows, generator=gen, device=gen_device)
        elif world > 1:
            order = torch.arange(self.rows, device=gen_device)
        if order is not None:
            order = order[rank::world]
        share = len(range(rank, self.rows, world))
        # Training drops the short last batch and serves the same number of batches on every rank;
        # evaluation serves every row of the rank's share.
        stop = self.steps(batch_size, world, drop_last) * batch_size if drop_last else share
        if self.on_device:
            yield from self._device_batches(order, stop, batch_size)
        else:
            yield from self._host_batches(order, stop, batch_size)

    def _device_batches(self, order: Optional[torch.Tensor], stop: int,
                        batch_size: int) -> Iterator[dict[str, torch.Tensor]]:
        for i in range(0, stop, batch_size):
            n = min(batch_size, stop - i)
            if order is None:
                yield {k: v[i:i + n] for k, v in self.columns.items()}
            else:
                idx = order[i:i + n]
                yield {k: v.index_select(0, idx) for k, v in self.columns.items()}

    def _host_batches(self, order: Optional[torch.Tensor], stop: int,
                      batch_size: int) -> Iterator[dict[str, torch.Tensor]]:
        """Chunks of whole batches gathered on the host into pinned buffers, copied ahead on a side
        stream (two chunks in flight), then cut into batches on the device."""
        per_chunk = max(1, self.chunk_rows // batch_size) * batch_size
        cuda = self.device.type == "cuda"
        copy_stream = torch.cuda.Stream(self.device) if cuda else None

        def stage(start: int) -> tuple[dict[str, torch.Tensor], Optional[torch.cuda.Event]]:
            n = min(per_chunk, stop - start)
            host = {}
            for k, v in self.columns.items():
                out = torch.empty((n, *v.shape[1:]), dtype=v.dtype, pin_memory=cuda)
                if order is None:
                    out.copy_(v[start:start + n])
                else:
                    torch.index_select(v, 0, order[start:start + n], out=out)
                host[k] = out
            if not cuda:
                return host, None
            with torch.cuda.stream(copy_stream):
                dev = {k: v.to(self.device, non_blocking=True) for k, v in host.items()}
                done = torch.cuda.Event()
                done.record()
            return dev, done

        starts = list(range(0, stop, per_chunk))
        ahead = stage(starts[0]) if starts else None
        for j, start in enumerate(starts):
            assert ahead is not None  # staged for every start
            chunk, done = ahead
            ahead = stage(starts[j + 1]) if j + 1 < len(starts) else None
            if done is not None:
                torch.cuda.current_stream(self.device).wait_event(done)
                for v in chunk.values():
                    v.record_stream(torch.cuda.current_stream(self.device))
            n = len(next(iter(chunk.values())))
            for i in range(0, n, batch_size):
                yield {k: v[i:i + batch_size] for k, v in chunk.items()}


def choose_residency(requested: Residency, nbytes: int, device: torch.device) -> Residency:
    """AUTO: device memory when the rows take at most DEVICE_SHARE of what is free, else host."""
    if requested is not Residency.AUTO:
        return requested
    if device.type != "cuda":
        return Residency.DEVICE
    free, _ = torch.cuda.mem_get_info(device)
    return Residency.DEVICE if nbytes <= DEVICE_SHARE * free else Residency.HOST


def planned_bytes(files: Sequence[DataFile], columns: Sequence[str]) -> int:
    """An upper bound of the decoded size of scalar `columns` over `files`: 8 bytes a value, row counts
    from the snapshot (resident rows are always the slim, scalar columns)."""
    rows = sum(f.rows for f in files)
    return rows * 8 * len(columns)


def decoded_chunks(files: Sequence[DataFile], columns: Sequence[str], workers: int) -> Iterator[dict[str, np.ndarray]]:
    """The rows of `files` as numpy column chunks, one row group each, decoded `workers` at a time."""
    pieces = shard_slices(plan_row_groups(files), 0, 1)
    return ordered_map(partial(read_piece_numpy, columns=list(columns)), pieces, workers)


def load_resident_examples(chunks: Iterable[Mapping[str, np.ndarray | torch.Tensor]], rows: int,
                           columns: Sequence[str], device: torch.device, residency: Residency,
                           where: str = "") -> ResidentExamples:
    """Copy `rows` rows arriving as column chunks (any reader) once into device or pinned host tensors."""
    if residency is Residency.STREAM:
        raise ValueError("Residency.STREAM reads from Parquet every epoch; nothing to load")
    target = device if residency is Residency.DEVICE else torch.device("cpu")
    pin = residency is Residency.HOST and device.type == "cuda"
    out: dict[str, torch.Tensor] = {}
    offset = 0
    for chunk in chunks:
        n = len(next(iter(chunk.values()))) if chunk else 0
        if offset + n > rows:
            raise SnapshotError(f"{where}: the reader served more than the {rows} rows the snapshot lists")
        for k in columns:
            v = torch.as_tensor(chunk[k])
            if k not in out:
                out[k] = torch.empty((rows, *v.shape[1:]), dtype=v.dtype, device=target, pin_memory=pin)
            out[k][offset:offset + n].copy_(v)
        offset += n
    if offset != rows:
        raise SnapshotError(f"{where}: the reader served {offset} rows, the snapshot lists {rows}")
    if not out:
        out = {c: torch.zeros(0, device=target) for c in columns}
    if target.type == "cuda":
        torch.cuda.synchronize(target)
    log.info("%s: %d rows x %d columns resident on %s", where, rows, len(columns), residency.value)
    return ResidentExamples(out, device, staged=residency is Residency.HOST)
