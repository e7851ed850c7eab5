"""Baselines, MMoE, PLE, MGOE, two-stage pretraining, gate statistics and the comparison tables, without Spark."""
from __future__ import annotations

import dataclasses
import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
import torch

from tests.test_training_models import N, example_batch, node_table
from training.comparison_tables import summarise_days, summarise_overall
from training.compare import ModelSpec, parse_models
from training.config import ConfigError, EncoderKind, LossWeighting, ModelConfig, ModelName, TrainConfig
from training.data.examples import Neighbours
from training.data.macro import MacroTable
from training.distributed import DistContext
from training.gates import GateStats, summarise
from training.models import MODELS, SideInputs, build_model
from training.models.mgoe import macro_weights
from training.report import lift_by_day_figure
from training.pretrain import TrainingGraph, pretrain_lightgcn_bpr

torch.set_num_threads(1)
TASKS = ["like", "love"]
CPU = DistContext(0, 1, 0, torch.device("cpu"))


def tiny_config(name: ModelName) -> ModelConfig:
    return ModelConfig(name=name, id_dim=8, feature_dim=8, shared_hidden=(16,), ltr_dim=8, gnn_dim=8,
                       attention_dim=8, tower_hidden=(8,), experts=3, expert_hidden=(12, 8), macro_dim=4)


def tiny_macro() -> MacroTable:
    """node_table's 3 users (clusters 0..2) and 4 items (domains 0..1); counts per task (T = 2)."""
    user_counts = torch.tensor([[[2, 0], [1, 0]], [[0, 3], [0, 0]], [[1, 1], [0, 1]]], dtype=torch.float32)
    item_counts = torch.arange(4 * 2 * 3, dtype=torch.float32).reshape(4, 2, 3) % 3
    return MacroTable(macro_id=torch.tensor([0, 1, 2, 0, 1, 0, 1]), row=torch.tensor([0, 1, 2, 0, 1, 2, 3]),
                      user_counts=user_counts, item_counts=item_counts)


def side_inputs() -> SideInputs:
    embeddings = torch.randn(N, 6, generator=torch.Generator().manual_seed(3))
    return SideInputs(macro=tiny_macro(), graph_embeddings=embeddings)


def built(name: ModelName):
    torch.manual_seed(0)
    return build_model(tiny_config(name), node_table(), num_domains=2, tasks=TASKS, side=side_inputs())


@pytest.mark.parametrize("name", list(ModelName))
def test_every_model_runs_forward_and_backward(name):
    model = built(name)
    out = model(example_batch())
    assert out.logits.shape == (6, 2) and torch.isfinite(out.ltr_loss)
    out.ltr_loss.backward()
    unreached = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unreached, f"parameters the ranking loss never reaches: {unreached}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_registry_covers_every_model_name():
    assert set(MODELS) == set(ModelName)
    with pytest.raises(ValueError, match="mgoe needs the side input 'macro'"):
        build_model(tiny_config(ModelName.MGOE), node_table(), 2, TASKS)


@pytest.mark.parametrize("name,widths", [
    (ModelName.MMOE, {"like": 3, "love": 3}),
    (ModelName.PLE, {"level1/like": 2, "level1/love": 2, "level1/shared": 3, "level2/like": 2, "level2/love": 2}),
    (ModelName.MGOE, {"like": 5, "love": 5}),   # 3 shared experts + one macro expert per task
])
def test_gates_are_distributions_over_the_named_experts(name, widths):
    model = built(name)
    gates = model(example_batch()).gates
    assert {g: w.shape[1] for g, w in gates.items()} == widths
    assert {g: len(e) for g, e in model.gate_experts.items()} == widths
    for g, w in gates.items():
        assert (w >= 0).all(), g
        torch.testing.assert_close(w.sum(1), torch.ones(w.shape[0]))


