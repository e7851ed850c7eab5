"""How the `_runs` manifest's rows pin table versions: one set of rules for the ETL and the trainer.

Plain Python over rows already read (by Spark in etl.snapshot, by delta-rs in training.data.manifest),
so both sides resolve "the tables of run R" and "what examples version N was built from" alike:

- the manifest is a log of rows (a claim, then an end, per attempt of a stage); each (run, stage)
  is its latest attempt that was not refused (`current_rows`);
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


# The message of a claim given up because another live process held the run (etl.lake.RunManifest.claim).
REFUSED = "refused: "


def _attempt_rank(row: Mapping[str, Any]) -> tuple:
    # an attempt's end row (any status but running) supersedes its claim row
    return (row["status"] != "running", row.get("finished_at") is not None)


def attempts(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Each attempt's latest row. The manifest is a log: a stage's claim appends a running row and
    its end appends a row with the same (run_id, stage, started_at), the attempt's key."""
    latest: dict[tuple, Mapping[str, Any]] = {}
    for r in rows:
        key = (r["run_id"], r["stage"], r["started_at"])
        if key not in latest or _attempt_rank(r) > _attempt_rank(latest[key]):
            latest[key] = r
    return list(latest.values())


def is_refused(row: Mapping[str, Any]) -> bool:
    """A claim given up at once: it ran nothing and stands for no run of its stage."""
    return row["status"] == "failed" and (row.get("message") or "").startswith(REFUSED)


def current_rows(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The current row of each (run_id, stage) in the manifest's log: of the attempts that were not
    refused, the one that started last (a run id runs in one process at a time, so its attempts of
    a stage follow each other), as its latest row says."""
    current: dict[tuple, Mapping[str, Any]] = {}
    for r in attempts(rows):
        key = (r["run_id"], r["stage"])
        if not is_refused(r) and (key not in current or r["started_at"] > current[key]["started_at"]):
            current[key] = r
    return list(current.values())


def succeeded_stages(rows: Iterable[Mapping[str, Any]]) -> list[StageRun]:
    """The succeeded stages among the manifest's current rows (`current_rows`; the columns run_id,
    stage, status, started_at, finished_at, message, inputs, outputs), in start order."""
    ok = sorted((r for r in current_rows(rows) if r["status"] == "succeeded"), key=lambda r: r["started_at"])
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
