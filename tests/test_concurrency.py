"""Runs sharing one lake: Delta conflicts retried or named, one process per run id, two pipelines at once.

The retry rule is tested on Delta's own exception classes (no Spark needed); the run-id claim on a
real manifest, with a live process (a `sleep` this test starts) or a dead one holding the run; and
two pipelines started together as two `grec etl run` processes, as two scheduled jobs would be.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from delta import exceptions as dx

from etl.conflicts import ATTEMPTS, ConcurrentRunError, with_conflict_retry
from etl.lake import Lake, RunManifest, StageRecord, TableVersion
from etl.stage import Stage
from schemas import Col, Kind, TableSchema, runs
from schemas.tables import QUARANTINE, RUNS

REPO = Path(__file__).resolve().parent.parent


def _conflict(cls, run_id: str, stage: str = "swing", operation: str = "MERGE"):
    meta = json.dumps({"run_id": run_id, "stage": stage})
    commit = json.dumps({"timestamp": 1, "operation": operation, "userMetadata": meta})
    return cls(message=f"[DELTA_X] conflict.\nConflicting commit: {commit}\nRefer to the docs")


def _flaky(errors: list):
    """A write that raises `errors` in turn, then returns 'done'; counts its calls."""
    calls = []

    def write():
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return "done"
    return write, calls


def test_conflicts_with_other_runs_are_retried_with_growing_waits():
    errors = [_conflict(c, "other") for c in (dx.ProtocolChangedException, dx.ConcurrentAppendException,
                                              dx.ConcurrentDeleteReadException, dx.MetadataChangedException)]
    write, calls = _flaky(errors)
    waits: list[float] = []
    assert with_conflict_retry(write, table="gold.nodes", run_id="mine", stage="graph", sleep=waits.append) == "done"
    assert len(calls) == 5 and len(waits) == 4
    # jitter is 0.5x..1.5x of a doubling base, so a wait three steps later is always longer
    assert waits[3] > waits[0]


def test_a_conflict_with_the_same_run_id_is_refused_with_what_to_do():
    write, calls = _flaky([_conflict(dx.ConcurrentDeleteReadException, "mine", "ingest", "WRITE")])
    with pytest.raises(ConcurrentRunError) as e:
        with_conflict_retry(write, table="quarantine.interactions", run_id="mine", stage="ingest", sleep=lambda s: None)
    assert len(calls) == 1
    msg = str(e.value)
    assert "WRITE (run mine, stage ingest)" in msg and "ConcurrentDeleteReadException" in msg
    assert "second process is running run mine" in msg and "--run-id" in msg


def test_conflicts_that_outlast_the_attempts_stop_with_the_last_writer_named():
    write, calls = _flaky([_conflict(dx.ConcurrentAppendException, "other")] * ATTEMPTS)
    with pytest.raises(ConcurrentRunError) as e:
        with_conflict_retry(write, table="_runs", run_id="mine", stage="macro", sleep=lambda s: None)
    assert len(calls) == ATTEMPTS
    assert f"gave up after {ATTEMPTS} attempts" in str(e.value) and "MERGE (run other, stage swing)" in str(e.value)


def test_a_conflict_delta_does_not_name_is_named_by_the_newest_commit_which_never_refuses():
    unnamed = dx.ConcurrentAppendException(message="[DELTA_CONCURRENT_APPEND.WITHOUT_HINT] a concurrent MERGE")
    newest = {"version": 9, "operation": "MERGE", "userMetadata": {"run_id": "mine", "stage": "graph"}}
    write, calls = _flaky([unnamed] * ATTEMPTS)
    with pytest.raises(ConcurrentRunError) as e:  # not refused at once: the newest commit may be any one
        with_conflict_retry(write, table="_runs", run_id="mine", stage="macro", sleep=lambda s: None,
                            latest=lambda: newest)
    assert len(calls) == ATTEMPTS
    assert "MERGE (run mine, stage graph) at version 9 (the table's newest commit; Delta named none)" in str(e.value)


PER_RUN = TableSchema("quarantine.toy", [Col("run_id", Kind.STRING, "run"), Col("v", Kind.LONG, "value")],
                      partition_by=("run_id",))


def test_an_empty_replace_of_a_runs_rows_reports_the_current_version(spark, lake):
    rows = lambda *r: spark.createDataFrame(list(r), PER_RUN.spark_schema())
    assert lake.write(rows(("a", 1), ("a", 2)), PER_RUN, run_id="a", stage="s", replace_where="run_id = 'a'") \
        == TableVersion("quarantine.toy", 0, 2)
    # run b has no rows and had none: Delta commits nothing, and b's (zero) rows are those of version 0
    assert lake.write(rows(), PER_RUN, run_id="b", stage="s", replace_where="run_id = 'b'") \
        == TableVersion("quarantine.toy", 0, 0)
    assert lake.read(spark, PER_RUN).where("run_id = 'b'").count() == 0


def _held_by(spark, lake: Lake, run_id: str, pid: int) -> None:
    """Write a manifest row saying process `pid` on this host is running stage ingest of `run_id`."""
    record = StageRecord(run_id=run_id, stage="ingest", status="running",
                         message=f"running in process {pid} on {socket.gethostname()} (feedc0ffee12)")
    RunManifest(lake).append(spark, record)


def test_a_run_id_held_by_a_live_process_is_refused_and_a_dead_ones_is_taken_over(spark, lake):
    sleeper = subprocess.Popen(["sleep", "120"])
    try:
        _held_by(spark, lake, "r1", sleeper.pid)
        with pytest.raises(ConcurrentRunError) as e:
            with Stage(spark, lake, "r1", "swing"):
                pytest.fail("the stage body must not run")
        assert "run r1 is already running: its stage ingest" in str(e.value)
        assert f"process {sleeper.pid}" in str(e.value) and "another --run-id" in str(e.value)
        rows = {r.stage: r.status for r in RunManifest(lake).records(spark, "r1").collect()}
        assert rows == {"ingest": "running"}  # its claim was given up: no stage of the run
        log = lake.read(spark, RUNS).where("run_id = 'r1' AND stage = 'swing'").collect()
        assert sorted(r.status for r in log) == ["failed", "running"]
        assert all(r.message.startswith(f"running in process {os.getpid()} ") for r in log if r.status == "running")
        assert [r.message.split(":")[0] for r in log if r.status == "failed"] == [runs.REFUSED.split(":")[0]]
        with Stage(spark, lake, "r2", "swing"):  # another run id goes on beside it
            pass
    finally:
        sleeper.kill()
        sleeper.wait()
    # the holder is gone (killed, as a crashed job would be): the same run id may run again
    with Stage(spark, lake, "r1", "ingest"):
        pass
    rows = {r.stage: (r.status, r.message) for r in RunManifest(lake).records(spark, "r1").collect()}
    assert rows["ingest"] == ("succeeded", None)


def test_the_manifest_log_reads_as_each_stages_latest_attempt_that_was_not_refused(spark, lake):
    at = lambda minute: datetime(2024, 1, 1, 0, minute, tzinfo=timezone.utc)
    owner = "running in process 1 on elsewhere (0123456789ab)"
    log = [  # (run, stage, status, started, finished, message), in the order they were appended
        ("r", "swing", "running", at(0), None, owner),
        ("r", "swing", "succeeded", at(0), at(1), None),
        ("r", "graph", "running", at(4), None, owner),
        ("r", "graph", "succeeded", at(4), at(5), None),
        ("r", "swing", "running", at(2), None, owner),       # swing again: it failed
        ("r", "swing", "failed", at(2), at(3), "ValueError: boom"),
        ("r", "graph", "running", at(6), None, owner),       # a claim that lost a race and gave up
        ("r", "graph", "failed", at(6), at(6), "refused: run r is already running"),
        ("r", "macro", "running", at(7), None, owner),       # still running
        ("q", "swing", "succeeded", at(1), at(2), None),
    ]
    fields = RUNS.spark_schema().fieldNames()
    rows = [dict(zip(fields, (r, st, status, "{}", "[]", "[]", t0, t1, None, None, msg)))
            for r, st, status, t0, t1, msg in log]
    spark.createDataFrame([tuple(d[f] for f in fields) for d in rows], RUNS.spark_schema()) \
        .write.format("delta").mode("append").save(lake.path(RUNS))
    want = {("r", "swing"): ("failed", at(2)), ("r", "graph"): ("succeeded", at(4)),
            ("r", "macro"): ("running", at(7)), ("q", "swing"): ("succeeded", at(1))}
    assert {(d["run_id"], d["stage"]): (d["status"], d["started_at"]) for d in runs.current_rows(rows)} == want
    got = {(r.run_id, r.stage): (r.status, _utc(r.started_at)) for r in RunManifest(lake).records(spark).collect()}
    assert got == {k: (status, t.replace(tzinfo=None)) for k, (status, t) in want.items()}
    assert RunManifest(lake).records(spark, "q").count() == 1
    # the graph attempt that gave up holds no run, the one still running does (its owner is on another host)
    with pytest.raises(ConcurrentRunError, match="its stage macro"):
        RunManifest(lake).claim(spark, StageRecord(run_id="r", stage="examples", status="running"))


def _utc(t: datetime) -> datetime:
    """A timestamp collected from Spark (naive, in the driver's local zone) as a naive UTC datetime."""
    return t.astimezone(timezone.utc).replace(tzinfo=None)


# ---- two pipelines at once ---------------------------------------------------------------------------
SOURCE = ["--source", "synthetic", "--rows", "1500", "--users", "60", "--items", "40", "--domains", "2",
          "--days", "8"]
GRAPH = ["--eval-days", "2", "--k", "4", "--clusters", "2", "--min-user-items", "1"]
SEEDS = {"run-a": "1", "run-b": "2"}


def _start(lake: Lake, run_id: str, out: Path) -> subprocess.Popen:
    env = {**os.environ, "GREC_SPARK_UI": "0", "GREC_DRIVER_MEMORY": "1g"}
    cmd = [sys.executable, "-m", "etl.jobs.pipeline", "--lake", lake.root, "--run-id", run_id,
           *SOURCE, "--seed", SEEDS[run_id], *GRAPH]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=open(out, "w"))


