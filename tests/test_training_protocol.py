"""The evaluation protocol: validation, early stopping, selection that never reads the evaluation
period, paired lifts with intervals, evaluation periods and the tiny-evaluation flag."""
from __future__ import annotations

import datetime as dt
import json
import math

import pandas as pd
import pytest
import torch
from torch import nn

from tests.test_training_compare import TINY
from tests.training_lake import write_planted_lake
from training.comparison_tables import paired_lift
from training.config import ConfigError, EvalPeriod, TrainConfig
from training.metrics import EPOCH, choose_period, evaluate, period_starts
from training.selection import Grid, describe
from training.train import eval_size_warnings
from training.validation import EarlyStopping, score, validation_table

torch.set_num_threads(1)
VAL_LAKE = {"val_days": 2, "train_days": 5, "eval_days": 2}


@pytest.fixture(scope="module")
def lakes(spark, tmp_path_factory):
    """The same planted lake twice, once with the evaluation labels replaced by a leak."""
    base = tmp_path_factory.mktemp("protocol")
    return (write_planted_lake(spark, str(base / "clean"), **VAL_LAKE),
            write_planted_lake(spark, str(base / "leak"), eval_label_leak=True, **VAL_LAKE))


def _compare(lake, out, *extra):
    from training import compare

    return compare.main(["--lake", lake.root, "--run", lake.run_id, "--models", "ltr,shared_bottom", "--seeds", "1",
                         "--epochs", "2", "--grid", "lr=0.002,0.02", "--out", str(out), *TINY, *extra])


def test_selection_never_reads_the_evaluation_period(lakes, tmp_path, capsys):
    clean, leak = lakes
    assert _compare(clean, tmp_path / "clean") == 0, capsys.readouterr().err
    assert _compare(leak, tmp_path / "leak") == 0, capsys.readouterr().err
    sel = [pd.read_parquet(tmp_path / name / "selection.parquet") for name in ("clean", "leak")]
    assert len(sel[0]) == 4 and sel[0].groupby("model")["selected"].sum().tolist() == [1, 1]
    cols = ["model", "point", "val_auc", "best_epoch", "epochs_run", "selected"]
    pd.testing.assert_frame_equal(sel[0][cols], sel[1][cols])
    # The leak did reach the evaluation: the same chosen models score differently there.
    evals = [pd.read_parquet(tmp_path / name / "comparison_seeds.parquet") for name in ("clean", "leak")]
    assert not evals[0]["auc"].equals(evals[1]["auc"])
    for model in ("ltr", "shared_bottom"):
        run = json.loads((tmp_path / "clean" / "runs" / model / "seed0" / "run.json").read_text())
        chosen = sel[0][(sel[0].model == model) & sel[0].selected].point.iloc[0]
        assert f"lr={run['config']['optim']['lr']:g}" == chosen
    search = tmp_path / "clean" / "search" / "ltr"
    assert sorted(p.name for p in search.iterdir()) == ["lr-0.002", "lr-0.02"]
    assert not (search / "lr-0.002" / "metrics.parquet").exists()  # selection runs write no evaluation
    md = (tmp_path / "clean" / "comparison.md").read_text()
    for needle in ("## Protocol", "lr{0.002, 0.02}", "## Paired lift vs ltr over seeds", "95% interval",
                   "## Selection runs (validation split only)", "**yes**"):
        assert needle in md, needle


def test_a_grid_needs_a_validation_split(spark, tmp_path, capsys):
    from training import compare

    lake = write_planted_lake(spark, str(tmp_path / "lake"), train_days=3, eval_days=1, rows_per_day=60)
    rc = compare.main(["--lake", lake.root, "--models", "ltr", "--grid", "lr=0.01,0.02", "--out",
                       str(tmp_path / "x"), *TINY])
    assert rc == 1 and "--grid needs a validation split" in capsys.readouterr().err


