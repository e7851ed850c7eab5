"""Runs sharing one lake: Delta conflicts retried or named, one process per run id, two pipelines at once.

The retry rule is tested on Delta's own exception classes (no Spark needed); the run-id claim on a
real manifest, with a live process (a `sleep` this test starts) or a dead one holding the run; and
two pipelines started together as two `grec etl run` processes, as two scheduled jobs would be.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from delta import exceptions as dx

from etl.conflicts import ATTEMPTS, ConcurrentRunError, with_conflict_retry
from etl.lake import Lake, RunManifest, StageRecord
from etl.stage import Stage

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


def _held_by(spark, lake: Lake, run_id: str, pid: int) -> None:
    """Write a manifest row saying process `pid` on this host is running stage ingest of `run_id`."""
    record = StageRecord(run_id=run_id, stage="ingest", status="running",
                         message=f"running in process {pid} on {socket.gethostname()} (feedc0ffee12)")
    RunManifest(lake).upsert(spark, record)


def test_a_run_id_held_by_a_live_process_is_refused_and_a_dead_ones_is_taken_over(spark, lake):
    sleeper = subprocess.Popen(["sleep", "120"])
    try:
        _held_by(spark, lake, "r1", sleeper.pid)
        with pytest.raises(ConcurrentRunError) as e:
            with Stage(spark, lake, "r1", "swing"):
                pytest.fail("the stage body must not run")
        assert f"run r1 is already running: its stage ingest" in str(e.value)
        assert f"process {sleeper.pid}" in str(e.value) and "another --run-id" in str(e.value)
        rows = {r.stage: r.status for r in RunManifest(lake).records(spark, "r1").collect()}
        assert rows == {"ingest": "running"}  # refused before it claimed: no row of its own
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
