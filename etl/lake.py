"""The lake: table paths under one root URI, Delta reads and writes, reports, and the run manifest.

Any Hadoop URI works as the root (`file:`, `s3a:`, `abfss:`); a bare path means the local disk.
Tables live at `<root>/<layer>/<table>`; the manifest at `<root>/_runs`; stage reports at
`<root>/_reports/<run_id>/<stage>.{json,md}`, with GX Data Docs sites under
`<root>/_reports/<run_id>/data_docs/<stage>/`.

    >>> lake = Lake("lake")                      # doctest: +SKIP
    >>> lake.read(spark, "bronze.interactions", version=3).count()   # doctest: +SKIP
"""
from __future__ import annotations

import json
import logging
import os
import re
import socket
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator, Optional

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from etl.conflicts import CONFLICTS, ConcurrentRunError, with_conflict_retry
from etl.hadoop import filesystem, jvm
from etl.write_layout import laid_out
from schemas import TableSchema, runs
from schemas.layout import TARGET_FILE_BYTES, normalize_root, table_uri
from schemas.tables import RUNS


class LakeError(RuntimeError):
    """A lake table or version is missing or unreadable; the message names which."""


logger = logging.getLogger(__name__)

OWN_COMMIT_LOOKBACK = 200  # newest commits searched for a write's own commit (other runs' land after it)
USER_METADATA = "spark.databricks.delta.commitInfo.userMetadata"


@contextmanager
def _user_metadata(spark: SparkSession, meta: str) -> Iterator[None]:
    """Commits made inside carry `meta` (JSON naming run and stage) as their userMetadata."""
    spark.conf.set(USER_METADATA, meta)
    try:
        yield
    finally:
        spark.conf.unset(USER_METADATA)


def newest_commit(spark: SparkSession, path: str) -> dict:
    """The table's newest commit as {version, operation, userMetadata (parsed)}, for messages."""
    last = DeltaTable.forPath(spark, path).history(1).select("version", "operation", "userMetadata").first()
    assert last is not None  # a Delta table's history holds at least its creating commit
    try:
        meta = json.loads(last["userMetadata"] or "{}")
    except ValueError:
        meta = {}
    return {"version": last["version"], "operation": last["operation"], "userMetadata": meta}


@dataclass(frozen=True)
class TableVersion:
    table: str
    version: int
    rows: Optional[int] = None


