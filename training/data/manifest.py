"""The `_runs` manifest read without a JVM: which table versions a run wrote, and what they were built from.

The rules are schemas.runs' (shared with etl.snapshot): each (run, stage)'s current attempt in the
log, succeeded stages only, in start order, the latest stage that wrote a table wins; a version was
built from what its writing stage read, else from what the same run wrote.
"""
from __future__ import annotations

from typing import Optional

from schemas import runs
from schemas.tables import RUNS
from training.data.arrow_reader import read_files
from training.data.snapshot import SnapshotError, resolve_snapshot


def _succeeded_stages(root: str) -> list[runs.StageRun]:
    try:
        snap = resolve_snapshot(root, RUNS.name)
    except SnapshotError as e:
        raise SnapshotError(f"no readable run manifest under {root}: {e}") from e
    rows = read_files(snap, snap.files, ["run_id", "stage", "status", "inputs", "outputs", "started_at",
                                           "finished_at", "message"]).to_pylist()
    return runs.succeeded_stages(rows)


def run_outputs(root: str, run_id: str) -> dict[str, int]:
    """Table name -> Delta version written by run `run_id`."""
    out = runs.run_outputs(_succeeded_stages(root), run_id)
    if not out:
        raise SnapshotError(f"run {run_id!r} has no succeeded stage that wrote a table in the manifest under {root}")
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
    return runs.built_from(stages, table, version, other)


def written_by(root: str, table: str, version: int) -> Optional[str]:
    """The id of the run whose succeeded stage wrote `table` at `version` (the latest such stage),
    or None when the manifest does not record it or the lake has none."""
    try:
        stages = _succeeded_stages(root)
    except SnapshotError:
        return None
    return next((s.run_id for s in reversed(stages) if s.outputs.get(table) == version), None)
