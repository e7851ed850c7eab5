"""The lake: table paths under one root URI, Delta reads and writes, reports, and the run manifest.

Any Hadoop URI works as the root (`file:`, `s3a:`, `abfss:`); a bare path means the local disk.
Tables live at `<root>/<layer>/<table>`; the manifest at `<root>/_runs`; stage reports at
`<root>/_reports/<run_id>/<stage>.{json,md}`.

    >>> lake = Lake("lake")                      # doctest: +SKIP
    >>> lake.read(spark, "bronze.interactions", version=3).count()   # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional, Sequence
from urllib.parse import urlparse

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from schemas import TableSchema
from schemas.tables import RUNS


class LakeError(RuntimeError):
    """A lake table or version is missing or unreadable; the message names which."""


def normalize_root(root: str) -> str:
    """A bare path becomes an absolute `file:` URI; URIs with a scheme pass through."""
    if urlparse(root).scheme and len(urlparse(root).scheme) > 1:  # a drive letter is no scheme
        return root.rstrip("/")
    return "file://" + os.path.abspath(os.path.expanduser(root))


@dataclass(frozen=True)
class TableVersion:
    table: str
    version: int
    rows: Optional[int] = None


class Lake:
    """Paths and Delta I/O for one lake root."""

    def __init__(self, root: str):
        self.root = normalize_root(root)

    def __repr__(self) -> str:
        return f"Lake({self.root!r})"

    def path(self, table: str | TableSchema) -> str:
        name = table.name if isinstance(table, TableSchema) else table
        return f"{self.root}/{name.replace('.', '/')}"

    def report_path(self, run_id: str, stage: str) -> str:
        return f"{self.root}/_reports/{run_id}/{stage}"

    # ---- Delta ------------------------------------------------------------------------------
    def exists(self, spark: SparkSession, table: str | TableSchema) -> bool:
        return DeltaTable.isDeltaTable(spark, self.path(table))

    def version(self, spark: SparkSession, table: str | TableSchema) -> Optional[int]:
        """The table's latest committed version, or None when it does not exist yet."""
        if not self.exists(spark, table):
            return None
        return DeltaTable.forPath(spark, self.path(table)).history(1).select("version").first()[0]

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
        userMetadata names the run and stage. With `replace_where` (a predicate over partition
        columns) only the matching rows are replaced, which keeps per-run tables such as the
        quarantine idempotent per run.
        """
        missing = [c for c in schema.names if c not in df.columns]
        if missing:
            raise LakeError(f"{stage}: cannot write {schema.name}: columns {missing} missing from the result")
        out = df.select(*schema.names)
        want = {f.name: f.dataType for f in schema.spark_schema().fields}
        wrong = [f"{f.name}: {f.dataType.simpleString()} (expected {want[f.name].simpleString()})"
                 # simpleString ignores containsNull: Delta reads every array back as containsNull=true
                 for f in out.schema.fields if f.dataType.simpleString() != want[f.name].simpleString()]
        if wrong:
            raise LakeError(f"{stage}: cannot write {schema.name}: wrong column types: {', '.join(wrong)}")
        spark = df.sparkSession
        key = "spark.databricks.delta.commitInfo.userMetadata"
        spark.conf.set(key, json.dumps({"run_id": run_id, "stage": stage}))
        try:
            if replace_where:
                writer = out.write.format("delta").mode("overwrite").option("replaceWhere", replace_where)
                if schema.partition_by:
                    writer = writer.partitionBy(*schema.partition_by)
                writer.save(self.path(schema))
            else:
                writer = out.writeTo(f"delta.`{self.path(schema)}`").using("delta")
                for k, v in (properties or {}).items():
                    writer = writer.tableProperty(k, v)
                if schema.partition_by:
                    writer = writer.partitionedBy(*(F.col(c) for c in schema.partition_by))
                writer.createOrReplace()
        finally:
            spark.conf.unset(key)
        last = DeltaTable.forPath(spark, self.path(schema)).history(1).select("version", "operationMetrics").first()
        rows = (last["operationMetrics"] or {}).get("numOutputRows")
        # an overwrite that writes no file reports no row metric
        return TableVersion(schema.name, last["version"], int(rows) if rows is not None else out.count())

    def properties(self, spark: SparkSession, table: str | TableSchema) -> dict[str, str]:
        detail = DeltaTable.forPath(spark, self.path(table)).detail().select("properties").first()
        return dict(detail[0] or {})

    def history(self, spark: SparkSession, table: str | TableSchema) -> DataFrame:
        """The table's Delta commits, newest first: (version, timestamp, operation, run_id, stage, rows).

        run_id and stage come from the commit's userMetadata (set by `write`; null for commits made
        otherwise, such as the manifest's merges); rows is the commit's numOutputRows, null when the
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
        jvm = spark._jvm
        path = jvm.org.apache.hadoop.fs.Path(uri)
        fs = path.getFileSystem(spark._jsc.hadoopConfiguration())
        stream = fs.create(path, True)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()

    def read_text(self, spark: SparkSession, uri: str) -> str:
        """Read a small text file (a report) through Hadoop's FileSystem, so any lake scheme works."""
        jvm = spark._jvm
        path = jvm.org.apache.hadoop.fs.Path(uri)
        fs = path.getFileSystem(spark._jsc.hadoopConfiguration())
        if not fs.exists(path):
            raise LakeError(f"no file at {uri}")
        stream = fs.open(path)
        try:
            return jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
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


class RunManifest:
    """The `_runs` Delta table: one row per (run_id, stage), upserted, so re-runs never duplicate."""

    def __init__(self, lake: Lake):
        self.lake = lake

    def upsert(self, spark: SparkSession, record: StageRecord) -> None:
        df = spark.createDataFrame([record.row()], RUNS.spark_schema())
        path = self.lake.path(RUNS)
        if not DeltaTable.isDeltaTable(spark, path):
            df.write.format("delta").mode("append").save(path)
            return
        (DeltaTable.forPath(spark, path).alias("t")
         .merge(df.alias("s"), "t.run_id = s.run_id AND t.stage = s.stage")
         .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())

    def records(self, spark: SparkSession, run_id: Optional[str] = None) -> DataFrame:
        if not self.lake.exists(spark, RUNS):
            raise LakeError(f"no run manifest at {self.lake.path(RUNS)}: no stage has run against this lake")
        df = self.lake.read(spark, RUNS)
        return df.where(F.col("run_id") == run_id) if run_id else df

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


def table_versions(spark: SparkSession, lake: Lake, tables: Sequence[str | TableSchema]) -> list[TableVersion]:
    """Current versions (and no row counts) of existing tables: what a stage is about to read."""
    out = []
    for t in tables:
        v = lake.version(spark, t)
        if v is not None:
            out.append(TableVersion(t.name if isinstance(t, TableSchema) else t, v))
    return out