def test_macro_weights_hand_computed():
    counts = torch.tensor([[3.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0], [2.0, 2.0, 0.0, 5.0]])
    # softmax over the macro neighbours (count > 0) of log(1 + c) / 1.3, e.g. row 0:
    # 4^(1/1.3) = 2.90488, 2^(1/1.3) = 1.70442 -> 0.630227, 0.369773
    expected = torch.tensor([[0.630227, 0.0, 0.369773, 0.0], [0.0, 0.0, 0.0, 0.0],
                             [0.269952, 0.269952, 0.0, 0.460096]])
    torch.testing.assert_close(macro_weights(counts, tau=1.3), expected, atol=1e-6, rtol=0)


def test_mgoe_attention_without_target_signal_gives_the_macro_weights():
    model = built(ModelName.MGOE)
    expert = model.macro_experts[0]
    with torch.no_grad():
        expert.query_user_side.weight.zero_()
    counts = torch.tensor([[3.0, 1.0], [0.0, 4.0]])
    beta = expert.attention(expert.query_user_side(torch.randn(2, 16)), model.item_macro.weight, counts)
    torch.testing.assert_close(beta, macro_weights(counts, 1.3))
    user_counts, item_counts = model.macro.counts(torch.tensor([1, 2]), torch.tensor([5, 3]))
    torch.testing.assert_close(user_counts, tiny_macro().user_counts[[1, 2]])
    torch.testing.assert_close(item_counts, tiny_macro().item_counts[[2, 0]])  # items 5 and 3 are rows 2 and 0


def test_mgoe_training_rows_read_macro_counts_without_their_own_labels():
    model = built(ModelName.MGOE)
    # user 2 (cluster 2) x item 4 (domain 1) shown in domain 0, like and love; user 0 (cluster 0) x item 3
    # (domain 0) shown in domain 0, like only
    users, items, domains = torch.tensor([2, 0]), torch.tensor([4, 3]), torch.tensor([0, 0])
    labels = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    user_counts, item_counts = model.macro.counts_without(users, items, domains, labels)
    # gold.macro counts a user's positives per domain the row was shown in: user 2's [[1, 1], [0, 1]]
    # lose one in domain 0 (not its item's domain 1), love's 0 staying 0; user 0's [[2, 0], [1, 0]] one
    # in domain 0 on like only. Item 4's [[0, 1, 2], [0, 1, 2]] lose one from cluster 2 on both tasks;
    # item 3's like count from cluster 0 is already 0 and stays 0.
    torch.testing.assert_close(user_counts, torch.tensor([[[0.0, 1.0], [0.0, 1.0]], [[1.0, 0.0], [1.0, 0.0]]]))
    torch.testing.assert_close(item_counts, torch.tensor([[[0.0, 1.0, 1.0], [0.0, 1.0, 1.0]],
                                                          [[0.0, 1.0, 2.0], [0.0, 1.0, 2.0]]]))

    # A training forward equals a forward that ignores the rule on tables holding those counts; an
    # evaluation forward reads the stored counts.
    batch = dataclasses.replace(example_batch(b=2), user_node=users, item_node=items, domain_id=domains,
                                labels=labels)
    reference = built(ModelName.MGOE)
    reference.exclude_own = False
    reference.macro.user_counts[reference.macro.row[users]] = user_counts
    reference.macro.item_counts[reference.macro.row[items]] = item_counts
    model.train(), reference.train()
    torch.testing.assert_close(model(batch).logits, reference(batch).logits)
    model.eval(), reference.eval()
    assert not torch.allclose(model(batch).logits, reference(batch).logits)


def test_mgoe_expert_graph_adjacency_is_learned_and_row_stochastic():
    model = built(ModelName.MGOE)
    out = model(example_batch())
    out.ltr_loss.backward()
    a = model.expert_graph.adjacency()
    torch.testing.assert_close(a.sum(1), torch.ones(a.shape[0]))
    assert model.expert_graph.adjacency_logits.grad.abs().sum() > 0