class Lake:
    """Paths and Delta I/O for one lake root."""

    def __init__(self, root: str, target_file_bytes: int = TARGET_FILE_BYTES):
        self.root = normalize_root(root)
        self.target_file_bytes = target_file_bytes  # the size its writes aim each file at

    def __repr__(self) -> str:
        return f"Lake({self.root!r})"

    def path(self, table: str | TableSchema) -> str:
        name = table.name if isinstance(table, TableSchema) else table
        return table_uri(self.root, name)

    def report_path(self, run_id: str, stage: str) -> str:
        return f"{self.root}/_reports/{run_id}/{stage}"

    # ---- Delta ------------------------------------------------------------------------------
    def exists(self, spark: SparkSession, table: str | TableSchema) -> bool:
        return DeltaTable.isDeltaTable(spark, self.path(table))

    def version(self, spark: SparkSession, table: str | TableSchema) -> Optional[int]:
        """The table's latest committed version, or None when it does not exist yet."""
        if not self.exists(spark, table):
            return None
        last = DeltaTable.forPath(spark, self.path(table)).history(1).select("version").first()
        assert last is not None  # a Delta table's history holds at least its creating commit
        return last[0]

    def read(self, spark: SparkSession, table: str | TableSchema, version: Optional[int] = None,
             timestamp: Optional[str] = None) -> DataFrame:
        """Read a table, optionally pinned to a version or a timestamp (Delta time travel)."""
        name = table.name if isinstance(table, TableSchema) else table
        if not self.exists(spark, table):
            raise LakeError(f"table {name} does not exist at {self.path(table)}: run the stage that writes it first")
        reader = spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", int(version))
        elif timestamp is not None:
            reader = reader.option("timestampAsOf", timestamp)
        return reader.load(self.path(table))

    def write(self, df: DataFrame, schema: TableSchema, *, run_id: str, stage: str,
              properties: Optional[dict[str, str]] = None, replace_where: Optional[str] = None) -> TableVersion:
        """Commit `df` as the next version of `schema`'s table; returns that version and its rows.

        Columns are selected in schema order and must carry the schema's types, so a stage can never
        widen or reorder a table by accident. Data and table properties land in one commit (a
        CREATE OR REPLACE TABLE AS SELECT, which keeps the history for time travel), whose
        userMetadata names the run and stage. The files are sized and ordered by
        `etl.write_layout.laid_out`. With `replace_where` (a predicate over partition
        columns) only the matching rows are replaced, which keeps per-run tables such as the
        quarantine idempotent per run.
        """
        missing = [c for c in schema.names if c not in df.columns]
        if missing:
            raise LakeError(f"{stage}: cannot write {schema.name}: columns {missing} missing from the result")
        out = laid_out(df.select(*schema.names), schema, self.target_file_bytes)
        want = {f.name: f.dataType for f in schema.spark_schema().fields}
        wrong = [f"{f.name}: {f.dataType.simpleString()} (expected {want[f.name].simpleString()})"
                 # simpleString ignores containsNull: Delta reads every array back as containsNull=true
                 for f in out.schema.fields if f.dataType.simpleString() != want[f.name].simpleString()]
        if wrong:
            raise LakeError(f"{stage}: cannot write {schema.name}: wrong column types: {', '.join(wrong)}")
        spark = df.sparkSession
        # a token in the commit's userMetadata finds this commit in the history even when other runs
        # committed to the table right after it
        token = uuid.uuid4().hex
        meta = json.dumps({"run_id": run_id, "stage": stage, "write": token})

        def attempt() -> None:
            with _user_metadata(spark, meta):
                if replace_where:
                    writer = out.write.format("delta").mode("overwrite").option("replaceWhere", replace_where)
                    if schema.partition_by:
                        writer = writer.partitionBy(*schema.partition_by)
                    writer.save(self.path(schema))
                else:
                    writer_v2 = out.writeTo(f"delta.`{self.path(schema)}`").using("delta")
                    for k, v in (properties or {}).items():
                        writer_v2 = writer_v2.tableProperty(k, v)
                    if schema.partition_by:
                        writer_v2 = writer_v2.partitionedBy(*(F.col(c) for c in schema.partition_by))
                    writer_v2.createOrReplace()

        with_conflict_retry(attempt, table=schema.name, run_id=run_id, stage=stage,
                            latest=lambda: newest_commit(spark, self.path(schema)))
        mine = (DeltaTable.forPath(spark, self.path(schema)).history(OWN_COMMIT_LOOKBACK)
                .where(F.get_json_object("userMetadata", "$.write") == token)
                .select("version", "operationMetrics").first())
        if mine is None and replace_where and out.isEmpty():
            # Delta commits nothing for an overwrite that neither adds nor removes a file (no rows of
            # this run, none before): the run's (zero) rows are those of the current version
            version = self.version(spark, schema)
            assert version is not None  # a new table gets a commit; only an existing one gets none
            return TableVersion(schema.name, version, 0)
        if mine is None:
            raise LakeError(f"{stage}: wrote {schema.name} but its commit is not among the last "
                            f"{OWN_COMMIT_LOOKBACK} versions of {self.path(schema)}")
        rows = (mine["operationMetrics"] or {}).get("numOutputRows")
        # an overwrite that writes no file reports no row metric
        return TableVersion(schema.name, mine["version"], int(rows) if rows is not None else out.count())

    def properties(self, spark: SparkSession, table: str | TableSchema,
                   version: Optional[int] = None) -> dict[str, str]:
        """The table's properties, at `version` when given (a concurrent run may have replaced them since)."""
        if version is not None:
            rows = spark.sql(f"SHOW TBLPROPERTIES delta.`{self.path(table)}@v{int(version)}`").collect()
            return {r["key"]: r["value"] for r in rows}
        detail = DeltaTable.forPath(spark, self.path(table)).detail().select("properties").first()
        assert detail is not None  # DESCRIBE DETAIL gives one row
        return dict(detail[0] or {})

    def history(self, spark: SparkSession, table: str | TableSchema) -> DataFrame:
        """The table's Delta commits, newest first: (version, timestamp, operation, run_id, stage, rows).

        run_id and stage come from the commit's userMetadata (set by `write` and the manifest's
        appends; null for commits made otherwise); rows is the commit's numOutputRows, null when the
        operation reports none.
        """
        name = table.name if isinstance(table, TableSchema) else table
        if not self.exists(spark, table):
            raise LakeError(f"table {name} does not exist at {self.path(table)}: run the stage that writes it first")
        return (DeltaTable.forPath(spark, self.path(table)).history()
                .select("version", "timestamp", "operation",
                        F.get_json_object("userMetadata", "$.run_id").alias("run_id"),
                        F.get_json_object("userMetadata", "$.stage").alias("stage"),
                        F.col("operationMetrics")["numOutputRows"].cast("long").alias("rows"))
                .orderBy(F.col("version").desc()))

    # ---- plain files (reports) --------------------------------------------------------------
    def write_text(self, spark: SparkSession, uri: str, text: str) -> None:
        """Write a small text file through Hadoop's FileSystem, so any lake scheme works."""
        fs, path = filesystem(spark, uri)
        stream = fs.create(path, True)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()

    def put_dir(self, spark: SparkSession, local_dir: str, uri: str) -> None:
        """Replace the folder at `uri` with a copy of the local folder `local_dir` (a report site),
        through Hadoop's FileSystem, so any lake scheme works."""
        fs, dst = filesystem(spark, uri)
        fs.delete(dst, True)  # else Hadoop copies the folder *into* an existing one
        fs.copyFromLocalFile(False, True, filesystem(spark, local_dir)[1], dst)

    def read_text(self, spark: SparkSession, uri: str) -> str:
        """Read a small text file (a report) through Hadoop's FileSystem, so any lake scheme works."""
        fs, path = filesystem(spark, uri)
        if not fs.exists(path):
            raise LakeError(f"no file at {uri}")
        stream = fs.open(path)
        try:
            return jvm(spark).org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
        finally:
            stream.close()


