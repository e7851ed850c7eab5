"""The comparison runner, MGOE's pinned gold.macro and the two-stage pipeline on a tiny planted lake."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from tests.training_lake import MACRO_CLUSTERS, TASKS, build_rows, macro_rows, write_planted_lake
from training import cli
from training.comparison_tables import SUMMARY_COLUMNS
from training.config import DataConfig
from training.data.loader import resolve_training_snapshots
from training.data.macro import load_macro_table
from training.data.snapshot import SnapshotError
from training.train import load_trained_model

torch.set_num_threads(1)
TINY = ["--eval-period", "day", "--id-dim", "8", "--feature-dim", "8", "--ltr-dim", "8", "--gnn-dim", "8", "--attention-dim", "8",
        "--shared-hidden", "16", "--tower-hidden", "8", "--expert-hidden", "16", "8", "--experts", "2",
        "--macro-dim", "4", "--threads", "1", "--no-progress", "--device", "cpu", "--loader", "arrow",
        "--batch-size", "64", "--lr", "0.01"]


@pytest.fixture(scope="module")
def planted(spark, tmp_path_factory):
    return write_planted_lake(spark, str(tmp_path_factory.mktemp("compare") / "lake"), with_macro=True)


def test_macro_table_is_pinned_by_the_manifest_and_indexed_by_node(planted):
    snaps = resolve_training_snapshots(DataConfig(lake=planted.root, run=planted.run_id), with_macro=True)
    assert (snaps.macro.version, snaps.macro_pinned_by) == (planted.macro_version, "manifest")
    n = planted.n_users + planted.n_items
    table = load_macro_table(snaps.macro, TASKS, n, "d0,d1,d2")
    examples, _, cutoff = build_rows()
    expected = {r[0]: r for r in macro_rows(examples, planted.n_users, planted.n_items, cutoff)}
    for node in (0, 7, planted.n_users + 4, n - 1):
        counts = table.user_counts if node < planted.n_users else table.item_counts
        assert int(table.macro_id[node]) == expected[node][2]
        for t in range(len(TASKS)):
            assert counts[table.row[node], t].tolist() == expected[node][3 + t], (node, t)
    assert (table.n_domains, table.n_clusters) == (3, MACRO_CLUSTERS)
    with pytest.raises(SnapshotError, match="codes domains as 'd0,d1,d2' but the examples as 'x,y'"):
        load_macro_table(snaps.macro, TASKS, n, "x,y")
    with pytest.raises(SnapshotError, match=f"gold.nodes has {n + 1} nodes"):
        load_macro_table(snaps.macro, TASKS, n + 1)


def test_compare_two_models_two_seeds(planted, tmp_path, capsys):
    from training import compare

    out = tmp_path / "cmp"
    rc = compare.main(["--lake", planted.root, "--run", planted.run_id, "--models", "ltr,mgoe", "--seeds", "2", "--grid", "lr=0.01",
                       "--epochs", "2", "--out", str(out), *TINY])
    assert rc == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert f"gold.macro v{planted.macro_version}" in printed and "gate utilisation" in printed
    summary = pd.read_parquet(out / "comparison.parquet")
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert len(summary) == 2 * len(TASKS) * len(planted.eval_days)
    per_run = {(m, s): pd.read_parquet(out / "runs" / m / f"seed{s}" / "metrics.parquet")
               for m in ("ltr", "mgoe") for s in (0, 1)}
    for r in summary.itertuples():
        vals = {k: [float(df[(df.task == r.task) & (df.date == r.date)][k].iloc[0]) for (m, _), df in per_run.items()
                    if m == r.model] for k in ("auc", "gauc", "logloss")}
        for k, v in vals.items():
            assert getattr(r, f"{k}_mean") == pytest.approx(sum(v) / 2), (r, k)
            assert getattr(r, f"{k}_std") == pytest.approx(abs(v[0] - v[1]) / math.sqrt(2)), (r, k)
        base = summary[(summary.model == "ltr") & (summary.task == r.task) & (summary.date == r.date)].auc_mean.iloc[0]
        if r.model == "mgoe":
            assert r.lift_pct == pytest.approx((r.auc_mean / base - 1) * 100)
    assert (summary["seeds"] == 2).all() and (summary["auc_mean"] > 0.55).all()
    md = (out / "comparison.md").read_text()
    for needle in ("## AUC per task and period", "relative AUC lift vs ltr", "## Summary over the evaluation periods",
                   "## Training time per model", "| mgoe |", " ± "):
        assert needle in md, needle
    assert "E2E-GRec ablations" not in md
    assert (out / "auc_by_day.png").stat().st_size > 0 and (out / "lift_by_day.png").stat().st_size > 0
    seeds = pd.read_parquet(out / "comparison_seeds.parquet")
    assert len(seeds) == 2 * 2 * len(TASKS) * len(planted.eval_days)
    gates = pd.read_parquet(out / "runs" / "mgoe" / "seed1" / "gates.parquet")
    assert set(gates["gate"]) == set(TASKS) and set(gates["epoch"]) == {0, 1}
    np.testing.assert_allclose(gates.groupby(["epoch", "gate"])["mean_weight"].sum(), 1.0, rtol=1e-6)
    assert not (out / "runs" / "ltr" / "seed0" / "gates.parquet").exists()
    run = json.loads((out / "runs" / "mgoe" / "seed0" / "run.json").read_text())
    assert run["snapshots"]["macro"]["version"] == planted.macro_version
    model, _ = load_trained_model(out / "runs" / "mgoe" / "seed0" / "checkpoint.pt")  # self-contained checkpoint
    assert model.macro.user_counts.shape == (planted.n_users, len(TASKS), 3)


def test_two_stage_pretrains_on_the_train_split(planted, tmp_path, capsys):
    out = tmp_path / "two_stage"
    rc = cli.main(["--lake", planted.root, "--run", planted.run_id, "--model", "two_stage", "--pretrain-epochs", "4",
                   "--max-steps", "3", "--out", str(out), *TINY])
    assert rc == 0, capsys.readouterr().err
    examples, _, cutoff = build_rows()
    likes = {(e[0], e[1]) for e in examples if e[2] < cutoff and e[7] == 1}
    run = json.loads((out / "run.json").read_text())
    assert run["pretrain"]["task"] == "like" and run["pretrain"]["positives"] == len(likes)
    losses = run["pretrain"]["epoch_losses"]
    assert len(losses) == 4 and losses[-1] < losses[0]
    assert run["pretrain_seconds"] > 0
    model, _ = load_trained_model(out / "checkpoint.pt")
    assert model.graph_embeddings.shape == (planted.n_users + planted.n_items, 8)
    assert cli.main(["--lake", planted.root, "--run", planted.run_id, "--model", "two_stage",
                     "--pretrain-task", "click", "--out", str(out), *TINY]) == 1
    assert "--pretrain-task 'click' is not one of the tasks" in capsys.readouterr().err


def test_compare_refuses_bad_requests(planted, tmp_path, capsys):
    from training import compare

    common = ["--lake", planted.root, "--out", str(tmp_path / "x"), *TINY]
    assert compare.main(["--models", "mgoe,e2e_grec", *common]) == 1
    assert "--baseline ltr is not among --models" in capsys.readouterr().err
    assert compare.main(["--models", "ltr", "--model", "mgoe", *common]) == 1
    assert "--model does not apply to grec compare" in capsys.readouterr().err
    assert compare.main(["--models", "ltr,ple:no_gfae", *common]) == 1
    assert "ablations apply to e2e_grec only" in capsys.readouterr().err
