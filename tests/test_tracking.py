"""MLflow tracking of `grec train` and `grec compare` against a local file store, read back with the
MLflow client: params, per-period metrics, snapshot tags, artifacts, store resolution, nesting."""
from __future__ import annotations

import datetime as dt
import filecmp
import json
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from schemas.split import MIN_EVAL_USERS
from tests.test_training_compare import TINY
from tests.training_lake import TASKS, write_planted_lake
from training import cli
from training.config import SECTIONS, RunConfig
from training.tracking import TrackingError, resolve_tracking_uri, tracked

mlflow_tracking = pytest.importorskip("mlflow.tracking")
torch.set_num_threads(1)
LTR = ["--model", "ltr", "--epochs", "2", "--patience", "0", *TINY]


@pytest.fixture(scope="module")
def planted(spark, tmp_path_factory):
    # 60 users: enough distinct users a day (schemas.split.MIN_EVAL_USERS) for the overall means
    return write_planted_lake(spark, str(tmp_path_factory.mktemp("tracking") / "lake"), val_days=1, n_users=60)


def runs_in(store: Path, experiment: str = "grec") -> list:
    client = mlflow_tracking.MlflowClient(tracking_uri=store.as_uri())
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id])


def delta_version(root: str, table: str) -> int:
    """The latest committed version of a table, read from its _delta_log file names alone."""
    log = Path(root.removeprefix("file://")) / table.replace(".", "/") / "_delta_log"
    return max(int(p.stem) for p in log.glob("*.json"))


def day_ms(day: dt.date) -> int:
    return int(pd.Timestamp(day, tz="UTC").timestamp() * 1000)


def test_train_run_logs_params_metrics_snapshot_tags_and_outputs(planted, tmp_path, capsys):
    store, out = tmp_path / "store", tmp_path / "out"
    rc = cli.main(["--lake", planted.root, "--run", planted.run_id, "--out", str(out),
                   "--tracking-uri", store.as_uri(), "--experiment", "tiny", *LTR])
    assert rc == 0, capsys.readouterr().err
    [run] = runs_in(store, "tiny")
    client = mlflow_tracking.MlflowClient(tracking_uri=store.as_uri())
    assert run.info.status == "FINISHED" and run.info.run_name == "ltr seed 0"

    params = run.data.params
    assert len(params) == sum(len(c.__dataclass_fields__) for c in SECTIONS.values())
    assert (params["model.name"], params["run.epochs"], params["data.lake"]) == ("ltr", "2", planted.root)
    assert params["model.shared_hidden"] == "[16]"

    tags = run.data.tags
    assert tags["grec.lake"] == planted.root and tags["grec.run_id"] == planted.run_id
    expected_versions = {t: delta_version(planted.root, t) for t in ("gold.examples", "gold.nodes", "gold.neighbors")}
    assert expected_versions["gold.examples"] == planted.examples_version
    assert expected_versions["gold.nodes"] == planted.nodes_version
    assert {k.removeprefix("grec.table_version."): int(v) for k, v in tags.items()
            if k.startswith("grec.table_version.")} == expected_versions
    assert (tags["grec.model"], tags["grec.phase"], tags["grec.device"], tags["grec.out"]) == \
           ("ltr", "evaluation", "cpu", str(out.resolve()))

    written = pd.read_parquet(out / "metrics.parquet")
    assert len(written) == len(TASKS) * len(planted.eval_days)
    dates = sorted(written["date"].unique())
    for metric in ("auc", "gauc", "logloss"):
        for task in TASKS:
            history = {m.step: (m.value, m.timestamp) for m in client.get_metric_history(run.info.run_id,
                                                                                         f"{metric}/{task}")}
            rows = written[(written.task == task) & written[metric].notna()]
            assert len(history) == len(rows) > 0, (metric, task)
            for r in rows.itertuples():
                value, timestamp = history[dates.index(r.date)]
                assert value == pytest.approx(getattr(r, metric), rel=1e-12)
                assert timestamp == day_ms(r.date)
    for task in TASKS:
        rows = written[(written.task == task) & (written.users >= MIN_EVAL_USERS)]
        assert len(rows) == len(planted.eval_days)
        assert run.data.metrics[f"overall/auc/{task}"] == pytest.approx((rows.auc * rows.n).sum() / rows.n.sum())
        val = client.get_metric_history(run.info.run_id, f"val/auc/{task}")
        assert sorted(m.step for m in val) == [1, 2]
    summary = json.loads((out / "run.json").read_text())
    assert run.data.metrics["train_seconds"] == pytest.approx(summary["train_seconds"])
    assert run.data.metrics["best_epoch"] == summary["best_epoch"] + 1

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"metrics.parquet", "metrics.md", "auc_by_day.png", "run.json", "train_log.parquet",
                         "validation.parquet"}
    local = Path(client.download_artifacts(run.info.run_id, "metrics.parquet", str(tmp_path)))
    assert filecmp.cmp(local, out / "metrics.parquet", shallow=False)


