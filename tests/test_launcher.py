"""`grec train --launcher spark`: TorchDistributor's ranks train exactly as torchrun's do; bad launches are refused."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from tests.training_lake import write_planted_lake
from training import cli

REPO = Path(__file__).resolve().parents[1]
TINY = ["--eval-period", "day", "--id-dim", "8", "--feature-dim", "8", "--ltr-dim", "8", "--gnn-dim", "8",
        "--attention-dim", "8", "--shared-hidden", "16", "--tower-hidden", "8", "--threads", "1", "--no-progress",
        "--device", "cpu", "--loader", "arrow", "--batch-size", "64", "--lr", "0.01"]


@pytest.mark.parametrize("argv, message", [
    (["--num-processes", "0"], "--num-processes must be >= 1, got 0"),
    (["--num-processes", "2"], "--num-processes 2 needs --launcher spark"),
])
def test_bad_process_counts_exit_1_naming_the_flag(argv, message, tmp_path, capsys):
    assert cli.main([*argv, "--out", str(tmp_path)]) == 1
    assert message in capsys.readouterr().err


def test_more_ranks_than_gpus_is_refused_before_spark_starts(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    argv = ["--launcher", "spark", "--num-processes", "2", "--device", "cuda", "--out", str(tmp_path)]
    assert cli.main(argv) == 1
    assert "--num-processes 2 needs one GPU per rank and 1 are visible" in capsys.readouterr().err


def test_spark_launcher_under_torchrun_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "x")
    assert cli.main(["--launcher", "spark", "--device", "cpu", "--out", str(tmp_path)]) == 1
    assert "--launcher spark starts its own ranks" in capsys.readouterr().err


def test_compare_refuses_the_launcher_flags(tmp_path, capsys):
    from training import compare

    assert compare.main(["--models", "ltr", "--launcher", "spark", "--out", str(tmp_path)]) == 1
    assert "--launcher does not apply to grec compare (it trains every model in this process)" in \
        capsys.readouterr().err


@pytest.fixture(scope="module")
def lake_root(spark, tmp_path_factory) -> str:
    return write_planted_lake(spark, str(tmp_path_factory.mktemp("launch") / "lake"), val_days=1).root


@pytest.mark.slow  # two 2-rank trainings: ~130 s on a busy 2-core machine
def test_spark_launcher_trains_what_torchrun_trains(lake_root, tmp_path, monkeypatch, capsys):
    args = ["--lake", lake_root, "--run-id", "r1", "--epochs", "2", "--seed", "3", *TINY]
    torchrun, spark = tmp_path / "torchrun", tmp_path / "spark"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "training.cli", *args, "--out", str(torchrun)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what torchrun sets for its ranks when unset
    assert cli.main([*args, "--launcher", "spark", "--num-processes", "2", "--out", str(spark)]) == 0
    assert "examples/s over" in capsys.readouterr().out  # rank 0's report reaches the driver's stdout

    runs = {p: json.loads((p / "run.json").read_text()) for p in (torchrun, spark)}
    assert runs[torchrun]["world_size"] == runs[spark]["world_size"] == 2
    assert runs[spark]["config"]["run"]["launcher"] == "spark"
    # Same ranks, same shards, same gloo all-reduces: the two launches end bit for bit at the same model.
    a = torch.load(torchrun / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(spark / "checkpoint.pt", weights_only=True)["model"]
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    for table in ("metrics.parquet", "train_log.parquet", "validation.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(torchrun / table), pd.read_parquet(spark / table))


@pytest.mark.slow  # its own JVM: the session under test must be the one the launcher starts
def test_a_session_the_launcher_starts_declares_the_gpus_torchdistributor_picks_from():
    # Spark runs the discovery script without looking for GPUs, so this holds on a CPU machine too.
    code = ("from pyspark.ml.torch.distributor import TorchDistributor, _get_gpus_owned\n"
            "from pyspark.sql import SparkSession\n"
            "from training.launch import _driver_session\n"
            "with _driver_session(3):\n"
            "    d = TorchDistributor(num_processes=2, local_mode=True, use_gpu=True)\n"
            "    print(d.num_tasks, _get_gpus_owned(SparkSession.active()))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.strip().splitlines()[-1] == "2 ['0', '1', '2']"
