"""Encoders, node input, GFAE, fusion and towers against dense or hand-computed references."""
from __future__ import annotations

import math

import pytest
import torch

from training.config import EncoderKind, FusionKind, ModelConfig
from training.data.examples import ExampleBatch, Neighbours
from training.data.nodes import NodeTable
from training.models import build_model
from training.models.fusion import BlockAttention, GatedFusion, TwoLevelFusion
from training.models.graphsage import SampledGraphSAGE
from training.models.lightgcn import SampledLightGCN, gfae_loss
from training.models.node_input import NodeInput
from training.models.towers import TaskTowers

torch.set_num_threads(1)

# A small undirected graph: 3 users (0..2), 4 items (3..6), user-item and item-item edges.
EDGES = [(0, 3), (0, 4), (0, 5), (1, 3), (1, 6), (2, 4), (3, 4), (5, 6), (2, 6)]
N, USER_W, ITEM_W = 7, 2, 3


def adjacency() -> torch.Tensor:
    a = torch.zeros(N, N, dtype=torch.float64)
    for u, v in EDGES:
        a[u, v] = a[v, u] = 1.0
    return a


def node_table(seed: int = 0) -> NodeTable:
    g = torch.Generator().manual_seed(seed)
    feats = torch.zeros(N, USER_W + ITEM_W)
    feats[:3, :USER_W] = torch.randn(3, USER_W, generator=g)
    feats[3:, USER_W:] = torch.randn(4, ITEM_W, generator=g)
    return NodeTable(adjacency().sum(1).float(), feats, USER_W, ITEM_W)


def dense_inputs(ni: NodeInput) -> torch.Tensor:
    """X for every node, built from the parameters by matrix algebra (independent of forward)."""
    w = ni.project.weight.detach().double()
    return torch.cat([ni.ids.weight.detach().double(), ni.features.double() @ w.T + ni.bias.detach().double()], 1)