def test_env_store_is_used_unless_the_flag_names_another(planted, tmp_path, monkeypatch, capsys):
    env_store, flag_store = tmp_path / "env", tmp_path / "flag"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", env_store.as_uri())
    # --version, not --run: the ETL run id comes from the manifest's record of who wrote that version.
    base = ["--lake", planted.root, "--version", str(planted.examples_version), *LTR]
    assert cli.main([*base, "--out", str(tmp_path / "a")]) == 0, capsys.readouterr().err
    [run] = runs_in(env_store)
    assert run.data.tags["grec.run_id"] == planted.run_id
    assert cli.main([*base, "--out", str(tmp_path / "b"), "--tracking-uri", flag_store.as_uri()]) == 0
    assert len(runs_in(env_store)) == 1 and len(runs_in(flag_store)) == 1
    assert cli.main([*base, "--out", str(tmp_path / "c"), "--no-tracking"]) == 0
    assert len(runs_in(env_store)) == 1 and len(runs_in(flag_store)) == 1


def test_store_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    monkeypatch.chdir(tmp_path)
    assert resolve_tracking_uri(None) == (tmp_path / "mlruns").resolve().as_uri()
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "17.3")
    assert resolve_tracking_uri(None) == "databricks"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert resolve_tracking_uri(None) == "http://mlflow.example:5000"
    assert resolve_tracking_uri("file:/elsewhere") == "file:/elsewhere"
    assert RunConfig().tracking and RunConfig().experiment == "grec"


def test_tracking_off_needs_no_mlflow_and_on_without_it_says_what_to_do(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)  # as if mlflow were not installed
    with tracked(RunConfig(tracking=False), "off", {}) as tracker:
        assert tracker is None
    with pytest.raises(TrackingError, match="requirements/tracking.txt.*--no-tracking"):
        with tracked(RunConfig(), "on", {}):
            pass


def test_compare_logs_a_parent_with_selection_and_evaluation_children(planted, tmp_path, capsys):
    from training import compare

    store, out = tmp_path / "store", tmp_path / "cmp"
    rc = compare.main(["--lake", planted.root, "--run", planted.run_id, "--models", "ltr,shared_bottom",
                       "--seeds", "1", "--grid", "lr=0.01,0.003", "--epochs", "1", "--out", str(out),
                       "--tracking-uri", store.as_uri(), *TINY])
    assert rc == 0, capsys.readouterr().err
    runs = runs_in(store)
    [parent] = [r for r in runs if r.data.tags.get("grec.command") == "compare"]
    children = [r for r in runs if r is not parent]
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in children)
    phases = sorted((r.data.tags["grec.label"], r.data.tags["grec.phase"]) for r in children)
    assert phases == [("ltr", "evaluation"), ("ltr", "selection"), ("ltr", "selection"),
                      ("shared_bottom", "evaluation"), ("shared_bottom", "selection"), ("shared_bottom", "selection")]
    assert parent.info.status == "FINISHED"
    assert parent.data.params["compare.models"] == "ltr,shared_bottom"
    tags = parent.data.tags
    assert (tags["grec.run_id"], tags["grec.table_version.gold.examples"]) == (planted.run_id,
                                                                              str(planted.examples_version))
    client = mlflow_tracking.MlflowClient(tracking_uri=store.as_uri())
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"comparison.md", "comparison.parquet", "auc_by_day.png", "lift_by_day.png",
            "selection.parquet"} <= artifacts
    days = pd.read_parquet(out / "comparison.parquet")
    dates = sorted(days["date"].unique())
    for r in days[days.auc_mean.notna()].itertuples():
        history = {m.step: m.value for m in client.get_metric_history(parent.info.run_id,
                                                                      f"auc_mean/{r.model}/{r.task}")}
        assert history[dates.index(r.date)] == pytest.approx(r.auc_mean, rel=1e-12)