# ---- the run manifest ---------------------------------------------------------------------------
@dataclass
class StageRecord:
    """One row of `_runs`: a stage of a run, what it read and wrote, and how it ended."""

    run_id: str
    stage: str
    status: str
    config: dict[str, Any] = field(default_factory=dict)
    inputs: list[TableVersion] = field(default_factory=list)
    outputs: list[TableVersion] = field(default_factory=list)
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    finished_at: Optional[datetime] = None
    report: Optional[str] = None
    message: Optional[str] = None

    @property
    def duration_s(self) -> Optional[float]:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def row(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "stage": self.stage, "status": self.status,
            "config": json.dumps(self.config, sort_keys=True, default=str),
            "inputs": json.dumps([asdict(t) for t in self.inputs]),
            "outputs": json.dumps([asdict(t) for t in self.outputs]),
            # aware datetimes: pyspark reads a naive one as the driver's local time, not UTC
            "started_at": self.started_at, "finished_at": self.finished_at,
            "duration_s": self.duration_s, "report": self.report, "message": self.message,
        }


# Every stage leaves one more small file in `_runs` (its claim inserts a row, its end rewrites it);
# past this many the manifest is bin-packed (RunManifest.compact, at the end of each pipeline run).
MANIFEST_MAX_FILES = 32


# The process that runs a stage: the manifest row's message while its status is "running", so that a
# second process given the same run id can tell the run is taken (and a killed one's row is not).
PROCESS = f"running in process {os.getpid()} on {socket.gethostname()} ({uuid.uuid4().hex[:12]})"
_PROCESS_RE = re.compile(r"^running in process (\d+) on (\S+) \((\w+)\)$")


