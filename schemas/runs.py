"""How the `_runs` manifest's rows pin table versions: one set of rules for the ETL and the trainer.

Plain Python over rows already read (by Spark in etl.snapshot, by delta-rs in training.data.manifest),
so both sides resolve "the tables of run R" and "what examples version N was built from" alike:

- only succeeded stages count, in start order; the latest stage that wrote a table wins;
- a table version was built from the versions its writing stage read (its recorded inputs), else
  from the versions the same run wrote (e.g. gold.macro next to the gold.examples of its run).

    >>> rows = [{"run_id": "r1", "stage": "examples", "status": "succeeded", "started_at": 1,
    ...          "inputs": '[{"table": "gold.nodes", "version": 4}]',
    ...          "outputs": '[{"table": "gold.examples", "version": 7}]'}]
    >>> built_from(succeeded_stages(rows), "gold.examples", 7, "gold.nodes")
    4
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Optional


@dataclass(frozen=True)
class StageRun:
    """One succeeded (run, stage) row: the table versions it read and wrote."""

    run_id: str
    stage: str
    inputs: Mapping[str, int]
    outputs: Mapping[str, int]


def _versions(text: Optional[str]) -> dict[str, int]:
    # A stage that read or wrote a table twice lists it twice; the last entry is the one it used.
    return {t["table"]: int(t["version"]) for t in json.loads(text or "[]")}


def succeeded_stages(rows: Iterable[Mapping[str, Any]]) -> list[StageRun]:
    """The succeeded stages among manifest rows (run_id, stage, status, started_at, inputs, outputs), in start order."""
    ok = sorted((r for r in rows if r["status"] == "succeeded"), key=lambda r: r["started_at"])
    return [StageRun(r["run_id"], r["stage"], _versions(r["inputs"]), _versions(r["outputs"])) for r in ok]


def run_outputs(stages: Iterable[StageRun], run_id: str) -> dict[str, int]:
    """Table name -> version written by run `run_id` (empty when the run has no succeeded stage)."""
    out: dict[str, int] = {}
    for s in stages:
        if s.run_id == run_id:
            out.update(s.outputs)
    return out


def built_from(stages: Iterable[StageRun], table: str, version: int, other: str) -> Optional[int]:
    """The version of `other` that `table` at `version` was built with, or None when not recorded."""
    stages = list(stages)
    writers = [s for s in stages if s.outputs.get(table) == version]
    for s in reversed(writers):
        if other in s.inputs:
            return s.inputs[other]
    for s in reversed(writers):
        written = run_outputs(stages, s.run_id)
        if other in written:
            return written[other]
    return None


def writers_of(stages: Iterable[StageRun], table: str) -> dict[str, int]:
    """Run id -> the latest version of `table` it wrote, for runs that wrote it (in start order)."""
    out: dict[str, int] = {}
    for s in stages:
        if table in s.outputs:
            out.pop(s.run_id, None)  # keep start order by the run's latest write
            out[s.run_id] = s.outputs[table]
    return out


def parse_utc(timestamp: str | datetime) -> datetime:
    """An ISO 8601 time (or datetime) as an aware UTC datetime; naive times are taken as UTC."""
    when = datetime.fromisoformat(timestamp) if isinstance(timestamp, str) else timestamp
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def version_as_of(commits: Iterable[tuple[int, int]], when: datetime) -> Optional[int]:
    """Delta's time-travel rule over (version, commit time in epoch ms): the last version committed
    at or before `when`; None when `when` precedes every commit."""
    limit = parse_utc(when).timestamp() * 1000
    eligible = [v for v, ms in commits if ms <= limit]
    return max(eligible) if eligible else None
