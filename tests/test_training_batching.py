"""Readers and re-batching on plain Parquet files: exact batch sizes, exactly-once sharding, both backends."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from training.config import LoaderBackend
from training.data.arrow_columns import ColumnError, column_to_numpy
from training.data.arrow_reader import plan_row_groups, shard_slices
from training.data.batching import rebatch
from training.data.loader import make_batches
from training.data.snapshot import DataFile

K = 4


def write_files(tmp_path, sizes=(23, 17, 31), row_group=8) -> tuple[list[DataFile], list[int]]:
    files, start = [], 0
    for n, size in enumerate(sizes):
        ids = np.arange(start, start + size)
        t = pa.table({
            "id": pa.array(ids, pa.int64()),
            "label": pa.array(ids % 2, pa.int32()),
            "nbr": pa.array([[int(i)] * K for i in ids], pa.list_(pa.int64())),
            "w": pa.array([[float(i) / 2] * K for i in ids], pa.list_(pa.float32())),
        })
        path = tmp_path / f"part-{n}.parquet"
        pq.write_table(t, path, row_group_size=row_group)
        files.append(DataFile("file://" + str(path), {}, size))
        start += size
    return files, list(range(start))


@pytest.mark.parametrize("backend", [LoaderBackend.ARROW, LoaderBackend.PETASTORM])
def test_every_row_read_exactly_once_across_ranks(tmp_path, backend):
    files, ids = write_files(tmp_path)
    seen: Counter = Counter()
    for rank in range(2):
        for b in make_batches(backend, files, ["id", "label", "nbr", "w"], batch_size=5, shuffle=True, seed=3,
                              rank=rank, world=2, shuffle_buffer=16, workers=2):
            assert b["nbr"].shape == (len(b["id"]), K) and b["nbr"].dtype == torch.int64
            assert torch.equal(b["nbr"][:, 0], b["id"])  # list columns stay aligned with their rows
            assert torch.allclose(b["w"][:, 1], b["id"].float() / 2)
            assert torch.equal(b["label"].long(), b["id"] % 2)
            seen.update(b["id"].tolist())
    assert seen == Counter(ids)


@pytest.mark.parametrize("backend", [LoaderBackend.ARROW, LoaderBackend.PETASTORM])
def test_batches_have_the_configured_size(tmp_path, backend):
    files, ids = write_files(tmp_path)
    sizes = [len(b["id"]) for b in make_batches(backend, files, ["id"], batch_size=6, shuffle=False, seed=0)]
    assert sizes == [6] * (len(ids) // 6) + [len(ids) % 6]
    dropped = [len(b["id"]) for b in make_batches(backend, files, ["id"], batch_size=6, shuffle=False, seed=0,
                                                  drop_last=True)]
    assert dropped == [6] * (len(ids) // 6)


def test_arrow_shards_are_balanced_contiguous_ranges(tmp_path):
    files, ids = write_files(tmp_path)
    groups = plan_row_groups(files)
    assert sum(g.rows for g in groups) == len(ids) and len(groups) == 3 + 3 + 4
    shares = [sum(stop - start for _, start, stop in shard_slices(groups, r, 3)) for r in range(3)]
    assert shares == [23, 24, 24]


def test_rebatch_shuffle_keeps_every_row_and_mixes_chunks():
    chunks = [{"x": np.arange(i * 10, i * 10 + 10)} for i in range(6)]
    out = list(rebatch(iter(chunks), 7, shuffle_buffer=30, rng=np.random.default_rng(0)))
    rows = torch.cat([b["x"] for b in out]).tolist()
    assert sorted(rows) == list(range(60)) and [len(b["x"]) for b in out] == [7] * 8 + [4]
    assert rows != list(range(60))
    first = set(out[0]["x"].tolist())
    assert len({r // 10 for r in first}) > 1  # one batch draws from several chunks


def test_ragged_or_null_lists_are_refused_with_the_column_named():
    with pytest.raises(ColumnError, match="column 'nbr' holds lists of lengths 1..2"):
        column_to_numpy(pa.array([[1], [1, 2]]), "nbr", "f.parquet")
    with pytest.raises(ColumnError, match="column 'x' has 1 null"):
        column_to_numpy(pa.array([1, None]), "x", "f.parquet")


def test_petastorm_never_ends_an_epoch_early(tmp_path):
    """petastorm 0.13.1 could stop before reading anything (a start-up race; training.data.petastorm_shim)."""
    files, ids = write_files(tmp_path, sizes=(10, 10, 10, 10), row_group=10)
    counts = [sum(len(b["id"]) for b in make_batches(LoaderBackend.PETASTORM, files, ["id"], batch_size=16,
                                                     shuffle=True, seed=3, workers=1))
              for _ in range(25)]
    assert counts == [len(ids)] * 25
