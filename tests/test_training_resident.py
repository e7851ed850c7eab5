"""The resident data path: gold.neighbors as a node-indexed table, rows decoded once, epochs as
permutations; and the resident trainer against the streaming one on the same lake (no Spark:
the lakes are written with delta-rs)."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pytest
import torch

from bench.synthetic_lake import write_synthetic_lake
from schemas import tables
from training.config import DeviceKind, Residency, TrainConfig
from training.data.examples import ExampleBatch, Neighbours
from training.data.resident import ResidentExamples, load_resident_graph
from training.data.snapshot import resolve_snapshot
from training.models.node_input import NodeInput
from training.train import fit

CPU = torch.device("cpu")


def write_neighbors(root: str, rows: list[tuple[int, list[int], int]]) -> None:
    from deltalake import write_deltalake

    t = pa.table({
        "node_id": pa.array([r[0] for r in rows], pa.int64()),
        "nbr_ids": pa.array([r[1] for r in rows], pa.list_(pa.int64())),
        "nbr_weights": pa.array([[1.0] * len(r[1]) for r in rows], pa.list_(pa.float32())),
        "nbr_types": pa.array([[0] * len(r[1]) for r in rows], pa.list_(pa.int32())),
        "degree": pa.array([r[2] for r in rows], pa.int64()),
    }).cast(tables.NEIGHBORS.arrow_schema())
    write_deltalake(f"{root}/gold/neighbors", t, mode="overwrite")


def test_graph_lists_are_cut_and_padded_to_k_by_node_id(tmp_path):
    # node 2 has no row: empty list, gold.nodes' degree; rows arrive out of node order
    write_neighbors(str(tmp_path), [(3, [0, 1, 2, 4, 5], 9), (0, [4], 1), (1, [], 0), (4, [3, 0, 1], 3),
                                    (5, [1, 2, 3], 3)])
    snap = resolve_snapshot(str(tmp_path), "gold.neighbors")
    g = load_resident_graph(snap, 3, torch.tensor([0.0, 0.0, 7.0, 0.0, 0.0, 0.0]), CPU, workers=2)
    pad = tables.PAD_NODE
    assert g.ids.tolist() == [[4, pad, pad], [pad, pad, pad], [pad, pad, pad], [0, 1, 2], [3, 0, 1], [1, 2, 3]]
    assert g.count.tolist() == [1, 0, 0, 3, 3, 3]
    assert g.degree.tolist() == [1.0, 0.0, 7.0, 9.0, 3.0, 3.0]
    nbr = g.neighbours(torch.tensor([3, 0]), exclude=torch.tensor([1, 4]))
    assert nbr.mask().tolist() == [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]


def test_graph_refuses_ids_outside_the_node_table(tmp_path):
    write_neighbors(str(tmp_path), [(0, [1, 7], 2), (1, [0], 1)])
    snap = resolve_snapshot(str(tmp_path), "gold.neighbors")
    with pytest.raises(Exception, match=r"nbr_ids reach 7, outside gold.nodes' 0..2"):
        load_resident_graph(snap, 2, torch.zeros(3), CPU)


def columns(n: int) -> dict[str, torch.Tensor]:
    return {"user_node": torch.arange(n), "day": torch.arange(n) % 7}


@pytest.mark.parametrize("world", [1, 2, 3])
def test_an_epoch_serves_every_row_once_across_ranks(world):
    n = 103
    data = ResidentExamples(columns(n), CPU)
    seen: Counter = Counter()
    for rank in range(world):
        for b in data.epoch(10, shuffle=True, seed=5, rank=rank, world=world, drop_last=False):
            assert torch.equal(b["day"], b["user_node"] % 7)  # columns stay aligned
            seen.update(b["user_node"].tolist())
    assert seen == Counter(range(n))
    steps = [len(list(data.epoch(10, shuffle=True, seed=5, rank=r, world=world, drop_last=True)))
             for r in range(world)]
    assert steps == [(n // world) // 10] * world  # equal step counts: no per-step agreement needed


def test_epochs_are_seeded_permutations_and_host_staging_serves_the_same_batches():
    data = ResidentExamples(columns(1000), CPU)
    first = [b["user_node"] for b in data.epoch(64, shuffle=True, seed=3)]
    again = [b["user_node"] for b in data.epoch(64, shuffle=True, seed=3)]
    other = [b["user_node"] for b in data.epoch(64, shuffle=True, seed=4)]
    assert all(torch.equal(a, b) for a, b in zip(first, again)) and len(first) == 1000 // 64
    assert not all(torch.equal(a, b) for a, b in zip(first, other))
    assert not torch.equal(torch.cat(first), torch.arange(len(first) * 64))  # shuffled
    staged = ResidentExamples(columns(1000), CPU, staged=True, chunk_rows=200)  # 3 batches per chunk
    assert not staged.on_device
    host = [b["user_node"] for b in staged.epoch(64, shuffle=True, seed=3)]
    assert len(host) == len(first) and all(torch.equal(a, b) for a, b in zip(first, host))
    plain = torch.cat([b["user_node"] for b in staged.epoch(64, shuffle=False, seed=0, drop_last=False)])
    assert torch.equal(plain, torch.arange(1000))


def test_zero_weight_entries_add_nothing_forward_or_backward():
    torch.manual_seed(0)
    ni = NodeInput(torch.randn(6, 3), 1, 4, 2)
    ids = torch.tensor([[2, 0, 0], [5, 1, 0]])
    w = torch.tensor([[0.5, 0.0, 0.0], [1.0, 2.0, 0.0]])
    out = ni.aggregate(ids, w)
    out.sum().backward()
    x = torch.cat([ni.ids.weight, ni.project(ni.features) + ni.bias], -1).detach()
    expected = torch.stack([0.5 * x[2], 1.0 * x[5] + 2.0 * x[1]])
    torch.testing.assert_close(out.detach(), expected)
    grad = torch.zeros(6, 4)
    for row, col in ((0, 0), (1, 0), (1, 1)):
        grad[ids[row, col]] += w[row, col]
    torch.testing.assert_close(ni.ids.weight.grad, grad)


def train(lake: str, out: str, residency: Residency) -> object:
    cfg = TrainConfig()
    cfg.data.lake, cfg.data.residency, cfg.data.shuffle, cfg.data.workers = lake, residency, False, 1
    cfg.data.batch_size = 64
    m = cfg.model
    m.id_dim = m.feature_dim = m.ltr_dim = m.gnn_dim = 8
    m.shared_hidden, m.attention_dim, m.tower_hidden = (16,), 8, (8,)
    cfg.run.out, cfg.run.progress, cfg.run.checkpoint = out, False, False
    cfg.run.device, cfg.run.threads, cfg.run.epochs = DeviceKind.CPU, 1, 2
    return fit(cfg)


def test_resident_and_streaming_paths_give_the_same_losses(tmp_path):
    """Self-contained rows streamed from Parquet (lists and features from each row) against the
    same rows resident (lists gathered from gold.neighbors, features from gold.nodes)."""
    lake = str(tmp_path / "lake")
    write_synthetic_lake(lake, rows=1500, users=60, items=30, k=6, days=6, eval_days=2, seed=1,
                         neighbor_arrays=True, row_group=400)
    streamed = train(lake, str(tmp_path / "stream"), Residency.STREAM)
    resident = train(lake, str(tmp_path / "resident"), Residency.DEVICE)
    assert streamed.data["residency"] == "stream" and not streamed.data["graph"]
    assert resident.data["residency"] == "device" and resident.data["graph"]
    assert len(streamed.log) == len(resident.log) == 2 * (resident.data["rows"] // 64)
    for col in ("loss", "l_ssl", "l_ltr", "w_ssl", "w_ltr"):
        np.testing.assert_allclose(resident.log[col], streamed.log[col], rtol=2e-5, atol=1e-6, err_msg=col)
    np.testing.assert_allclose(resident.metrics["auc"], streamed.metrics["auc"], rtol=1e-5)


def test_batches_from_the_graph_equal_the_rows_own_arrays(tmp_path):
    lake = str(tmp_path / "lake")
    write_synthetic_lake(lake, rows=300, users=20, items=10, k=5, seed=2, neighbor_arrays=True)
    from training.data.arrow_reader import read_files

    ex = resolve_snapshot(lake, "gold.examples")
    cols = ["user_node", "item_node", "day", "domain_id", "like", "love", "user_features", "item_features",
            *(f"{s}_{c}" for s in ("user", "item") for c in ("nbr_ids", "nbr_count", "degree"))]
    t = read_files(ex, ex.files, cols)
    batch = {c: torch.from_numpy(np.stack(t.column(c).to_numpy(zero_copy_only=False))) for c in cols}
    own = ExampleBatch.from_columns(batch, ("like", "love"))
    g = load_resident_graph(resolve_snapshot(lake, "gold.neighbors"), 5, torch.zeros(30), CPU)
    gathered = ExampleBatch.from_columns(batch, ("like", "love"), graph=g)

    def same(a: Neighbours, b: Neighbours) -> None:
        assert torch.equal(a.ids.long(), b.ids.long()) and torch.equal(a.count.long(), b.count.long())
        assert torch.equal(a.degree.float(), b.degree.float()) and torch.equal(a.mask(), b.mask())

    same(own.user, gathered.user)
    same(own.item, gathered.item)
    assert gathered.user_features is None and own.user_features is not None
