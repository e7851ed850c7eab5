"""The `_runs` manifest read without a JVM: which table versions a run wrote, and what they were built from.

Same rule as etl.lake.RunManifest.outputs_of: succeeded stages only, in start order, the latest
stage that wrote a table wins.
"""
from __future__ import annotations

import json
from typing import Optional

from schemas.tables import RUNS
from training.data.arrow_reader import read_files
from training.data.snapshot import SnapshotError, resolve_snapshot


def _succeeded_stages(root: str) -> list[dict]:
    try:
        snap = resolve_snapshot(root, RUNS.name)
    except SnapshotError as e:
        raise SnapshotError(f"no readable run manifest under {root}: {e}") from e
    rows = read_files(snap, snap.files, ["run_id", "stage", "status", "inputs", "outputs", "started_at"]).to_pylist()
    return sorted((r for r in rows if r["status"] == "succeeded"), key=lambda r: r["started_at"])


def run_outputs(root: str, run_id: str) -> dict[str, int]:
    """Table name -> Delta version written by run `run_id`."""
    stages = [r for r in _succeeded_stages(root) if r["run_id"] == run_id]
    if not stages:
        raise SnapshotError(f"run {run_id!r} has no succeeded stage in the manifest under {root}")
    out: dict[str, int] = {}
    for r in stages:
        for t in json.loads(r["outputs"]):
            out[t["table"]] = int(t["version"])
    return out


def built_from(root: str, table: str, version: int, other: str) -> Optional[int]:
    """The version of `other` that `table` at `version` was built with, or None when not recorded.

    First the version the writing stage read (its recorded inputs), else the version the same run
    wrote. None also when the lake has no manifest.
    """
    try:
        stages = _succeeded_stages(root)
    except SnapshotError:
        return None
    writers = [r for r in stages
               if any(t["table"] == table and int(t["version"]) == version for t in json.loads(r["outputs"]))]
    for r in reversed(writers):
        for t in json.loads(r["inputs"]):
            if t["table"] == other:
                return int(t["version"])
    for r in reversed(writers):
        written = [t for s in stages if s["run_id"] == r["run_id"] for t in json.loads(s["outputs"])
                   if t["table"] == other]
        if written:
            return int(written[-1]["version"])
    return None