def test_two_stage_embeddings_are_frozen():
    model = built(ModelName.TWO_STAGE)
    before = model.graph_embeddings.clone()
    assert not any(p is model.graph_embeddings for p in model.parameters())
    assert not model.graph_embeddings.requires_grad
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    batch = example_batch()
    model(batch).ltr_loss.backward()
    opt.step()
    assert model.graph_embeddings.grad is None
    assert torch.equal(model.graph_embeddings, before)
    with torch.no_grad():  # and they are used: other embeddings, other scores
        logits = model(batch).logits
        model.graph_embeddings.mul_(-1.0)
        assert not torch.allclose(model(batch).logits, logits)


def test_e2e_grec_ranking_loss_reaches_neighbour_embeddings_through_the_encoder():
    model = built(ModelName.E2E_GREC)
    batch = example_batch()
    targets = set(batch.user_node.tolist()) | set(batch.item_node.tolist())
    ids = torch.full_like(batch.user.ids, 0)
    outsider = next(v for v in range(N) if v not in targets)
    ids[:, 0] = outsider
    batch.user = Neighbours(ids, torch.ones_like(batch.user.count), torch.full_like(batch.user.degree, 2.0))
    batch.item.count.zero_()
    (g,) = torch.autograd.grad(model(batch).ltr_loss, model.node_input.ids.weight)
    assert g[outsider].abs().sum() > 0  # the graph block's gradient trains the encoder's inputs (end to end)
    batch.user.count.zero_()
    (g,) = torch.autograd.grad(model(batch).ltr_loss, model.node_input.ids.weight)
    assert g[outsider].abs().sum() == 0  # and it arrives only through the neighbour list
    cfg = tiny_config(ModelName.E2E_GREC)
    cfg.encoder = EncoderKind.GRAPHSAGE  # an encoder with weights: the ranking loss trains them
    sage = build_model(cfg, node_table(), 2, TASKS)
    (g,) = torch.autograd.grad(sage(example_batch()).ltr_loss, sage.encoder.combine.weight)
    assert g.abs().sum() > 0


def test_bpr_pretraining_separates_two_communities():
    # users 0..3 like items 8..11, users 4..7 like items 12..15; every list holds all neighbours
    like = {u: list(range(8, 12)) if u < 4 else list(range(12, 16)) for u in range(8)}
    nbrs = {**like, **{i: [u for u in range(8) if i in like[u]] for i in range(8, 16)}}
    ids = torch.tensor([nbrs[v] for v in range(16)])
    graph = TrainingGraph(ids, torch.full((16,), 4), torch.tensor([(u, i) for u in like for i in like[u]]),
                          torch.arange(8, 16))
    pre = pretrain_lightgcn_bpr(graph, torch.full((16,), 4.0), dim=8, epochs=30, lr=0.05, l2=1e-4, batch_size=8,
                                seed=0, device=torch.device("cpu"))
    z = pre.embeddings
    scores = z[:8] @ z[8:].T
    positive = torch.tensor([[i in like[u] for i in range(8, 16)] for u in range(8)])
    assert scores[positive].min() > scores[~positive].max()
    assert pre.epoch_losses[-1] < pre.epoch_losses[0]
    # Two cold nodes: user 16 without a positive, item 17 outside the candidate items, no lists.
    ids18 = torch.cat([ids, torch.zeros((2, 4), dtype=torch.long)])
    count = torch.cat([torch.full((16,), 4), torch.zeros(2, dtype=torch.long)])
    cold = TrainingGraph(ids18, count, graph.positives, graph.items)
    pre = pretrain_lightgcn_bpr(cold, torch.cat([torch.full((16,), 4.0), torch.zeros(2)]), dim=8, epochs=2, lr=0.05,
                                l2=1e-4, batch_size=8, seed=0, device=torch.device("cpu"))
    assert pre.ids[16:].abs().sum() == 0 and pre.embeddings[16:].abs().sum() == 0
    assert (pre.ids[:16].abs().sum(1) > 0).all()


