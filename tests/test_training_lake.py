"""The trainer against a real (tiny) lake written by Spark: pinned snapshots, refusals, training, DDP.

One planted lake per module: run r1 writes gold.nodes and gold.examples; a later write replaces the
examples with other rows, so every read of r1's version proves pinning.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from schemas import tables
from tests.training_lake import TASKS, build_rows, slim, write_planted_lake
from training import cli
from training.config import LoaderBackend
from training.data import read_snapshot_table
from training.data.arrow_reader import read_files
from training.data.examples import ExampleBatch, example_columns
from training.data.loader import make_batches, resolve_training_snapshots
from training.data.resident import load_resident_graph
from training.data.snapshot import SnapshotError, resolve_snapshot
from training.train import fit, load_trained_model
from tests.training_ddp_worker import checksum, fixed_weights_config

REPO = Path(__file__).resolve().parents[1]
SCHEMA = tables.examples(list(TASKS))
torch.set_num_threads(1)


def key(row) -> tuple:
    """(user, item, day, split, like, love) of an examples row tuple as build_rows makes it."""
    return (row[0], row[1], row[2], row[3], row[7], row[8])


@pytest.fixture(scope="module")
def planted(spark, tmp_path_factory):
    from etl.lake import Lake

    root = str(tmp_path_factory.mktemp("planted") / "lake")
    info = write_planted_lake(spark, root)
    first, _, _ = build_rows()
    later, _, _ = build_rows(seed=1, rows_per_day=20)
    Lake(root).write(spark.createDataFrame([slim(r) for r in later], SCHEMA.spark_schema()).coalesce(1), SCHEMA,
                     run_id="r2",
                     stage="examples", properties={"grec.labels": ",".join(TASKS), "grec.domains": "d0,d1,d2"})
    return info, Counter(key(r) for r in first), Counter(key(r) for r in later)


def streamed_keys(backend: LoaderBackend, snap) -> Counter:
    seen: Counter = Counter()
    for split in ("train", "eval"):
        for b in make_batches(backend, snap.files_where(split=split), example_columns(TASKS), batch_size=100,
                              shuffle=True, seed=1, shuffle_buffer=300):
            seen.update(zip(b["user_node"].tolist(), b["item_node"].tolist(), b["day"].tolist(), [split] * len(b["day"]),
                            b["like"].tolist(), b["love"].tolist()))
    return seen


def test_pinned_version_returns_its_rows_after_a_later_write(planted):
    info, first, later = planted
    pinned = resolve_snapshot(info.root, "gold.examples", version=info.examples_version)
    cols = ["user_node", "item_node", "day", "split", "like", "love"]
    assert Counter(map(tuple, read_files(pinned, pinned.files, cols).to_pandas().values.tolist())) == first
    for backend in LoaderBackend:
        assert streamed_keys(backend, pinned) == first, backend
    assert read_snapshot_table(info.root, "gold.examples", run=info.run_id, split="eval").num_rows == info.eval_rows
    latest = resolve_snapshot(info.root, "gold.examples")
    assert latest.version == info.examples_version + 1
    assert Counter(map(tuple, read_files(latest, latest.files, cols).to_pandas().values.tolist())) == later


def test_run_and_timestamp_resolve_to_the_pinned_version(planted):
    info, _, _ = planted
    from training.config import DataConfig

    snaps = resolve_training_snapshots(DataConfig(lake=info.root, run=info.run_id))
    assert snaps.examples.version == info.examples_version
    assert (snaps.nodes.version, snaps.nodes_pinned_by) == (info.nodes_version, "manifest")
    assert snaps.tasks == TASKS and snaps.num_domains == 3
    # Delta time travel (Spark's and delta-rs') goes by the commit files' modification times.
    log = Path(snaps.examples.uri.removeprefix("file://")) / "_delta_log" / f"{info.examples_version:020d}.json"
    at = dt.datetime.fromtimestamp(log.stat().st_mtime + 0.001, dt.timezone.utc)
    assert resolve_snapshot(info.root, "gold.examples", timestamp=at.isoformat()).version == info.examples_version
    with pytest.raises(SnapshotError, match="no version of gold.examples"):
        resolve_snapshot(info.root, "gold.examples", timestamp="2001-01-01T00:00:00Z")
    with pytest.raises(SnapshotError, match="cannot open version 99 of gold.examples"):
        resolve_snapshot(info.root, "gold.examples", version=99)
    with pytest.raises(SnapshotError, match="run 'nope' has no succeeded stage"):
        resolve_training_snapshots(DataConfig(lake=info.root, run="nope"))


@pytest.mark.slow  # four Spark commits (~30 s on a busy 2-core machine)
def test_raw_file_reading_refuses_deletion_vectors_and_column_mapping(spark, tmp_path):
    rows, _, _ = build_rows(n_users=5, n_items=5, train_days=1, eval_days=1, rows_per_day=10)
    df = spark.createDataFrame([slim(r) for r in rows], SCHEMA.spark_schema())
    dv = tmp_path / "gold" / "dv"
    df.write.format("delta").option("delta.enableDeletionVectors", "true").save(str(dv))
    assert resolve_snapshot(str(tmp_path), "gold.dv").rows == 20  # feature on, no vector yet: readable
    spark.sql(f"DELETE FROM delta.`{dv}` WHERE user_node < 2")
    with pytest.raises(SnapshotError, match=r"gold.dv v1 has deletion vectors on \d+ file"):
        resolve_snapshot(str(tmp_path), "gold.dv")
    cm = tmp_path / "gold" / "cm"
    (df.write.format("delta").option("delta.columnMapping.mode", "name").option("delta.minReaderVersion", "2")
     .option("delta.minWriterVersion", "5").save(str(cm)))
    with pytest.raises(SnapshotError, match="uses column mapping"):
        resolve_snapshot(str(tmp_path), "gold.cm")


TINY = ["--eval-period", "day", "--id-dim", "8", "--feature-dim", "8", "--ltr-dim", "8", "--gnn-dim", "8", "--attention-dim", "8",
        "--shared-hidden", "16", "--tower-hidden", "8", "--threads", "1", "--no-progress", "--device", "cpu"]


def test_tiny_training_on_planted_signal_beats_chance(planted, tmp_path, capsys):
    info, _, _ = planted
    out = tmp_path / "out"
    rc = cli.main(["--lake", info.root, "--run", info.run_id, "--epochs", "3", "--batch-size", "64", "--lr", "0.01",
                   "--loader", "petastorm", "--out", str(out), *TINY])
    assert rc == 0
    printed = capsys.readouterr().out
    assert f"gold.examples v{info.examples_version}" in printed and f"gold.nodes v{info.nodes_version}" in printed
    m = pd.read_parquet(out / "metrics.parquet")
    assert list(m.columns) == ["model", "task", "date", "auc", "gauc", "logloss", "n", "users"]
    assert len(m) == len(TASKS) * len(info.eval_days)
    assert (m.groupby("task")["n"].sum() == info.eval_rows).all()
    assert (m["auc"] > 0.6).all(), m
    assert m["gauc"].notna().all()
    assert (out / "metrics.md").read_text().count("| e2e_grec |") == len(m)
    assert (out / "auc_by_day.png").stat().st_size > 0
    run = json.loads((out / "run.json").read_text())
    assert run["snapshots"]["examples"]["version"] == info.examples_version
    assert run["snapshots"]["nodes"] == {**run["snapshots"]["nodes"], "version": info.nodes_version,
                                         "pinned_by": "manifest"}
    log = pd.read_parquet(out / "train_log.parquet")
    assert len(log) == 3 * (info.train_rows // 64)  # every step logged
    np.testing.assert_allclose(log["w_ssl"] + log["w_ltr"], 2.0, rtol=1e-5)
    assert log["w_ssl"].nunique() > 1  # GradNorm moved the weights


def test_cli_ablations_and_errors(planted, tmp_path, capsys):
    info, _, _ = planted
    out = tmp_path / "ablation"
    rc = cli.main(["--lake", info.root, "--version", str(info.examples_version), "--loader", "arrow", "--no-gfae",
                   "--loss-weighting", "fixed", "--encoder", "graphsage", "--fusion", "bottom_only", "--max-steps", "2",
                   "--label", "e2e_sage_nogfae", "--out", str(out), *TINY])
    assert rc == 0
    m = pd.read_parquet(out / "metrics.parquet")
    assert set(m["model"]) == {"e2e_sage_nogfae"}
    model, state = load_trained_model(out / "checkpoint.pt")
    assert state["config"]["model"]["encoder"] == "graphsage" and model.fusion.upper is None
    resume = ["--lake", info.root, "--loader", "arrow", "--no-gfae", "--loss-weighting", "fixed", "--encoder",
              "graphsage", "--fusion", "bottom_only", "--max-steps", "2", "--out", str(out), "--resume", *TINY]
    assert cli.main([*resume, "--version", str(info.examples_version), "--epochs", "2"]) == 0
    assert set(pd.read_parquet(out / "train_log.parquet")["epoch"]) == {1}  # epoch 0 came from the checkpoint
    capsys.readouterr()
    assert cli.main([*resume, "--version", str(info.examples_version + 1), "--epochs", "3"]) == 1
    assert "--resume:" in capsys.readouterr().err
    assert cli.main(["--lake", info.root, "--run", "nope", "--out", str(out), *TINY]) == 1
    assert "run 'nope' has no succeeded stage" in capsys.readouterr().err


def pair_auc(scores, labels) -> float:
    pos, neg = scores[labels == 1], scores[labels == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins) / (len(pos) * len(neg))


def test_ddp_two_processes_read_each_example_once_and_gather_metrics(planted, tmp_path, mlflow_store):
    info, first, _ = planted
    out = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           str(REPO / "tests" / "training_ddp_worker.py"), info.root, str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    train_keys = Counter({(u, i, d): 0 for (u, i, d, s, _, _) in first if s == "train"})
    for (u, i, d, s, _, _), n in first.items():
        if s == "train":
            train_keys[(u, i, d)] += n
    # Two ranks of 32 rows a step train on exactly the batches of one process with 64 (interleaved
    # shares of one permutation), so with fixed loss weights they end at the same parameters.
    # Float summation order differs (two half-batch means averaged), hence the tolerance; a single
    # process on other batches (32 rows a step) lands far outside it.
    single = fit(fixed_weights_config(info.root, str(tmp_path / "single"), batch_size=64))
    fixed = json.loads((out / "fixed.json").read_text())
    assert fixed["checksum"] == pytest.approx(checksum(single.model), rel=2e-5)
    # Parameters equal to 2e-5 can still swap a near-tied (positive, negative) pair, and one swap
    # moves an AUC by 1/(positives x negatives), a few times 1e-5 over these 400 eval rows: a few
    # swaps are allowed (the gathered metrics are checked exactly below).
    assert fixed["auc"] == pytest.approx(single.metrics["auc"].tolist(), abs=1e-3)
    other = fit(fixed_weights_config(info.root, str(tmp_path / "other"), batch_size=32))
    assert abs(checksum(other.model) / checksum(single.model) - 1) > 100 * 2e-5
    shards = json.loads((out / "shards.json").read_text())
    for backend, per_rank in shards.items():
        assert all(per_rank), backend  # both ranks got rows
        assert Counter(tuple(k) for rank in per_rank for k in rank) == train_keys, backend
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    # DDP and the all-reduced GradNorm gradient keep the ranks' parameters and loss weights identical.
    assert ranks[0]["checksum"] == pytest.approx(ranks[1]["checksum"], rel=1e-9)
    assert ranks[0]["weights"] == pytest.approx(ranks[1]["weights"], rel=1e-9)
    assert ranks[0]["steps"] == ranks[1]["steps"] == info.train_rows // 2 // 64
    # Only rank 0 logs to MLflow: one tracked run per fit of the two ranks.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_store.as_uri())
    experiment = client.get_experiment_by_name("grec").experiment_id
    for folder in (out, out / "fixed"):
        tracked = client.search_runs([experiment], filter_string=f"tags.`grec.out` = '{folder.resolve()}'")
        assert len(tracked) == 1, folder

    # Metrics gathered from both ranks == metrics of the saved model over the whole eval split.
    metrics = pd.read_parquet(out / "metrics.parquet")
    model, _ = load_trained_model(out / "checkpoint.pt")
    model.eval()
    snap = resolve_snapshot(info.root, "gold.examples", version=info.examples_version)
    cols = example_columns(TASKS)
    table = read_files(snap, snap.files_where(split="eval"), cols)
    neighbors = resolve_snapshot(info.root, "gold.neighbors")
    graph = load_resident_graph(neighbors, 8, model.node_input.features.new_zeros(info.n_users + info.n_items),
                                torch.device("cpu"))
    batch = ExampleBatch.from_columns({c: torch.from_numpy(np.stack(table.column(c).to_numpy(zero_copy_only=False)))
                                       for c in cols}, TASKS, graph=graph)
    with torch.no_grad():
        probs = torch.sigmoid(model(batch).logits).numpy()
    days = batch.day.numpy()
    for r in metrics.itertuples():
        sel = days == (r.date - dt.date(1970, 1, 1)).days
        t = TASKS.index(r.task)
        assert r.n == sel.sum()
        labels = batch.labels.numpy()[sel, t]
        # The ranks scored other batches than this one pass does, so a score can differ in its last
        # float bits and a near-tied (positive, negative) pair swap: each swap moves the AUC by
        # 1 / (positives x negatives). Three are allowed; a lost or misaligned shard moves it far more.
        pairs = (labels == 1).sum() * (labels == 0).sum()
        assert r.auc == pytest.approx(pair_auc(probs[sel, t], labels), abs=3 / pairs)
        assert not math.isnan(r.gauc)
