"""One split of a training run on the device: resident (decoded once, one gather per batch) or
streamed from Parquet every epoch; each batch assembled with the resident graph's lists."""
from __future__ import annotations

from typing import Iterable, Iterator, Mapping, Optional, Sequence

import numpy as np
import torch

from training.config import LoaderBackend, Residency, TrainConfig
from training.data.batching import on_device
from training.data.examples import ExampleBatch, example_columns
from training.data.loader import TrainingSnapshots, make_batches
from training.data.resident import (ResidentExamples, ResidentGraph, choose_residency, decoded_chunks,
                                    load_resident_examples, planned_bytes)
from training.data.snapshot import DataFile
from training.distributed import DistContext, in_step


class SplitData:
    """One split's batches on the device: resident (decoded once, gathered per batch) or streamed
    from Parquet every epoch, with the graph lists gathered from the resident graph when loaded."""

    def __init__(self, cfg: TrainConfig, tasks: Sequence[str], files: Sequence[DataFile], columns: list[str],
                 graph: Optional[ResidentGraph], device: torch.device, residency: Residency,
                 resident: Optional[ResidentExamples]):
        self.cfg, self.tasks, self.files, self.columns = cfg, tuple(tasks), files, columns
        self.graph, self.device, self.residency, self.resident = graph, device, residency, resident

    @classmethod
    def load(cls, cfg: TrainConfig, snaps: TrainingSnapshots, files: Sequence[DataFile], graph: Optional[ResidentGraph],
             device: torch.device, name: str) -> "SplitData":
        columns = example_columns(snaps.tasks, neighbor_arrays=graph is None)
        residency = choose_residency(cfg.data.residency, planned_bytes(files, columns), device)
        resident = None
        if residency is not Residency.STREAM:
            rows = sum(f.rows for f in files)
            chunks: Iterable[Mapping[str, np.ndarray | torch.Tensor]]
            if cfg.data.loader is LoaderBackend.PETASTORM:
                chunks = make_batches(LoaderBackend.PETASTORM, files, columns, batch_size=1 << 20, shuffle=False,
                                      seed=0, workers=cfg.data.workers)
            else:
                chunks = decoded_chunks(files, columns, cfg.data.workers)
            resident = load_resident_examples(chunks, rows, columns, device, residency,
                                              f"{snaps.examples.table} v{snaps.examples.version} {name}")
        return cls(cfg, snaps.tasks, files, columns, graph, device, residency, resident)

    def assemble(self, cols: Mapping[str, torch.Tensor]) -> ExampleBatch:
        return ExampleBatch.from_columns(cols, self.tasks, self.cfg.data.mask_target_edge, self.graph)

    def rows_per_rank(self, world: int) -> int:
        return sum(f.rows for f in self.files) // world

    def describe(self) -> dict[str, object]:
        return {"residency": self.residency.value, "columns": self.columns, "graph": self.graph is not None,
                "rows": sum(f.rows for f in self.files),
                "bytes": self.resident.nbytes() if self.resident is not None else None}

    def epoch(self, seed: int, ctx: DistContext, *, train: bool) -> Iterator[dict[str, torch.Tensor]]:
        d = self.cfg.data
        size = d.batch_size if train else d.eval_batch_size
        shuffle = train and d.shuffle
        if self.resident is not None:
            return self.resident.epoch(size, shuffle=shuffle, seed=seed, rank=ctx.rank, world=ctx.world,
                                       drop_last=train)
        batches = make_batches(d.loader, self.files, self.columns, batch_size=size, shuffle=shuffle, seed=seed,
                               rank=ctx.rank, world=ctx.world, shuffle_buffer=d.shuffle_buffer if train else 0,
                               workers=d.workers, drop_last=train, pin_memory=self.device.type == "cuda")
        return on_device(in_step(ctx, batches) if train else batches, self.device)
