"""etl.snapshot.load_snapshot on a hand-built lake: runs r1, r2 (whole) and r3 (examples re-run alone)
write toy gold tables whose rows name their run, so each pin is checked against the rows it must give;
r4's examples stage failed. (tests/test_faults.py checks load_snapshot on a manifest real stages wrote.)"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from etl.lake import StageRecord, TableVersion
from etl.snapshot import SnapshotError, load_snapshot
from schemas import Col, Kind, TableSchema
from schemas.tables import RUNS


def _toy(name: str) -> TableSchema:
    return TableSchema(name, [Col("id", Kind.LONG, "row id"), Col("run", Kind.STRING, "run that wrote the row")])


NODES, NEIGHBORS, EXAMPLES, MACRO = (_toy(n) for n in ("gold.nodes", "gold.neighbors", "gold.examples", "gold.macro"))


def _rows(spark, run: str, n: int):
    return spark.createDataFrame([(i, run) for i in range(n)], "id long, run string")


class _ManifestBuilder:
    """Writes toy tables and the _runs rows a real stage would record for them (inputs read, outputs
    written, in start order), so the lake takes 9 small commits rather than full stage round trips."""

    def __init__(self, spark, lake):
        self.spark, self.lake, self.records = spark, lake, []
        self.t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)

    def stage(self, run: str, name: str, reads=(), writes=(), n: int = 0, status: str = "succeeded") -> None:
        inputs = [TableVersion(t.name, self.lake.version(self.spark, t)) for t in reads]
        outputs = [self.lake.write(_rows(self.spark, run, n), t, run_id=run, stage=name) for t in writes]
        started = self.t0 + timedelta(minutes=len(self.records))
        self.records.append(StageRecord(run, name, status, inputs=inputs, outputs=outputs, started_at=started,
                                        finished_at=started + timedelta(seconds=30)))

    def pipeline(self, run: str, n: int) -> None:
        """graph -> examples (reads nodes and neighbors) -> macro, as the real stages chain them."""
        self.stage(run, "graph", writes=(NODES, NEIGHBORS), n=n)
        self.stage(run, "examples", reads=(NODES, NEIGHBORS), writes=(EXAMPLES,), n=n)
        self.stage(run, "macro", reads=(NODES,), writes=(MACRO,), n=n)

    def write_manifest(self) -> None:
        rows = self.spark.createDataFrame([r.row() for r in self.records], RUNS.spark_schema())
        self.lake.write(rows, RUNS, run_id="test", stage="manifest")


def _content(df) -> list[tuple]:
    return sorted(tuple(r) for r in df.collect())


def _commit_ms(spark, lake, table: str) -> dict[int, int]:
    hist = DeltaTable.forPath(spark, lake.path(table)).history().select("version", F.unix_millis("timestamp"))
    return {r[0]: r[1] for r in hist.collect()}


def _iso(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat()


@pytest.fixture(scope="module")
def pinned_lake(spark, tmp_path_factory):
    from etl.lake import Lake

    lake = Lake(str(tmp_path_factory.mktemp("snapshot") / "lake"))
    built = _ManifestBuilder(spark, lake)
    built.pipeline("r1", 2)
    built.pipeline("r2", 3)
    built.stage("r3", "examples", reads=(NODES, NEIGHBORS), writes=(EXAMPLES,), n=4)  # re-run alone, on r2's tables
    built.stage("r4", "examples", status="failed")
    built.write_manifest()
    return lake


def test_run_pins_exactly_the_rows_that_run_wrote(spark, pinned_lake):
    snap = load_snapshot(pinned_lake, run="r1", spark=spark)
    assert {t: v.version for t, v in snap.versions().items()} == {
        "gold.examples": 0, "gold.nodes": 0, "gold.neighbors": 0, "gold.macro": 0}
    for table in snap.versions():
        assert _content(snap.read(table)) == [(0, "r1"), (1, "r1")], table
    snap2 = load_snapshot(pinned_lake.root, run="r2", spark=spark)
    assert all(_content(snap2.read(t)) == [(0, "r2"), (1, "r2"), (2, "r2")] for t in snap2.versions())


def test_a_rerun_stage_keeps_the_tables_its_examples_were_built_from(spark, pinned_lake):
    snap = load_snapshot(pinned_lake, run="r3", spark=spark)
    assert _content(snap.read("gold.examples")) == [(i, "r3") for i in range(4)]
    assert _content(snap.read("gold.nodes")) == [(i, "r2") for i in range(3)]
    assert snap.neighbors.version == 1 and snap.macro is None
    with pytest.raises(SnapshotError, match=r"records no gold.macro version for gold.examples v2 \(run 'r3'\)"):
        snap.read("gold.macro")


def test_version_pins_examples_and_what_they_were_built_from(spark, pinned_lake):
    snap = load_snapshot(pinned_lake, version=0, spark=spark)
    assert {t: v.version for t, v in snap.versions().items()} == {
        "gold.examples": 0, "gold.nodes": 0, "gold.neighbors": 0, "gold.macro": 0}
    assert _content(snap.read("gold.neighbors")) == [(0, "r1"), (1, "r1")]
    with pytest.raises(SnapshotError, match=r"gold.examples has no version 9 .*available versions: 0\.\.2"):
        load_snapshot(pinned_lake, version=9, spark=spark)


def test_timestamp_pins_the_version_current_then(spark, pinned_lake):
    commits = _commit_ms(spark, pinned_lake, "gold.examples")
    between = (commits[1] + commits[2]) / 2
    snap = load_snapshot(pinned_lake, timestamp=_iso(between), spark=spark)
    assert snap.examples.version == 1 and _content(snap.read("gold.macro")) == [(0, "r2"), (1, "r2"), (2, "r2")]
    # exactly at a commit counts as "current then"; a naive time is UTC
    at_first = datetime.fromtimestamp(commits[0] / 1000, timezone.utc).replace(tzinfo=None)
    assert load_snapshot(pinned_lake, timestamp=at_first.isoformat(), spark=spark).examples.version == 0
    with pytest.raises(SnapshotError, match="no version of gold.examples as of .*earliest available"):
        load_snapshot(pinned_lake, timestamp=_iso(commits[0] - 60_000), spark=spark)
    with pytest.raises(SnapshotError, match="not ISO 8601"):
        load_snapshot(pinned_lake, timestamp="yesterday", spark=spark)


def test_bad_pins_are_named(spark, pinned_lake):
    with pytest.raises(SnapshotError, match="exactly one of run, version or timestamp .got run, version"):
        load_snapshot(pinned_lake, run="r1", version=0, spark=spark)
    with pytest.raises(SnapshotError, match="exactly one .* .got none"):
        load_snapshot(pinned_lake, spark=spark)
    with pytest.raises(SnapshotError, match="unknown run 'nope' .*known runs: r1, r2, r3, r4$"):
        load_snapshot(pinned_lake, run="nope", spark=spark)
    with pytest.raises(SnapshotError, match=r"run 'r4' wrote no gold.examples .*runs that wrote it: r1 \(v0\), "
                                            r"r2 \(v1\), r3 \(v2\)"):
        load_snapshot(pinned_lake, run="r4", spark=spark)


@pytest.mark.slow  # vacuums and runs again (42 s on 2 cores)
def test_a_vacuumed_version_fails_clearly_and_later_runs_still_load(spark, pinned_lake):
    key = "spark.databricks.delta.retentionDurationCheck.enabled"
    spark.conf.set(key, "false")
    try:
        DeltaTable.forPath(spark, pinned_lake.path("gold.nodes")).vacuum(0.0)
    finally:
        spark.conf.unset(key)
    with pytest.raises(SnapshotError, match=r"gold.nodes v0 \(run 'r1'\) was vacuumed: (\d+) of its \1 data files are "
                                            r"gone .*pin a later run: r2 \(gold.nodes v1\)"):
        load_snapshot(pinned_lake, run="r1", spark=spark)
    assert _content(load_snapshot(pinned_lake, run="r2", spark=spark).read("gold.nodes")) == [
        (0, "r2"), (1, "r2"), (2, "r2")]