def padded_lists(sample: dict[int, list[int]], k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Neighbour ids padded with PAD_NODE = 0 (a real node: padding must be masked, not looked up)."""
    ids = torch.zeros(len(sample), k, dtype=torch.long)
    count = torch.zeros(len(sample), dtype=torch.long)
    for row, (_, nbrs) in enumerate(sorted(sample.items())):
        ids[row, : len(nbrs)] = torch.tensor(nbrs)
        count[row] = len(nbrs)
    return ids, count


def test_node_input_aggregate_equals_explicit_weighted_sum():
    nodes = node_table()
    ni = NodeInput(nodes.features, USER_W, id_dim=4, feature_dim=3)
    ids = torch.tensor([[3, 4, 0], [6, 1, 2]])
    w = torch.tensor([[0.5, 2.0, 0.0], [1.0, -1.0, 0.25]])
    x = dense_inputs(ni)
    expected = torch.stack([sum(w[r, j].double() * x[ids[r, j]] for j in range(3)) for r in range(2)])
    torch.testing.assert_close(ni.aggregate(ids, w).double(), expected, rtol=1e-5, atol=1e-6)


def test_lightgcn_full_lists_match_dense_normalised_adjacency():
    nodes = node_table()
    ni = NodeInput(nodes.features, USER_W, id_dim=4, feature_dim=3)
    enc = SampledLightGCN(nodes.degree)
    a = adjacency()
    deg = a.sum(1)
    x = dense_inputs(ni)
    reference = (x + torch.diag(deg.rsqrt()) @ a @ torch.diag(deg.rsqrt()) @ x) / 2  # LightGCN, K=1
    full = {v: [int(u) for u in torch.nonzero(a[v]).flatten()] for v in range(N)}
    ids, count = padded_lists(full, k=5)
    nbr = Neighbours(ids, count, deg.float())
    z = enc(x.float(), nbr, ni)
    torch.testing.assert_close(z.double(), reference, rtol=1e-5, atol=1e-6)


def test_lightgcn_subsample_is_rescaled_by_degree_over_sample_size():
    nodes = node_table(1)
    ni = NodeInput(nodes.features, USER_W, id_dim=4, feature_dim=3)
    enc = SampledLightGCN(nodes.degree)
    a = adjacency()
    deg = a.sum(1)
    sample = {0: [5, 3], 3: [4], 6: [1, 2, 5]}  # 0 has degree 3, node 3 degree 3, node 6 degree 3
    s = torch.zeros(N, N, dtype=torch.float64)
    for v, nbrs in sample.items():
        s[v, nbrs] = 1.0
    rows = sorted(sample)
    size = s.sum(1).clamp_min(1)
    x = dense_inputs(ni)
    propagated = torch.diag(deg / size) @ torch.diag(deg.rsqrt()) @ s @ torch.diag(deg.rsqrt()) @ x
    reference = ((x + propagated) / 2)[rows]
    ids, count = padded_lists(sample, k=4)
    z = enc(x[rows].float(), Neighbours(ids, count, deg[rows].float()), ni)
    torch.testing.assert_close(z.double(), reference, rtol=1e-5, atol=1e-6)


def test_lightgcn_excluded_target_edge_is_as_if_absent_from_the_sample():
    nodes = node_table(1)
    ni = NodeInput(nodes.features, USER_W, id_dim=4, feature_dim=3)
    enc = SampledLightGCN(nodes.degree)
    deg = adjacency().sum(1)
    x = dense_inputs(ni)
    # Node 0's list holds its target 5; node 6's target 4 is not in its list (nothing to drop).
    with_target = {0: [5, 3], 6: [1, 2, 5]}
    without = {0: [3], 6: [1, 2, 5]}
    rows = sorted(with_target)
    ids, count = padded_lists(with_target, k=4)
    masked = enc(x[rows].float(), Neighbours(ids, count, deg[rows].float(), torch.tensor([5, 4])), ni)
    ids2, count2 = padded_lists(without, k=4)
    plain = enc(x[rows].float(), Neighbours(ids2, count2, deg[rows].float()), ni)
    torch.testing.assert_close(masked, plain)
    # by hand for node 0: deg 3, one neighbour left (3, deg 3): e1 = 3/1 * x_3 / sqrt(3*3) = x_3
    torch.testing.assert_close(masked[0].double(), (x[0] + x[3]) / 2, rtol=1e-5, atol=1e-6)


def test_batches_mask_each_examples_own_edge_on_both_sides():
    cols = {"user_node": torch.tensor([0, 1]), "item_node": torch.tensor([7, 8]), "day": torch.tensor([1, 1]),
            "domain_id": torch.tensor([0, 0]), "user_features": torch.zeros(2, 1), "item_features": torch.zeros(2, 1),
            "like": torch.tensor([1, 0]),
            "user_nbr_ids": torch.tensor([[7, 9, 0], [9, 8, 0]]), "user_nbr_count": torch.tensor([2, 2]),
            "item_nbr_ids": torch.tensor([[2, 0, 3], [1, 0, 0]]), "item_nbr_count": torch.tensor([3, 1]),
            "user_degree": torch.tensor([2, 2]), "item_degree": torch.tensor([3, 1])}
    b = ExampleBatch.from_columns(cols, ["like"])
    assert b.user.mask().tolist() == [[0, 1, 0], [1, 0, 0]]
    # item 7's list holds user 0 (position 1, a real entry): dropped; item 8's only neighbour is user 1
    assert b.item.mask().tolist() == [[1, 0, 1], [0, 0, 0]]
    leaky = ExampleBatch.from_columns(cols, ["like"], mask_target_edge=False)
    assert leaky.user.mask().tolist() == [[1, 1, 0], [1, 1, 0]]


def test_lightgcn_node_without_neighbours_keeps_half_its_input():
    nodes = node_table()
    ni = NodeInput(nodes.features, USER_W, id_dim=4, feature_dim=3)
    x = dense_inputs(ni)[[2]].float()
    nbr = Neighbours(torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, dtype=torch.long), torch.zeros(1))
    torch.testing.assert_close(SampledLightGCN(nodes.degree)(x, nbr, ni), x / 2)


def test_graphsage_matches_dense_mean_aggregation():
    nodes = node_table()
    ni = NodeInput(nodes.features, USER_W, id_dim=4, feature_dim=2)
    enc = SampledGraphSAGE(ni.out_dim)
    sample = {1: [3, 6], 4: [0, 2, 3]}
    x = dense_inputs(ni)
    rows = sorted(sample)
    mean = torch.stack([x[sample[v]].mean(0) for v in rows])
    w, b = enc.combine.weight.detach().double(), enc.combine.bias.detach().double()
    reference = torch.cat([x[rows], mean], 1) @ w.T + b
    ids, count = padded_lists(sample, k=4)
    z = enc(x[rows].float(), Neighbours(ids, count, torch.ones(2)), ni)
    torch.testing.assert_close(z.double(), reference, rtol=1e-5, atol=1e-6)


def test_gfae_loss_hand_computed():
    z = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    assert float(gfae_loss(z, x)) == pytest.approx((5.0 + 25.0) / 2)


def test_gated_fusion_gate_follows_sigmoid():
    g = GatedFusion(3)
    with torch.no_grad():
        g.gate.weight.zero_()
        g.gate.bias.copy_(torch.tensor([0.0, 100.0, -100.0]))
    f = torch.tensor([[2.0, 3.0, 4.0]])
    torch.testing.assert_close(g(f), torch.tensor([[1.0, 3.0, 0.0]]))


def test_block_attention_is_residual_over_projected_tokens():
    att = BlockAttention([2, 3, 4], dim=8, heads=8)
    with torch.no_grad():  # attention output zeroed: only the residual tokens remain
        att.attention.out_proj.weight.zero_()
        att.attention.out_proj.bias.zero_()
    blocks = [torch.randn(5, 2), torch.randn(5, 3), torch.randn(5, 4)]
    expected = torch.cat([p(b) for p, b in zip(att.project, blocks)], dim=1)
    torch.testing.assert_close(att(blocks), expected)


def test_block_attention_equals_torch_multihead_attention():
    torch.manual_seed(3)
    att = BlockAttention([2, 3, 4], dim=8, heads=4)
    blocks = [torch.randn(6, 2), torch.randn(6, 3), torch.randn(6, 4)]
    tokens = torch.stack([p(b) for p, b in zip(att.project, blocks)], dim=1)
    reference, _ = att.attention(tokens, tokens, tokens, need_weights=False)
    torch.testing.assert_close(att(blocks), (tokens + reference).flatten(1), rtol=1e-5, atol=1e-6)


def test_two_level_fusion_widths_and_bottom_only():
    widths = [4, 3, 5]
    blocks = [torch.randn(2, w) for w in widths]
    assert TwoLevelFusion(widths, 8, 8)(blocks).shape == (2, 12 + 24)
    bottom = TwoLevelFusion(widths, 8, 8, upper=False)
    assert bottom.upper is None
    torch.testing.assert_close(bottom(blocks), bottom.bottom(torch.cat(blocks, 1)))


def test_towers_loss_is_sum_of_per_task_bce():
    towers = TaskTowers(3, ["a", "b"], hidden=[4])
    logits = torch.tensor([[0.3, -1.2], [2.0, 0.1], [-0.5, 0.0]])
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    p = torch.sigmoid(logits).double()
    bce = -(labels * p.log() + (1 - labels) * (1 - p).log())
    assert float(towers.loss(logits, labels)) == pytest.approx(float(bce.mean(0).sum()), rel=1e-6)
    assert towers(torch.randn(7, 3)).shape == (7, 2)


def example_batch(b: int = 6, k: int = 3, seed: int = 0) -> ExampleBatch:
    g = torch.Generator().manual_seed(seed)
    users, items = torch.randint(0, 3, (b,), generator=g), torch.randint(3, 7, (b,), generator=g)
    nbr = lambda: Neighbours(torch.randint(0, N, (b, k), generator=g), torch.randint(0, k + 1, (b,), generator=g),
                             torch.full((b,), 2.0))
    domain = torch.randint(0, 2, (b,), generator=g)
    user_features, item_features = torch.randn(b, USER_W, generator=g), torch.randn(b, ITEM_W, generator=g)
    return ExampleBatch(users, items, torch.arange(b) + 19000, domain,
                        torch.randint(0, 2, (b, 2), generator=g).float(), nbr(), nbr(),
                        user_features=user_features, item_features=item_features)


@pytest.mark.parametrize("encoder,fusion,gfae", [
    (EncoderKind.LIGHTGCN, FusionKind.TWO_LEVEL, True),
    (EncoderKind.GRAPHSAGE, FusionKind.BOTTOM_ONLY, False),
])
def test_e2e_grec_forward_and_last_shared_layer(encoder, fusion, gfae):
    cfg = ModelConfig(id_dim=8, feature_dim=8, encoder=encoder, fusion=fusion, gfae=gfae, shared_hidden=(16,),
                      ltr_dim=8, gnn_dim=8, attention_dim=8, tower_hidden=(8,))
    model = build_model(cfg, node_table(), num_domains=2, tasks=["like", "love"])
    out = model(example_batch())
    assert out.logits.shape == (6, 2) and torch.isfinite(out.ltr_loss)
    assert (out.ssl_loss is not None) == gfae
    shared = model.last_shared_layer()
    expected = model.node_input.project.weight if encoder is EncoderKind.LIGHTGCN else model.encoder.combine.weight
    assert shared is expected
    (g,) = torch.autograd.grad(out.ltr_loss, shared, retain_graph=True)  # LTR reaches the shared layer
    assert g.abs().sum() > 0
    if gfae:
        (g,) = torch.autograd.grad(out.ssl_loss, shared)
        assert g.abs().sum() > 0


def test_node_input_rejects_features_of_the_wrong_width():
    ni = NodeInput(node_table().features, USER_W, id_dim=4, feature_dim=3)
    with pytest.raises(ValueError, match="user_features has width 3 but gold.nodes' user features have width 2"):
        ni(torch.tensor([0]), torch.zeros(1, 3), "user")


def test_sparse_embeddings_update_only_touched_rows():
    cfg = ModelConfig(id_dim=4, feature_dim=4, shared_hidden=(8,), ltr_dim=8, gnn_dim=8, attention_dim=8,
                      tower_hidden=(4,))
    model = build_model(cfg, node_table(), 2, ["like", "love"], sparse_embeddings=True)
    batch = example_batch(b=2)
    batch.user.count.zero_()
    batch.item.count.zero_()  # only the target nodes are touched
    before = model.node_input.ids.weight.detach().clone()
    opt = torch.optim.SparseAdam(model.sparse_parameters(), lr=0.1)
    out = model(batch)
    (out.ltr_loss + out.ssl_loss).backward()
    assert model.node_input.ids.weight.grad.is_sparse
    opt.step()
    changed = (model.node_input.ids.weight.detach() != before).any(1).nonzero().flatten().tolist()
    assert set(changed) == set(batch.user_node.tolist()) | set(batch.item_node.tolist())
    assert math.isfinite(float(out.ltr_loss.detach()))