def test_fit_restores_the_best_validated_epoch(lakes, tmp_path):
    from training.config import ModelName
    from training.data.loader import resolve_training_snapshots, split_files
    from training.data.nodes import load_node_table
    from training.data.resident import load_resident_graph, neighbors_k
    from training.data.split_data import SplitData
    from training.distributed import DistContext
    from training.train import fit, predict_split

    clean = lakes[0]
    cfg = TrainConfig()
    cfg.data.lake, cfg.data.run, cfg.data.batch_size = clean.root, clean.run_id, 64
    cfg.model.name, cfg.model.id_dim, cfg.model.feature_dim = ModelName.SHARED_BOTTOM, 8, 8
    cfg.run.epochs, cfg.run.patience, cfg.run.device, cfg.run.progress = 4, 0, "cpu", False
    cfg.run.out, cfg.optim.lr = str(tmp_path / "run"), 0.05
    cfg.run.checkpoint = False
    result = fit(TrainConfig.from_dict(cfg.to_dict()))
    curve = result.validation
    assert sorted(curve["epoch"].unique()) == [0, 1, 2, 3] and (curve["n"] == clean.val_rows).all()
    per_epoch = curve.groupby("epoch")["auc"].mean()
    assert result.best_epoch == int(per_epoch.idxmax()) and result.best_score == pytest.approx(per_epoch.max())
    # The returned model is the best epoch's, whichever epoch that was: score it again from scratch.
    snaps = resolve_training_snapshots(cfg.data)
    cpu = torch.device("cpu")
    graph = load_resident_graph(snaps.neighbors, neighbors_k(snaps.examples, snaps.neighbors),
                                load_node_table(snaps.nodes).degree, cpu, 1)
    val = SplitData.load(cfg, snaps, split_files(snaps.examples, "val"), graph, cpu, "val")
    probs, labels, _, _ = predict_split(result.model, val, DistContext(0, 1, 0, cpu), amp=False)
    assert score(validation_table(probs, labels, snaps.tasks, 0)) == pytest.approx(per_epoch.max(), abs=1e-9)
    assert result.metrics["n"].sum() == clean.eval_rows * 2  # two tasks, every evaluation row once


def _linear(value: float) -> nn.Module:
    m = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        m.weight.fill_(value)
    return m


def test_early_stopping_keeps_the_best_weights_and_counts_patience():
    model = _linear(0.0)
    stop = EarlyStopping(patience=2)
    decisions = []
    for epoch, value in enumerate([0.60, 0.80, float("nan"), 0.70, 0.90]):
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        decisions.append(stop.update(epoch, value, model))
    # 0.8 at epoch 1, then NaN and 0.7 are two epochs without a better score: stop at epoch 3.
    assert decisions[:4] == [False, False, False, True]
    assert (stop.best_epoch, stop.best_score) == (4, 0.90)  # a later better epoch still counts when asked
    stop = EarlyStopping(patience=0)
    for epoch, value in enumerate([0.6, 0.8, 0.7]):
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        assert not stop.update(epoch, value, model)
    weight = model.weight
    assert stop.restore(model) and model.weight is weight and float(model.weight.detach()) == 1.0
    copy = EarlyStopping(patience=0)
    copy.load_state_dict(stop.state_dict(), torch.device("cpu"))
    model.weight.data.fill_(5.0)
    assert copy.restore(model) and float(model.weight.detach()) == 1.0 and copy.best_epoch == 1
    assert not EarlyStopping(1).restore(model)


def test_paired_lift_interval_by_hand():
    rows = []
    for seed, (a, b) in enumerate([(0.70, 0.707), (0.70, 0.714), (0.70, 0.721)]):  # lifts 1%, 2%, 3%
        rows += [{"model": "base", "task": "like", "seed": seed, "auc": a, "n": 500, "users": 60},
                 {"model": "m", "task": "like", "seed": seed, "auc": b, "n": 500, "users": 60}]
    paired = paired_lift(pd.DataFrame(rows), "base").iloc[0]
    half = 4.302652729911275 * 1.0 / math.sqrt(3)  # t(0.975, 2) * std 1 / sqrt 3
    assert paired.lift_mean == pytest.approx(2.0)
    assert (paired.lift_low, paired.lift_high) == (pytest.approx(2.0 - half), pytest.approx(2.0 + half))
    assert paired.verdict == "inside the noise" and paired.seeds == 3
    rows = [{"model": mdl, "task": "like", "seed": s, "auc": auc, "n": 500, "users": 60} for s, (x, y) in
            enumerate([(0.70, 0.735), (0.70, 0.7357), (0.70, 0.7343)]) for mdl, auc in (("base", x), ("m", y))]
    assert paired_lift(pd.DataFrame(rows), "base").iloc[0].verdict == "better"
    one = paired_lift(pd.DataFrame(rows[:2]), "base").iloc[0]
    assert one.verdict == "one seed: no interval" and math.isnan(one.lift_low)


