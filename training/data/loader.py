"""From config to batches: pin the examples and nodes snapshots, then stream one epoch of a split."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import torch

from training.config import DataConfig, LoaderBackend, Residency
from training.data.arrow_reader import ArrowExampleReader
from training.data.batching import EpochOptions
from training.data.examples import count_domains, has_neighbor_arrays, resolve_tasks
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
    macro: Optional[Snapshot] = None       # gold.macro, resolved for the models that read it (MGOE)
    macro_pinned_by: Optional[str] = None
    neighbor_arrays: bool = False          # the rows carry their own lists and features (self-contained)
    neighbors: Optional[Snapshot] = None   # gold.neighbors, resolved when the lists are read from it
    neighbors_pinned_by: Optional[str] = None

    def describe(self) -> dict[str, object]:
        out = {"examples": self.examples.describe(),
               "nodes": {**self.nodes.describe(), "pinned_by": self.nodes_pinned_by},
               "tasks": list(self.tasks), "num_domains": self.num_domains}
        if self.neighbors is not None:
            out["neighbors"] = {**self.neighbors.describe(), "pinned_by": self.neighbors_pinned_by}
        if self.macro is not None:
            out["macro"] = {**self.macro.describe(), "pinned_by": self.macro_pinned_by}
        return out


def _pin_companion(cfg: DataConfig, examples: Snapshot, table: str, flag: Optional[int]) -> tuple[Snapshot, str]:
    """A table read alongside the examples: the flag's version, else the manifest's, else the latest."""
    version: Optional[int]
    if flag is not None:
        version, pinned_by = flag, "flag"
    else:
        # The version the examples stage read (else the one its run wrote), as the manifest recorded it.
        version = built_from(cfg.lake, cfg.table, examples.version, table)
        pinned_by = "manifest" if version is not None else "latest"
    return resolve_snapshot(cfg.lake, table, version=version), pinned_by


def resolve_training_snapshots(cfg: DataConfig, with_macro: bool = False,
                               with_graph: bool = False) -> TrainingSnapshots:
    """The pinned tables of a run. gold.neighbors is pinned when the lists must come from it: slim
    rows, resident rows (which read the impression only), or `with_graph` (two-stage pretraining)."""
    version: Optional[int] = cfg.version
    if cfg.run is not None:
        run_tables = run_outputs(cfg.lake, cfg.run)
        if cfg.table not in run_tables:
            raise SnapshotError(f"run {cfg.run!r} wrote {sorted(run_tables)} but not {cfg.table}")
        version = run_tables[cfg.table]
    examples = resolve_snapshot(cfg.lake, cfg.table, version=version, timestamp=cfg.timestamp)
    nodes, pinned_by = _pin_companion(cfg, examples, cfg.nodes_table, cfg.nodes_version)
    macro, macro_pinned_by = (_pin_companion(cfg, examples, cfg.macro_table, cfg.macro_version) if with_macro
                              else (None, None))
    tasks = resolve_tasks(examples, cfg.tasks)
    arrays = has_neighbor_arrays(examples, tasks)
    neighbors, neighbors_pinned_by = None, None
    if with_graph or not arrays or cfg.residency is not Residency.STREAM:
        neighbors, neighbors_pinned_by = _pin_companion(cfg, examples, cfg.neighbors_table, cfg.neighbors_version)
    return TrainingSnapshots(examples, nodes, pinned_by, tasks, count_domains(examples), macro, macro_pinned_by,
                             arrays, neighbors, neighbors_pinned_by)


def split_files(snapshot: Snapshot, split: str, required: bool = True) -> list[DataFile]:
    """The files of one split; SnapshotError naming the splits there are when it has none, unless
    not `required` (an optional split such as validation: then [])."""
    files = snapshot.files_where(split=split)
    if not files and required:
        have = sorted({f.partition.get("split") for f in snapshot.files}, key=str)
        raise SnapshotError(f"{snapshot.table} v{snapshot.version} has no rows with split={split!r} (splits: {have})")
    return files


def make_batches(backend: LoaderBackend, files: Sequence[DataFile], columns: Sequence[str], *, batch_size: int,
                 shuffle: bool, seed: int, rank: int = 0, world: int = 1, shuffle_buffer: int = 0,
                 workers: int = 2, drop_last: bool = False,
                 pin_memory: bool = False) -> Iterable[dict[str, torch.Tensor]]:
    """One epoch of `files` as CPU tensor batches, this rank's share only.

    `pin_memory` (for a CUDA device) has the arrow backend pin batches in its background thread.
    """
    options = EpochOptions(batch_size=batch_size, shuffle=shuffle, seed=seed, rank=rank, world=world,
                           shuffle_buffer=shuffle_buffer, workers=workers, drop_last=drop_last)
    if backend is LoaderBackend.PETASTORM:
        return PetastormExampleReader(files, columns, options)
    return ArrowExampleReader(files, columns, options, pin_memory=pin_memory)