def _process_alive(owner: str) -> bool:
    """Whether the process an owner string names still runs; one on another host counts as running."""
    m = _PROCESS_RE.match(owner or "")
    if not m:
        return False  # a running row without an owner: written by an older grec, or a killed one
    pid, host = int(m.group(1)), m.group(2)
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed process its parent has not reaped yet (a zombie) runs nothing
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class RunManifest:
    """The `_runs` Delta table: a log of stage attempts. A stage's claim appends its row as running
    and its end appends the row's final state (same run_id, stage and started_at); readers see each
    (run_id, stage)'s current row (schemas.runs.current_rows; `records` in Spark).

    Appends, not upserts: a blind append is one small commit that never conflicts with another
    run's, where a MERGE on the key took 1.2 to 2.8 s (it joins the table to find the row).

    A run id runs in one process at a time: `claim` refuses a stage while another live process has a
    stage of the same run in status running; runs with different ids never wait on each other.
    """

    def __init__(self, lake: Lake):
        self.lake = lake
        # The run's rows as read right after this manifest's claim: while the claimed stage runs no
        # other process may write a row of the run that a read depends on (it refuses, leaving at
        # most a refused attempt of its own), so the stage's reads need not scan `_runs` again.
        self._claimed: Optional[tuple[str, list[Row]]] = None

    def append(self, spark: SparkSession, record: StageRecord) -> None:
        """Append `record`'s row: the attempt's claim or its end (schemas.runs.current_rows)."""
        row = record.row()
        # literals, not spark.createDataFrame: a frame of Python rows starts Python workers
        df = spark.range(1).select(*(F.lit(row[f.name]).cast(f.dataType).alias(f.name)
                                     for f in RUNS.spark_schema().fields))
        path = self.lake.path(RUNS)

        def attempt() -> None:
            with _user_metadata(spark, json.dumps({"run_id": record.run_id, "stage": record.stage})):
                # the first appends of two runs on a new lake both create the table: one conflicts,
                # and its retry appends to the table the other created
                df.write.format("delta").mode("append").save(path)

        with_conflict_retry(attempt, table=RUNS.name, run_id=record.run_id, stage=record.stage,
                            latest=lambda: newest_commit(spark, path))

    def compact(self, spark: SparkSession, max_files: int = MANIFEST_MAX_FILES) -> bool:
        """Bin-pack `_runs` into one file when it has more than `max_files`; returns whether it did.

        Compaction changes no row (a dataChange=false commit), so when another run's append
        conflicts with it, it is skipped and the next run tries again."""
        if not self.lake.exists(spark, RUNS):
            return False
        table = DeltaTable.forPath(spark, self.lake.path(RUNS))
        files = table.detail().select("numFiles").first()
        if files is None or files[0] <= max_files:
            return False
        try:
            table.optimize().executeCompaction()
        except CONFLICTS as e:
            logger.info("%s: compaction skipped after a concurrent commit: %s", RUNS.name, type(e).__name__)
            return False
        logger.info("%s: compacted %d files", RUNS.name, files[0])
        return True

    def claim(self, spark: SparkSession, record: StageRecord) -> None:
        """Record `record` as running in this process, or raise ConcurrentRunError when another live
        process runs a stage of the same run id. The claim is appended first and the run's rows read
        after it: of two processes that claim at once, the one whose append committed later sees
        the other's claim and gives its own up (a refused attempt, which readers skip), so at most
        one goes on."""
        record.message = PROCESS
        self.append(spark, record)
        try:
            rows = self._run_rows(spark, record.run_id, fresh=True)
            self._refuse_if_taken(rows, record)
            self._claimed = (record.run_id, rows)
        except ConcurrentRunError as e:
            # give the claim up, so the process that goes on does not wait for this one to exit
            record.status, record.message = "failed", f"{runs.REFUSED}{e}"[:2000]
            record.finished_at = datetime.now(timezone.utc)
            self.append(spark, record)
            raise

    @staticmethod
    def _refuse_if_taken(run_rows: list[Row], record: StageRecord) -> None:
        """Raise ConcurrentRunError when another live process runs a stage of the run (`run_rows`:
        its rows in the manifest's log). An attempt left running by a killed process is ignored."""
        claims = [r for r in runs.attempts([r.asDict() for r in run_rows])
                  if r["status"] == "running" and r["message"] != PROCESS]
        live = [r for r in claims if _process_alive(r["message"])]
        if live:
            r = min(live, key=lambda r: r["started_at"])
            raise ConcurrentRunError(
                f"run {record.run_id} is already running: its stage {r['stage']} started at {r['started_at']} "
                f"UTC is {r['message'].split(' (')[0]}. A run id runs in one process at a time (runs with "
                f"different ids may share the lake): wait for that process to finish, or start this one "
                f"with another --run-id")

    def _run_rows(self, spark: SparkSession, run_id: str, fresh: bool = False) -> list[Row]:
        """The log rows of run `run_id`: those read at this manifest's claim, else (or when `fresh`) read now."""
        if not fresh and self._claimed is not None and self._claimed[0] == run_id:
            return self._claimed[1]
        if not self.lake.exists(spark, RUNS):
            return []
        return self.lake.read(spark, RUNS).where(F.col("run_id") == run_id).collect()

    def own_version(self, spark: SparkSession, run_id: str, table: str) -> Optional[int]:
        """The version of `table` that run `run_id` committed (latest succeeded stage), or None."""
        stages = runs.succeeded_stages(r.asDict() for r in self._run_rows(spark, run_id))
        return runs.run_outputs(stages, run_id).get(table)

    def records(self, spark: SparkSession, run_id: Optional[str] = None) -> DataFrame:
        """Each (run_id, stage)'s current row: schemas.runs.current_rows, as a Spark query."""
        if not self.lake.exists(spark, RUNS):
            raise LakeError(f"no run manifest at {self.lake.path(RUNS)}: no stage has run against this lake")
        log = self.lake.read(spark, RUNS)
        if run_id:
            log = log.where(F.col("run_id") == run_id)
        # an attempt's end row before its claim row, as runs.attempts ranks them
        attempt = Window.partitionBy("run_id", "stage", "started_at").orderBy(
            (F.col("status") != "running").desc(), F.col("finished_at").isNotNull().desc())
        latest = log.withColumn("_n", F.row_number().over(attempt)).where(F.col("_n") == 1)
        refused = (F.col("status") == "failed") & F.coalesce(F.col("message").startswith(runs.REFUSED), F.lit(False))
        stage = Window.partitionBy("run_id", "stage").orderBy(F.col("started_at").desc())
        return (latest.where(~refused).withColumn("_n", F.row_number().over(stage))
                .where(F.col("_n") == 1).drop("_n"))

    def latest_run(self, spark: SparkSession, stage: Optional[str] = None, status: Optional[str] = None) -> str:
        """The id of the run whose matching stage started last (any stage and status when not given).

        E.g. `latest_run(spark, stage="graph", status="succeeded")` is the run whose graph a reader
        of gold.nodes should pin.
        """
        rows = self.records(spark)
        if stage is not None:
            rows = rows.where(F.col("stage") == stage)
        if status is not None:
            rows = rows.where(F.col("status") == status)
        last = rows.orderBy(F.col("started_at").desc(), F.col("run_id").desc()).select("run_id").first()
        if last is None:
            what = " ".join(x for x in (status, stage) if x)
            raise LakeError(f"no run {'with a ' + what + ' stage ' if what else ''}in {self.lake.path(RUNS)}")
        return last[0]

    def outputs_of(self, spark: SparkSession, run_id: str) -> dict[str, TableVersion]:
        """Table name -> version written by run `run_id` (succeeded stages only, latest stage wins)."""
        rows = (self.records(spark, run_id).where(F.col("status") == "succeeded")
                .orderBy("started_at").collect())
        if not rows:
            raise LakeError(f"run {run_id!r} has no succeeded stage in {self.lake.path(RUNS)}")
        out: dict[str, TableVersion] = {}
        for r in rows:
            for t in json.loads(r["outputs"]):
                out[t["table"]] = TableVersion(**t)
        return out

