"""Files as grec writes them: sized by the data, range-ordered where a table says so, readable when
an older lake laid the table out otherwise, and a manifest that does not fragment.

File facts come from the Delta log itself (its add actions and their statistics), read here as
plain JSON, not through the code under test."""
from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

from pyspark.sql import functions as F

from etl.jobs import pipeline
from etl.jobs.shell import job_main
from etl.lake import Lake, RunManifest, StageRecord
from etl.write_layout import laid_out
from schemas import Col, Kind, TableSchema
from schemas.contract import EXIT_OK

DAYS = TableSchema("silver.days", [Col("id", Kind.LONG, "row"), Col("date", Kind.DATE, "day")], cluster_by=("date",))
PLAIN = TableSchema("silver.plain", [Col("id", Kind.LONG, "row"), Col("date", Kind.DATE, "day")])
OLD_DAYS = TableSchema("silver.days", DAYS.columns, partition_by=("date",))  # how bronze was laid out before


def live_files(table_path: str) -> list[dict]:
    """The table's current files as the Delta log lists them: add actions not removed since."""
    log = sorted(Path(table_path.removeprefix("file://"), "_delta_log").glob("*.json"))
    files: dict[str, dict] = {}
    for commit in log:
        for line in commit.read_text().splitlines():
            action = json.loads(line)
            if "add" in action:
                files[action["add"]["path"]] = action["add"]
            elif "remove" in action:
                files.pop(action["remove"]["path"], None)
    return list(files.values())


def days(spark, n_rows: int, n_days: int, partitions: int):
    start = date(2000, 1, 1)
    return (spark.range(n_rows, numPartitions=partitions)
            .select("id", F.date_add(F.lit(start), (F.col("id") * 7919 % n_days).cast("int")).alias("date")))


def test_a_small_frame_of_many_partitions_is_one_file(spark, lake):
    lake.write(days(spark, 5000, 3000, partitions=40), PLAIN, run_id="r", stage="s")
    assert len(live_files(lake.path(PLAIN))) == 1
    assert lake.read(spark, PLAIN).count() == 5000


def test_clustered_files_cover_disjoint_date_ranges(spark, lake):
    df = days(spark, 20000, 3000, partitions=8).cache()
    files = laid_out(df, DAYS, target_bytes=64 * 1024).rdd.getNumPartitions()
    assert files > 2  # the small target asks for several files
    Lake(lake.root, target_file_bytes=64 * 1024).write(df, DAYS, run_id="r", stage="s")
    adds = live_files(lake.path(DAYS))
    assert len(adds) == files
    ranges = sorted((json.loads(a["stats"])["minValues"]["date"], json.loads(a["stats"])["maxValues"]["date"])
                    for a in adds)
    for (_, hi), (lo, _) in zip(ranges, ranges[1:]):
        assert hi < lo, ranges  # a date predicate matches the files of its range only
    assert sorted(r.id for r in lake.read(spark, DAYS).collect()) == list(range(20000))


def test_a_date_partitioned_table_of_an_older_lake_is_replaced_by_the_new_layout(spark, lake):
    old = days(spark, 300, 100, partitions=4)
    (old.write.format("delta").partitionBy("date").save(lake.path(OLD_DAYS)))
    assert len(live_files(lake.path(OLD_DAYS))) >= 100  # a file per day at least
    assert lake.read(spark, DAYS).count() == 300  # readable as it is
    new = days(spark, 500, 100, partitions=4)
    lake.write(new, DAYS, run_id="r", stage="s")
    adds = live_files(lake.path(DAYS))
    assert len(adds) == 1 and not adds[0]["partitionValues"]
    assert sorted(r.id for r in lake.read(spark, DAYS).collect()) == list(range(500))
    assert lake.read(spark, DAYS, version=0).count() == 300  # the old layout stays readable by time travel


def test_the_manifest_is_compacted_once_fragmented(spark, lake):
    manifest = RunManifest(lake)
    for i in range(5):
        manifest.append(spark, StageRecord(run_id=f"r{i}", stage="s", status="succeeded"))
    before = sorted(r.run_id for r in manifest.records(spark).collect())
    assert len(live_files(lake.path("_runs"))) > 3
    assert not manifest.compact(spark, max_files=len(live_files(lake.path("_runs"))))
    assert manifest.compact(spark, max_files=3)
    assert len(live_files(lake.path("_runs"))) == 1
    assert sorted(r.run_id for r in manifest.records(spark).collect()) == before


def test_a_twenty_year_log_leaves_few_files_in_every_table(spark, lake):
    """The long-span case: 3,000 interactions over 7,300 days (one partition per day wrote a file
    per day and task)."""
    argv = ["--lake", lake.root, "--run-id", "long", "--source", "synthetic", "--rows", "3000", "--users", "150",
            "--items", "60", "--days", "7300", "--start-date", "2000-01-01", "--seed", "5", "--k", "5", "--clusters", "2"]
    assert job_main(pipeline.add_arguments, pipeline.run, argv) == EXIT_OK
    first_day = lake.read(spark, "bronze.interactions").agg(F.min("date"), F.max("date")).first()
    assert first_day[1] - first_day[0] > timedelta(days=7000)
    counts = {t: len(live_files(lake.path(t))) for t in
              ["bronze.interactions", "bronze.users", "bronze.items", "silver.swing_i2i", "gold.nodes", "gold.edges",
               "gold.neighbors", "gold.examples", "gold.macro"]}
    assert counts["bronze.interactions"] == 1, counts
    assert counts["gold.examples"] <= 3, counts  # one per split
    assert max(counts.values()) <= 3, counts