def test_evaluation_periods_group_days_into_weeks_and_months():
    start = (dt.date(2024, 1, 29) - EPOCH).days          # a Monday
    days = torch.arange(start, start + 40)
    weeks = period_starts(days, EvalPeriod.WEEK)
    expected = [((EPOCH + dt.timedelta(days=int(d))) - dt.timedelta(days=(EPOCH + dt.timedelta(days=int(d))).weekday())
                 - EPOCH).days for d in days]
    assert weeks.tolist() == expected
    months = period_starts(days, EvalPeriod.MONTH)
    assert [EPOCH + dt.timedelta(days=int(m)) for m in months.unique()] == [dt.date(2024, 1, 1), dt.date(2024, 2, 1),
                                                                            dt.date(2024, 3, 1)]
    # 40 days x 100 rows: a day holds 100 rows, a week 700, a month up to ~2,900.
    rows = days.repeat_interleave(100)
    assert choose_period(rows, EvalPeriod.AUTO, cell_rows=100) is EvalPeriod.DAY
    assert choose_period(rows, EvalPeriod.AUTO, cell_rows=700) is EvalPeriod.WEEK
    assert choose_period(rows, EvalPeriod.AUTO, cell_rows=701) is EvalPeriod.MONTH
    assert choose_period(rows, EvalPeriod.DAY, cell_rows=10**9) is EvalPeriod.DAY
    # Weekly AUC equals the AUC of the week's pooled rows, counted pair by pair.
    g = torch.Generator().manual_seed(0)
    probs = torch.rand(len(rows), 1, generator=g)
    labels = (torch.rand(len(rows), 1, generator=g) < probs).float()
    table = evaluate(probs, labels, torch.zeros(len(rows), dtype=torch.long), rows, ["like"], "m",
                     period=EvalPeriod.WEEK)
    week = table.iloc[1]
    lo = (week.date - EPOCH).days
    sel = (rows >= lo) & (rows < lo + 7)
    p, y = probs[sel, 0], labels[sel, 0]
    pos, neg = p[y == 1], p[y == 0]
    pairs = (pos[:, None] > neg[None, :]).double().sum() + 0.5 * (pos[:, None] == neg[None, :]).double().sum()
    assert week.n == 700 and week.auc == pytest.approx(float(pairs / (len(pos) * len(neg))))
    assert (table["users"] == 1).all()


def test_a_tiny_evaluation_is_flagged(lakes, tmp_path, capsys):
    from training import cli

    clean = lakes[0]
    out = tmp_path / "run"
    assert cli.main(["--lake", clean.root, "--run", clean.run_id, "--model", "ltr", "--out", str(out), *TINY]) == 0
    run = json.loads((out / "run.json").read_text())
    assert len(run["warnings"]) == 1 and f"{clean.eval_rows:,} rows from 40 users" in run["warnings"][0]
    assert "> **WARNING:**" in (out / "metrics.md").read_text()
    assert eval_size_warnings(1000, 50, "eval") == [] and eval_size_warnings(999, 500, "eval")
    assert eval_size_warnings(10**6, 49, "eval")


def test_grid_parsing():
    grid = Grid.parse(["lr=0.001,0.003", "model.dropout=0,0.1", "loss_weighting=fixed"])
    points = grid.points()
    assert len(points) == 4 and describe(points[1]) == "lr=0.001 dropout=0.1 loss_weighting=fixed"
    assert points[0][("optim", "lr")] == 0.001 and isinstance(points[0][("model", "dropout")], float)
    for bad, message in ((["lr"], "expected name=v1,v2"), (["nope=1"], "unknown setting 'nope'"),
                         (["lr=1,1"], "repeats a value"), (["lr=x"], "is not a valid float"),
                         (["shared_hidden=1,2"], "cannot be searched"), (["lr=1", "optim.lr=2"], "twice")):
        with pytest.raises(ConfigError, match=message):
            Grid.parse(bad)
    assert Grid(()).points() == [{}]
