"""The Petastorm backend: `make_batch_reader` + `BatchedDataLoader` over a snapshot's file list.

Petastorm shards by row group (`cur_shard`/`shard_count`: index % world == rank), streams only
numeric and flat-array columns (so the string partition column `split` is never requested: a split
is selected by passing only its files), and follows Parquet row groups; BatchedDataLoader re-batches
to the configured size. Its row order is not reproducible (reader threads race, and the shuffling
buffer draws from torch's global RNG); use the arrow backend where the exact order matters.
Imported lazily: the arrow backend works without petastorm installed.
"""
from __future__ import annotations

import contextlib
import io
import re
import warnings
from typing import Iterator, Literal, Sequence

import torch

from training.data.batching import EpochOptions
from training.data.snapshot import DataFile, SnapshotError

# petastorm 0.13 on pyarrow 14 warns about pyarrow's legacy dataset API on every file it opens.
_QUIET: list[tuple[Literal["ignore"], type[Warning]]] = [("ignore", FutureWarning), ("ignore", DeprecationWarning),
                                                         ("ignore", UserWarning)]


class PetastormExampleReader:
    """One epoch of fixed-size batches (dict of CPU tensors) through Petastorm."""

    def __init__(self, files: Sequence[DataFile], columns: Sequence[str], options: EpochOptions):
        self.urls = [f.uri for f in files]
        self.columns = list(columns)
        self.options = options

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        from petastorm import make_batch_reader
        from petastorm.errors import NoDataAvailableError
        from petastorm.pytorch import BatchedDataLoader

        import training.data.petastorm_shim  # noqa: F401  (fixes a start-up race that drops whole epochs)

        if not self.urls:
            return
        o = self.options
        shard = {"cur_shard": o.rank, "shard_count": o.world} if o.world > 1 else {}
        with warnings.catch_warnings():
            for action, category in _QUIET:
                warnings.simplefilter(action, category)
            try:
                reader = make_batch_reader(
                    self.urls, schema_fields=[f"^{re.escape(c)}$" for c in self.columns],
                    reader_pool_type="thread", workers_count=o.workers, num_epochs=1,
                    shuffle_row_groups=o.shuffle, seed=o.seed, **shard)
            except NoDataAvailableError as e:
                raise SnapshotError(f"petastorm cannot shard {len(self.urls)} file(s) over {o.world} ranks: {e}. "
                                 "Write the table with more row groups or use --loader arrow") from e
            try:
                for batch in BatchedDataLoader(reader, batch_size=o.batch_size,
                                               shuffling_queue_capacity=o.shuffle_buffer):
                    if o.drop_last and len(next(iter(batch.values()))) < o.batch_size:
                        break
                    yield {c: batch[c] for c in self.columns}
            finally:
                with contextlib.redirect_stdout(io.StringIO()):  # petastorm prints on cleanup
                    reader.stop()
                    reader.join()
