"""The pipeline on a Spark standalone cluster (master + 2 workers on 127.0.0.1, started by
scripts/standalone_cluster.py, code shipped as a zip) writes the same tables as on local[2]."""
from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
import time
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from etl.jobs import pipeline
from etl.jobs.shell import job_main
from etl.lake import Lake, RunManifest, StageRecord
from schemas.contract import EXIT_OK

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "scripts" / "standalone_cluster.py"
PIPELINE_ARGS = ["--source", "synthetic", "--rows", "2000", "--users", "150", "--items", "60", "--seed", "3",
                 "--k", "5", "--clusters", "3"]
# gold.macro is left out: its KMeans user clusters depend on the partitioning (k-means|| samples
# each partition); only its rows' identity and the items' macro ids (domain codes) are compared.
TABLES = ["bronze.interactions", "bronze.users", "bronze.items", "silver.swing_i2i", "gold.nodes", "gold.edges",
          "gold.graph_stats", "gold.neighbors", "gold.examples"]


def _script():
    if "standalone_cluster" not in sys.modules:
        spec = importlib.util.spec_from_file_location("standalone_cluster", SCRIPT)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod  # dataclasses resolve their module through sys.modules
        spec.loader.exec_module(mod)
    return sys.modules["standalone_cluster"]


def test_code_zip_holds_the_packages_the_pipeline_imports(tmp_path):
    z = zipfile.ZipFile(_script().build_code_zip(tmp_path / "code.zip"))
    names = set(z.namelist())
    want = {p.relative_to(REPO_ROOT).as_posix() for pkg in ("etl", "schemas") for p in (REPO_ROOT / pkg).rglob("*.py")}
    assert names == want
    assert {"etl/jobs/pipeline.py", "etl/session.py", "schemas/tables.py"} <= names


def test_submit_command_names_the_master_jars_and_code():
    sc = _script()
    cmd = sc.submit_command("spark://127.0.0.1:7077", Path("/x/code.zip"), ["--source", "synthetic"])
    assert cmd[cmd.index("--master") + 1] == "spark://127.0.0.1:7077"
    assert cmd[cmd.index("--py-files") + 1] == "/x/code.zip"
    jars = cmd[cmd.index("--jars") + 1].split(",")
    assert any(Path(j).name.startswith("delta-spark_") for j in jars) and all(Path(j).is_file() for j in jars)
    assert cmd[-3:] == [str(REPO_ROOT / "etl" / "jobs" / "pipeline.py"), "--source", "synthetic"]


@pytest.mark.parametrize("pipeline_args", [["--source", "synthetic", "--lake", "x"], ["--run-id=r"], []])
def test_script_refuses_pipeline_args_it_sets_itself_or_none(pipeline_args, tmp_path):
    with pytest.raises(SystemExit) as e:
        _script().main(["--workdir", str(tmp_path), "--", *pipeline_args])
    assert e.value.code == 2


def test_manifest_times_are_utc_instants_whatever_the_drivers_zone(spark, lake, monkeypatch):
    started = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)
    monkeypatch.setenv("TZ", "Asia/Kathmandu")  # UTC+05:45: a naive reading would shift by 20,700 s
    time.tzset()
    try:
        RunManifest(lake).append(spark, StageRecord("r", "ingest", "succeeded", started_at=started,
                                                    finished_at=started + timedelta(seconds=90)))
    finally:
        monkeypatch.undo()
        time.tzset()
    row = RunManifest(lake).records(spark, "r").select(F.col("started_at").cast("long").alias("s"),
                                                        F.col("finished_at").cast("long").alias("f")).first()
    assert (row["s"], row["f"]) == (1709294400, 1709294490)  # 2024-03-01T12:00:00Z and 90 s later


def _rows(spark, lake: Lake, table: str) -> list[tuple]:
    """The table as a sorted list of rows, ordered by their non-float fields, then their floats."""
    def key(row: tuple) -> tuple:
        floats = [v for v in row if _is_float(v)]
        return repr([None if _is_float(v) else v for v in row]), repr(floats)
    return sorted((tuple(r) for r in lake.read(spark, table).collect()), key=key)


def _is_float(v) -> bool:
    return isinstance(v, float) or (isinstance(v, list) and any(isinstance(x, float) for x in v))


def _same(a, b) -> bool:
    # Spark sums doubles in shuffle order, so a sum may differ in its last bits between partitionings.
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(map(_same, a, b))
    return a == b


@pytest.mark.slow
def test_pipeline_on_standalone_cluster_matches_local(spark, tmp_path):
    workdir = tmp_path / "cluster"
    # The cluster's JVMs and driver run in a zone far from UTC: the tables must still hold UTC dates.
    env = {**os.environ, "TZ": "Asia/Kathmandu"}
    t0 = time.time()
    with open(tmp_path / "script.log", "w+") as log:
        cluster_run = subprocess.Popen([sys.executable, str(SCRIPT), "--workdir", str(workdir), "--cluster-only",
                                        "--", *PIPELINE_ARGS], stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            # The local[2] reference runs meanwhile: much of either run is latency, not CPU.
            local = Lake(str(tmp_path / "lake-local"))
            assert job_main(pipeline.add_arguments, pipeline.run,
                            [*PIPELINE_ARGS, "--lake", local.root, "--run-id", "cluster"]) == EXIT_OK
            rc = cluster_run.wait(timeout=1800)
        finally:
            if cluster_run.poll() is None:
                cluster_run.terminate()  # the script stops its daemons on SIGTERM
                cluster_run.wait(timeout=60)
        log.seek(0)
        driver_log = workdir / "logs" / "driver.log"
        assert rc == 0, log.read()[-3000:] + (driver_log.read_text()[-5000:] if driver_log.exists() else "")

    # Both workers ran an executor of the application, and each fetched the code zip the driver shipped.
    for n in (0, 1):
        executor_dirs = [d for d in (workdir / f"worker-{n}").glob("app-*/*") if d.is_dir()]
        assert executor_dirs, f"worker-{n} launched no executor"
        assert any((d / "grec-code.zip").is_file() for d in executor_dirs), f"worker-{n} never got grec-code.zip"

    cluster = Lake(str(workdir / "lake-cluster"))
    manifest = RunManifest(cluster).records(spark, "cluster").select(
        "stage", "status", F.col("started_at").cast("long").alias("t")).collect()
    assert {r["stage"]: r["status"] for r in manifest} == {s: "succeeded" for s in pipeline.STAGES}
    assert all(t0 - 1 <= r["t"] <= time.time() for r in manifest), "manifest times are not UTC instants"
    for table in TABLES:
        want, got = _rows(spark, local, table), _rows(spark, cluster, table)
        assert want, f"{table} is empty in the local run"
        assert len(got) == len(want), f"{table}: {len(got)} rows on the cluster, {len(want)} on local[2]"
        bad = [(g, w) for g, w in zip(got, want) if not _same(g, w)]
        assert not bad, f"{table}: {len(bad)} rows differ between the cluster and local[2], e.g. {bad[:2]}"
    macro = [sorted((r["node_id"], r["node_type"], r["macro_id"] if r["node_type"] == "item" else None)
                    for r in lake.read(spark, "gold.macro").collect()) for lake in (cluster, local)]
    assert macro[0] == macro[1] and len(macro[1]) == len(_rows(spark, local, "gold.nodes"))