@pytest.mark.slow
def test_two_pipelines_started_together_on_a_new_lake_both_succeed_with_their_own_rows(spark, lake, tmp_path):
    logs = {r: tmp_path / f"{r}.log" for r in SEEDS}
    procs = {r: _start(lake, r, logs[r]) for r in SEEDS}
    try:
        codes = {r: p.wait(timeout=1200) for r, p in procs.items()}
    finally:  # a timed-out test must not leave its pipelines writing to the lake behind it
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    assert codes == {r: 0 for r in SEEDS}, {r: logs[r].read_text()[-3000:] for r in SEEDS}
    for r in SEEDS:
        assert "Traceback" not in logs[r].read_text()

    _each_run_holds_its_own_rows(spark, lake)


def _each_run_holds_its_own_rows(spark, lake: Lake) -> None:
    from etl.jobs.pipeline import STAGES
    from etl.sources import load_source

    manifest = RunManifest(lake)
    for run_id, seed in SEEDS.items():
        stages = {row.stage: row.status for row in manifest.records(spark, run_id).collect()}
        assert stages == {s: "succeeded" for s in STAGES}
        pinned = manifest.outputs_of(spark, run_id)
        # every pinned version of a whole-table snapshot is a commit of this run; the shared per-run
        # quarantine holds this run's rows at its pinned version (none here: then Delta commits nothing)
        for table, tv in pinned.items():
            if table == QUARANTINE.name:
                mine = lake.read(spark, table, tv.version).where(f"run_id = '{run_id}'").count()
                assert mine == tv.rows, (table, tv, mine)
                continue
            commits = {h.version: h.run_id for h in lake.history(spark, table).collect()}
            assert commits[tv.version] == run_id, (table, tv, commits)
        # ... and every stage read its own run's versions of the tables the run wrote
        for row in manifest.records(spark, run_id).collect():
            for t in json.loads(row.inputs):
                if t["table"] in pinned:
                    assert t["version"] == pinned[t["table"]].version, (run_id, row.stage, t)
        # bronze holds exactly the events this run's source generates (the other seed's differ)
        src = load_source(spark, "synthetic", rows=1500, users=60, items=40, domains=2, days=8, seed=int(seed))
        cols = ["user_id", "item_id", "ts", "click"]
        want = {tuple(r) for r in src.interactions.select(*cols).collect()}  # a set: ingest drops repeated events
        got = [tuple(r) for r in lake.read(spark, "bronze.interactions", pinned["bronze.interactions"].version)
               .select(*cols).collect()]
        assert len(got) == len(set(got)) and set(got) == want


# ---- error paths -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_pipeline_error_paths_end_with_a_message_and_no_traceback(tmp_path):
    env = {**os.environ, "GREC_SPARK_UI": "0", "GREC_DRIVER_MEMORY": "1g", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, str(REPO / "tests" / "pipeline_error_paths.py"), str(tmp_path)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    err = done.stderr
    assert done.returncode == 0 and "Traceback" not in err, err[-4000:]
    codes = dict(line.split()[1:] for line in done.stdout.splitlines() if line.startswith("EXIT "))
    assert codes == {"swing-empty": "2", "no-source": "1", "missing-table": "1", "bad-synthetic": "1",
                     "run-held": "3"}, (codes, err[-4000:])
    # each names what is wrong and what to change
    assert re.search(r"none of the [\d,]+ users with positives has 2\.\.1000 distinct positive items "
                     r"\(min_user_items = 2; the most any user has is 1\)", err)
    assert "Swing needs pairs of users sharing items" in err
    assert "needs --source" in err
    assert "does not exist" in err
    assert "rows >= users" in err
    assert "run held is already running" in err and "another --run-id" in err