def test_gate_stats_hand_computed_and_collapse_warning():
    stats = GateStats({"like": ["e0", "e1"]}, torch.device("cpu"))
    stats.update({"like": torch.tensor([[0.9, 0.1], [0.6, 0.4]])})
    stats.update({"like": torch.tensor([[0.2, 0.8]])})
    frame = stats.frame(0, CPU)
    assert frame["mean_weight"].tolist() == pytest.approx([1.7 / 3, 1.3 / 3])
    assert frame["top1_share"].tolist() == pytest.approx([2 / 3, 1 / 3])
    assert frame["examples"].tolist() == [3, 3]
    assert "warning" not in summarise(frame)
    collapsed = GateStats({"love": ["a", "b"]}, torch.device("cpu"))
    collapsed.update({"love": torch.tensor([[0.95, 0.05], [0.97, 0.03]])})
    assert "warning: gate love puts 96% of its weight on a" in summarise(collapsed.frame(0, CPU))


def per_seed_rows() -> pd.DataFrame:
    d1, d2 = dt.date(2024, 1, 1), dt.date(2024, 1, 2)
    na = (math.nan, math.nan, math.nan)  # a day with one class: n/a for every model and seed
    rows = [("ltr", 0, "like", d1, 0.70, 0.60, 0.5), ("ltr", 1, "like", d1, 0.72, 0.62, 0.4),
            ("ltr", 0, "like", d2, *na), ("ltr", 1, "like", d2, *na),
            ("mgoe", 0, "like", d1, 0.77, 0.70, 0.3), ("mgoe", 1, "like", d1, 0.79, 0.72, 0.2),
            ("mgoe", 0, "like", d2, *na), ("mgoe", 1, "like", d2, *na)]
    df = pd.DataFrame(rows, columns=["model", "seed", "task", "date", "auc", "gauc", "logloss"])
    return df.assign(n=100, users=60)


def test_lift_plot_has_one_bar_per_model_and_period_at_the_hand_computed_lift():
    rows = per_seed_rows()
    shared = rows[rows["model"] == "mgoe"].assign(model="shared_bottom", auc=lambda d: d["auc"] - 0.05)
    fig = lift_by_day_figure(summarise_days(pd.concat([rows, shared]), "ltr"), "ltr")
    (ax,) = fig.axes
    heights = {c.get_label(): [b.get_height() for b in c] for c in ax.containers}
    assert set(heights) == {"mgoe", "shared_bottom"}      # the baseline gets no bars
    # day 1: mean AUCs 0.78 and 0.73 over ltr's 0.71; day 2 is n/a for everyone: no bar (NaN height)
    assert heights["mgoe"][0] == pytest.approx((0.78 / 0.71 - 1) * 100)
    assert heights["shared_bottom"][0] == pytest.approx((0.73 / 0.71 - 1) * 100)
    assert math.isnan(heights["mgoe"][1]) and math.isnan(heights["shared_bottom"][1])


