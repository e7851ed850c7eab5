"""From config to batches: pin the examples and nodes snapshots, then stream one epoch of a split."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import torch

from training.config import DataConfig, LoaderBackend
from training.data.arrow_reader import ArrowExampleReader
from training.data.examples import count_domains, resolve_tasks
from training.data.manifest import built_from, run_outputs
from training.data.petastorm_reader import PetastormExampleReader
from training.data.snapshot import DataFile, Snapshot, SnapshotError, resolve_snapshot


@dataclass(frozen=True)
class TrainingSnapshots:
    """The pinned inputs of a training run; `describe()` is printed and stored with the results."""

    examples: Snapshot
    nodes: Snapshot
    nodes_pinned_by: str  # "flag", "manifest" or "latest"
    tasks: tuple[str, ...]
    num_domains: int

    def describe(self) -> dict[str, object]:
        return {"examples": self.examples.describe(),
                "nodes": {**self.nodes.describe(), "pinned_by": self.nodes_pinned_by},
                "tasks": list(self.tasks), "num_domains": self.num_domains}


def resolve_training_snapshots(cfg: DataConfig) -> TrainingSnapshots:
    version: Optional[int] = cfg.version
    if cfg.run is not None:
        run_tables = run_outputs(cfg.lake, cfg.run)
        if cfg.table not in run_tables:
            raise SnapshotError(f"run {cfg.run!r} wrote {sorted(run_tables)} but not {cfg.table}")
        version = run_tables[cfg.table]
    examples = resolve_snapshot(cfg.lake, cfg.table, version=version, timestamp=cfg.timestamp)
    if cfg.nodes_version is not None:
        nodes_version, pinned_by = cfg.nodes_version, "flag"
    else:
        # The version the examples stage read (else the one its run wrote), as the manifest recorded it.
        nodes_version = built_from(cfg.lake, cfg.table, examples.version, cfg.nodes_table)
        pinned_by = "manifest" if nodes_version is not None else "latest"
    nodes = resolve_snapshot(cfg.lake, cfg.nodes_table, version=nodes_version)
    return TrainingSnapshots(examples, nodes, pinned_by, resolve_tasks(examples, cfg.tasks), count_domains(examples))


def split_files(snapshot: Snapshot, split: str) -> list[DataFile]:
    files = snapshot.files_where(split=split)
    if not files:
        have = sorted({f.partition.get("split") for f in snapshot.files}, key=str)
        raise SnapshotError(f"{snapshot.table} v{snapshot.version} has no rows with split={split!r} (splits: {have})")
    return files


def make_batches(backend: LoaderBackend, files: Sequence[DataFile], columns: Sequence[str], *, batch_size: int,
                 shuffle: bool, seed: int, rank: int = 0, world: int = 1, shuffle_buffer: int = 0,
                 workers: int = 2, drop_last: bool = False) -> Iterable[dict[str, torch.Tensor]]:
    """One epoch of `files` as CPU tensor batches, this rank's share only."""
    common = dict(batch_size=batch_size, shuffle=shuffle, seed=seed, rank=rank, world=world,
                  shuffle_buffer=shuffle_buffer, drop_last=drop_last)
    if backend is LoaderBackend.PETASTORM:
        return PetastormExampleReader(files, columns, workers=workers, **common)
    return ArrowExampleReader(files, columns, read_ahead=workers, **common)
