"""Pinned snapshots of the gold tables a trainer reads, for notebooks and Spark jobs.

    >>> snap = load_snapshot("lake", run="ml1")                  # doctest: +SKIP
    >>> snap.versions()                                          # doctest: +SKIP
    {'gold.examples': TableVersion(table='gold.examples', version=5, rows=None), ...}
    >>> snap.read("gold.neighbors").count()                      # doctest: +SKIP

Exactly one of `run`, `version` or `timestamp` picks the gold.examples version:
- run=R: the version run R wrote;
- version=N: version N;
- timestamp=T: the last version committed at or before T (ISO 8601; a naive time is UTC).

The other tables follow the run manifest, by the rules the trainer applies too (schemas.runs):
gold.nodes and gold.neighbors at the versions the examples stage read to build those examples,
gold.macro at the version the examples' run wrote. For a run of the whole pipeline that is exactly
what run R wrote; after one stage of R was re-run alone, the tables still match the examples.
Every pinned version is checked before it is returned: it must still be in the table's history and
all its data files must exist (VACUUM deletes the files of old versions but keeps their log).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Optional

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from etl.hadoop import filesystem
from etl.lake import Lake, RunManifest, TableVersion
from etl.session import get_spark
from schemas import runs
from schemas.layout import SnapshotError
from schemas.tables import NEIGHBORS, NODES, RUNS, examples, macro

EXAMPLES_TABLE = examples([]).name
MACRO_TABLE = macro([]).name
COMPANION_TABLES = (NODES.name, NEIGHBORS.name, MACRO_TABLE)


@dataclass(frozen=True)
class LakeSnapshot:
    """gold.examples at one version and the companion tables it goes with (None: not recorded)."""

    lake: Lake
    pinned_by: str  # how the examples version was chosen, e.g. "run 'r1'"
    examples: TableVersion
    nodes: Optional[TableVersion]
    neighbors: Optional[TableVersion]
    macro: Optional[TableVersion]
    spark: SparkSession = field(repr=False, compare=False)

    def versions(self) -> dict[str, TableVersion]:
        """Table name -> pinned version, for the tables the manifest recorded."""
        return {t.table: t for t in (self.examples, self.nodes, self.neighbors, self.macro) if t is not None}

    def read(self, table: str) -> DataFrame:
        """The table at its pinned version, as a Spark DataFrame."""
        if table not in (EXAMPLES_TABLE, *COMPANION_TABLES):
            raise SnapshotError(f"a snapshot holds {EXAMPLES_TABLE} and {', '.join(COMPANION_TABLES)}, not {table}")
        pinned = self.versions().get(table)
        if pinned is None:
            raise SnapshotError(f"the run manifest records no {table} version for {EXAMPLES_TABLE} "
                                f"v{self.examples.version} ({self.pinned_by}): the stage that writes {table} did "
                                "not succeed in that run; run it, or pin a run where it did")
        return self.lake.read(self.spark, table, version=pinned.version)

    def describe(self) -> str:
        pins = ", ".join(f"{t.table}@v{t.version}" for t in self.versions().values())
        return f"snapshot of {self.lake.root} by {self.pinned_by}: {pins}"


def load_snapshot(lake: Lake | str, *, run: Optional[str] = None, version: Optional[int] = None,
                  timestamp: Optional[str | datetime] = None,
                  spark: Optional[SparkSession] = None) -> LakeSnapshot:
    """Pin gold.examples by run, version or timestamp, and the tables it was built with (module docstring).

    Raises SnapshotError when not exactly one pin is given, the run or version is unknown, a
    companion version is gone from the log, or a pinned version's data files were vacuumed.
    """
    given = [name for name, v in (("run", run), ("version", version), ("timestamp", timestamp)) if v is not None]
    if len(given) != 1:
        raise SnapshotError(f"give exactly one of run, version or timestamp (got {', '.join(given) or 'none'})")
    spark = spark or get_spark("grec-snapshot")
    lake = lake if isinstance(lake, Lake) else Lake(lake)
    stages = _succeeded_stages(spark, lake)
    ex_commits = _commits(spark, lake, EXAMPLES_TABLE)
    if run is not None:
        ex_version, pinned_by = _examples_of_run(spark, lake, stages, run), f"run {run!r}"
    elif version is not None:
        ex_version, pinned_by = int(version), f"version {version}"
    else:
        assert timestamp is not None  # exactly one pin is given
        ex_version, pinned_by = _examples_as_of(ex_commits, timestamp), f"timestamp {timestamp}"
    _check_in_history(ex_commits, EXAMPLES_TABLE, ex_version, pinned_by)
    if not any(s.outputs.get(EXAMPLES_TABLE) == ex_version for s in stages):
        raise SnapshotError(f"{EXAMPLES_TABLE} v{ex_version} ({pinned_by}) was not written by a succeeded stage "
                            f"in {lake.path(RUNS)}, so the versions it was built from are unknown; "
                            f"versions written by runs: {_written_by(stages, EXAMPLES_TABLE)}")

    def pin(table: str) -> Optional[TableVersion]:
        v = runs.built_from(stages, EXAMPLES_TABLE, ex_version, table)
        return None if v is None else TableVersion(table, v)

    snap = LakeSnapshot(lake, pinned_by, TableVersion(EXAMPLES_TABLE, ex_version), nodes=pin(NODES.name),
                        neighbors=pin(NEIGHBORS.name), macro=pin(MACRO_TABLE), spark=spark)
    for tv in snap.versions().values():
        if tv.table != EXAMPLES_TABLE:
            _check_in_history(_commits(spark, lake, tv.table), tv.table, tv.version, pinned_by)
        _check_files_exist(spark, lake, stages, tv, pinned_by)
    return snap


# ---- resolution -----------------------------------------------------------------------------
def _succeeded_stages(spark: SparkSession, lake: Lake) -> list[runs.StageRun]:
    rows = (RunManifest(lake).records(spark)
            .select("run_id", "stage", "status", "started_at", "inputs", "outputs").collect())
    return runs.succeeded_stages([r.asDict() for r in rows])


def _examples_of_run(spark: SparkSession, lake: Lake, stages: list[runs.StageRun], run: str) -> int:
    written = runs.run_outputs(stages, run)
    if EXAMPLES_TABLE in written:
        return written[EXAMPLES_TABLE]
    known = sorted({r.run_id for r in RunManifest(lake).records(spark).select("run_id").distinct().collect()})
    if run not in known:
        raise SnapshotError(f"unknown run {run!r} in {lake.path(RUNS)}; known runs: {', '.join(known) or 'none'}")
    raise SnapshotError(f"run {run!r} wrote no {EXAMPLES_TABLE} (it wrote {sorted(written) or 'nothing'}: a stage "
                        f"failed or was not run); runs that wrote it: {_written_by(stages, EXAMPLES_TABLE)}")


def _examples_as_of(commits: list[tuple[int, int]], timestamp: str | datetime) -> int:
    try:
        when = runs.parse_utc(timestamp)
    except ValueError as e:
        raise SnapshotError(f"timestamp {timestamp!r} is not ISO 8601 (e.g. 2024-05-01T12:00:00Z)") from e
    found = runs.version_as_of(commits, when)
    if found is None:
        first_ms = min(ms for _, ms in commits)
        raise SnapshotError(f"no version of {EXAMPLES_TABLE} as of {when.isoformat()}: its earliest available "
                            f"version was committed at {datetime.fromtimestamp(first_ms / 1000, timezone.utc).isoformat()}")
    return found


def _written_by(stages: list[runs.StageRun], table: str) -> str:
    found = runs.writers_of(stages, table)
    return ", ".join(f"{r} (v{v})" for r, v in found.items()) or "none"


# ---- checks ---------------------------------------------------------------------------------
def _commits(spark: SparkSession, lake: Lake, table: str) -> list[tuple[int, int]]:
    """(version, commit time in epoch ms) of every version still in the table's log."""
    if not lake.exists(spark, table):
        raise SnapshotError(f"table {table} does not exist at {lake.path(table)}: run the stage that writes it first")
    hist = DeltaTable.forPath(spark, lake.path(table)).history().select(
        "version", F.unix_millis("timestamp").alias("ms")).collect()
    return [(int(h["version"]), int(h["ms"])) for h in hist]


def _check_in_history(commits: list[tuple[int, int]], table: str, version: int, pinned_by: str) -> None:
    versions = [v for v, _ in commits]
    if version not in versions:
        raise SnapshotError(f"{table} has no version {version} ({pinned_by}); available versions: "
                            f"{min(versions)}..{max(versions)}")


def _check_files_exist(spark: SparkSession, lake: Lake, stages: list[runs.StageRun], tv: TableVersion,
                       pinned_by: str) -> None:
    files = lake.read(spark, tv.table, version=tv.version).inputFiles()
    missing = []
    for uri in files:
        fs, path = filesystem(spark, uri)
        if not fs.exists(path):
            missing.append(uri)
    if missing:
        later = {r: v for r, v in runs.writers_of(stages, tv.table).items() if v > tv.version}
        hint = (f"pin a later run: {', '.join(f'{r} ({tv.table} v{v})' for r, v in later.items())}" if later
                else "re-run the stages that write it")
        raise SnapshotError(f"{tv.table} v{tv.version} ({pinned_by}) was vacuumed: {len(missing)} of its "
                            f"{len(files)} data files are gone (e.g. {missing[0]}); {hint}")