def test_comparison_summaries_hand_computed():
    days = summarise_days(per_seed_rows(), "ltr").set_index(["model", "date"])
    d1, d2 = dt.date(2024, 1, 1), dt.date(2024, 1, 2)
    assert days.loc[("mgoe", d1), "auc_mean"] == pytest.approx(0.78)
    assert days.loc[("mgoe", d1), "auc_std"] == pytest.approx(math.sqrt(2 * 0.01 ** 2))  # ddof = 1
    assert days.loc[("mgoe", d1), "lift_pct"] == pytest.approx((0.78 / 0.71 - 1) * 100)
    assert math.isnan(days.loc[("ltr", d1), "lift_pct"])       # the baseline has no lift
    assert math.isnan(days.loc[("mgoe", d2), "auc_mean"])      # n/a stays n/a
    overall = summarise_overall(per_seed_rows(), "ltr").set_index("model")
    assert overall.loc["mgoe", "days"] == 1 and overall.loc["mgoe", "gauc_mean"] == pytest.approx(0.71)
    assert overall.loc["mgoe", "lift_pct"] == pytest.approx((0.78 / 0.71 - 1) * 100)
    # Periods weigh by their rows: a full week of 300 rows at 0.8 and a short one of 100 at 0.6.
    d1, d2 = dt.date(2024, 1, 1), dt.date(2024, 1, 8)
    d3 = dt.date(2024, 1, 15)
    weeks = pd.DataFrame([("ltr", 0, "like", d1, 0.8, 0.8, 0.5, 300, 80), ("ltr", 0, "like", d2, 0.6, 0.6, 0.5, 100, 50),
                          ("ltr", 0, "like", d3, 0.1, 0.1, 0.5, 900, 49)],  # under 50 users: shown, left out
                         columns=["model", "seed", "task", "date", "auc", "gauc", "logloss", "n", "users"])
    row = summarise_overall(weeks, "ltr").iloc[0]
    assert (row.auc_mean, row.days) == (pytest.approx(0.75), 2)
    assert summarise_days(weeks, "ltr").set_index("date").loc[d3, "auc_mean"] == pytest.approx(0.1)


def test_model_specs_and_ablations():
    base = TrainConfig()
    spec = ModelSpec.parse("e2e_grec:no_gfae")
    cfg = spec.config(base, seed=4, out="x")
    assert (spec.label, cfg.run.label, cfg.run.seed) == ("e2e_grec:no_gfae", "e2e_grec:no_gfae", 4)
    assert not cfg.model.gfae and cfg.optim.loss_weighting is LossWeighting.FIXED
    assert ModelSpec.parse("e2e_grec:graphsage").config(base, 0, "x").model.encoder is EncoderKind.GRAPHSAGE
    assert base.model.gfae and base.model.encoder is EncoderKind.LIGHTGCN  # the base is not modified
    labels = [s.label for s in parse_models("ltr,e2e_grec", ablations=True)]
    assert labels == ["ltr", "e2e_grec", "e2e_grec:no_gfae", "e2e_grec:fixed_weights", "e2e_grec:bottom_only",
                      "e2e_grec:graphsage"]  # the paper's four; the warm-start variant only when named
    assert ModelSpec.parse("e2e_grec:warm_start").config(base, 0, "x").model.warm_start
    cfg = TrainConfig()
    cfg.model.name, cfg.model.warm_start = ModelName.LTR, True
    with pytest.raises(ConfigError, match="--warm-start applies to e2e_grec only"):
        cfg.validate()
    for text, message in (("ltr:no_gfae", "e2e_grec only"), ("xgb", "unknown model 'xgb'"),
                          ("e2e_grec:nope", "unknown ablation 'nope'"), ("ltr,ltr", "twice")):
        with pytest.raises(ConfigError, match=message):
            parse_models(text, ablations=False)


def test_baseline_configs_ignore_e2e_loss_settings():
    cfg = TrainConfig()
    cfg.model.name, cfg.model.gfae = ModelName.MMOE, False   # GradNorm default: only e2e_grec must change it
    assert not cfg.validate().model.ssl
    cfg.model.experts = 0
    with pytest.raises(ConfigError, match="--experts must be >= 1"):
        cfg.validate()
    assert np.isclose(TrainConfig().model.macro_tau, 1.3)


def test_warm_start_copies_the_pretrained_id_table_into_e2e_grec():
    cfg = ModelConfig(name=ModelName.E2E_GREC, id_dim=8, feature_dim=8)
    model = build_model(cfg, node_table(), 2, ["like"])
    table = torch.randn(N, 8)
    model.warm_start(table)
    assert torch.equal(model.node_input.ids.weight.detach(), table)
    with pytest.raises(ValueError, match="warm-start table"):
        model.warm_start(torch.randn(N, 4))
