"""Ingest: bad input gets a clear error, loses nothing, and leaves the lake's tables unchanged."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from etl.jobs import ingest
from etl.jobs.shell import job_main
from etl.lake import RunManifest
from schemas.contract import EXIT_CHECKS, EXIT_INPUT, EXIT_OK

HEADER = "user_id,item_id,ts,domain,like,love"
GOOD = [
    "u1,i1,2024-01-01 10:00:00,drama,1,0",
    "u1,i2,2024-01-02 11:00:00,comedy,0,0",
    "u2,i1,2024-01-02 12:00:00,drama,1,1",
    "u3,i3,2024-01-03 09:30:00,drama,1,0",
]


def write_csv(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def run_ingest(lake, csv: Path, *extra: str, run_id: str = "r1") -> int:
    argv = ["--lake", lake.root, "--run-id", run_id, "--source", "contract", "--interactions", str(csv),
            "--labels", "like,love", *extra]
    return job_main(ingest.add_arguments, ingest.run, argv)


def table_versions(spark, lake) -> dict:
    return {t: lake.version(spark, t) for t in ("bronze.interactions", "bronze.users", "bronze.items",
                                                "quarantine.interactions")}


def report(lake, run_id="r1") -> dict:
    path = lake.report_path(run_id, "ingest").removeprefix("file://") + ".json"
    return json.loads(Path(path).read_text())


@pytest.fixture(scope="module")
def good_lake(spark, tmp_path_factory):
    """A lake after one successful ingest of GOOD (run r1); later cases must leave its tables alone."""
    from etl.lake import Lake

    root = tmp_path_factory.mktemp("good")
    lake = Lake(str(root / "lake"))
    assert run_ingest(lake, write_csv(root / "a.csv", GOOD)) == EXIT_OK
    return lake


def test_good_csv_lands_in_bronze_with_manifest(spark, good_lake):
    lake = good_lake
    df = lake.read(spark, "bronze.interactions")
    rows = sorted((r.user_id, r.item_id, str(r.date), r.like, r.love) for r in df.collect())
    assert rows == [("u1", "i1", "2024-01-01", 1, 0), ("u1", "i2", "2024-01-02", 0, 0),
                    ("u2", "i1", "2024-01-02", 1, 1), ("u3", "i3", "2024-01-03", 1, 0)]
    assert lake.properties(spark, "bronze.interactions")["grec.labels"] == "like,love"
    items = {r.item_id: r.domain for r in lake.read(spark, "bronze.items").collect()}
    assert items == {"i1": "drama", "i2": "comedy", "i3": "drama"}
    assert sorted(r.user_id for r in lake.read(spark, "bronze.users").collect()) == ["u1", "u2", "u3"]
    runs = RunManifest(lake).records(spark, "r1").collect()
    assert [(r.run_id, r.stage, r.status) for r in runs] == [("r1", "ingest", "succeeded")]
    outputs = {o["table"]: o for o in json.loads(runs[0].outputs)}
    assert outputs["bronze.interactions"]["rows"] == 4
    assert outputs["bronze.interactions"]["version"] == lake.version(spark, "bronze.interactions")


def test_rerun_same_run_id_is_idempotent(spark, good_lake, tmp_path):
    lake = good_lake
    assert run_ingest(lake, write_csv(tmp_path / "a.csv", GOOD)) == EXIT_OK
    assert lake.read(spark, "bronze.interactions").count() == 4
    assert RunManifest(lake).records(spark, "r1").count() == 1  # the re-run's attempt is the stage's row
    log = lake.read(spark, "_runs").where("run_id = 'r1'").collect()
    assert sorted(r.status for r in log) == ["running", "running", "succeeded", "succeeded"]  # two attempts


@pytest.mark.parametrize("bad_row, rule, words", [
    ("u9,i9,yesterday,drama,1,0", "ts_type", "yesterday"),
    (",i9,2024-01-01 00:00:00,drama,1,0", "user_id_null", "user_id"),
    ("u9,,2024-01-01 00:00:00,drama,1,0", "item_id_null", "item_id"),
    ("u9,i9,2024-01-01 00:00:00,drama,2,0", "label_value", "like must be 0 or 1, got 2"),
    ("u9,i9,1975-01-01 00:00:00,drama,1,0", "ts_range", "plausible range"),
])
def test_bad_rows_fail_the_stage_and_leave_tables_unchanged(spark, good_lake, tmp_path, bad_row, rule, words):
    lake, run_id = good_lake, f"bad-{rule}"
    before = table_versions(spark, lake)
    assert run_ingest(lake, write_csv(tmp_path / "bad.csv", [*GOOD, bad_row]), run_id=run_id) == EXIT_CHECKS
    assert table_versions(spark, lake) == before
    rep = report(lake, run_id)
    assert not rep["success"]
    assert rep["notes"]["rows_quarantined_by_rule"] == {rule: 1}
    failed = [o for o in rep["outcomes"] if not o["success"]]
    assert any(words in s for o in failed for s in o["sample"]), failed
    md = Path(lake.report_path(run_id, "ingest").removeprefix("file://") + ".md").read_text()
    assert "FAILED" in md and rule in md
    assert [r.status for r in RunManifest(lake).records(spark, run_id).collect()] == ["failed"]


def test_bad_rows_below_threshold_go_to_quarantine(spark, lake, tmp_path):
    rows = [*GOOD, "u9,i9,2024-01-01 00:00:00,drama,2,0", GOOD[0]]  # a label of 2 and a duplicated event
    assert run_ingest(lake, write_csv(tmp_path / "a.csv", rows), "--max-quarantine-fraction", "0.5") == EXIT_OK
    assert lake.read(spark, "bronze.interactions").count() == 4
    q = sorted((r.rule, r.source.endswith("a.csv")) for r in lake.read(spark, "quarantine.interactions").collect())
    assert q == [("duplicate_event", True), ("label_value", True)]
    rec = lake.read(spark, "quarantine.interactions").where("rule = 'label_value'").first().record
    assert json.loads(rec)["like"] == "2"
    dup = json.loads(lake.read(spark, "quarantine.interactions").where("rule = 'duplicate_event'").first().record)
    assert (dup["user_id"], dup["item_id"], dup["domain"], dup["like"], dup["love"]) == ("u1", "i1", "drama", 1, 0)
    assert dup["ts"].startswith("2024-01-01T10:00:00")


def test_timestamp_in_ms_declared_as_seconds_is_named(spark, lake, tmp_path):
    rows = ["u1,i1,1704103200000,drama,1,0", "u2,i1,1704189600000,drama,0,0"]
    assert run_ingest(lake, write_csv(tmp_path / "ms.csv", rows), "--ts-unit", "s") == EXIT_CHECKS
    samples = [s for o in report(lake)["outcomes"] for s in o["sample"]]
    assert any("looks like milliseconds" in s for s in samples), samples
    assert lake.version(spark, "bronze.interactions") is None
    assert run_ingest(lake, write_csv(tmp_path / "ms.csv", rows), "--ts-unit", "ms") == EXIT_OK
    assert sorted(str(r.date) for r in lake.read(spark, "bronze.interactions").collect()) == ["2024-01-01", "2024-01-02"]


def test_empty_input_fails_with_a_clear_reason(spark, lake, tmp_path, capsys):
    assert run_ingest(lake, write_csv(tmp_path / "empty.csv", [])) == EXIT_CHECKS
    assert "no rows in the input" in capsys.readouterr().err
    assert lake.version(spark, "bronze.interactions") is None


def test_missing_file_and_missing_column_name_the_problem(spark, lake, tmp_path, capsys):
    assert run_ingest(lake, tmp_path / "nope.csv") == EXIT_INPUT
    assert "nope.csv" in capsys.readouterr().err
    no_love = write_csv(tmp_path / "nolove.csv", ["u1,i1,2024-01-01 10:00:00,drama,1"],
                        header="user_id,item_id,ts,domain,like")
    assert run_ingest(lake, no_love) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "love" in err and "nolove.csv" in err
    assert lake.version(spark, "bronze.interactions") is None


def test_extra_unnamed_csv_columns_are_left_out(spark, lake, tmp_path):
    rows = [r + ",junk," for r in GOOD]
    assert run_ingest(lake, write_csv(tmp_path / "extra.csv", rows, header=HEADER + ",,extra_col")) == EXIT_OK
    assert lake.read(spark, "bronze.interactions").count() == 4


@pytest.mark.parametrize("partitions", [1, 3])
def test_duplicate_kept_is_the_one_with_most_positive_labels_then_smallest_values(spark, partitions):
    """Of the events sharing (user_id, item_id, ts), the kept one has the most positive labels, then
    the smallest other values; the others are flagged, each with its row as the record."""
    from etl.transforms.ingest import IngestRules, flag_rows, mark_duplicates, quarantine_rows

    rows = [("u1", "i1", "2024-01-01 10:00:00", "drama", "1", "0"),
            ("u1", "i1", "2024-01-01 10:00:00", "drama", "1", "1"),
            ("u1", "i1", "2024-01-01 10:00:00", "comedy", "1", "1"),
            ("u1", "i1", "2024-01-01 10:00:01", "drama", "0", "0")]
    raw = spark.createDataFrame(rows, HEADER.replace(",", " string, ") + " string").repartition(partitions)
    flagged = mark_duplicates(flag_rows(raw, IngestRules(["like", "love"])), ["like", "love"])
    kept = [(r.domain, r.like, r.love, str(r.ts)) for r in flagged.where("_rule IS NULL").collect()]
    assert sorted(kept) == [("comedy", 1, 1, "2024-01-01 10:00:00"), ("drama", 0, 0, "2024-01-01 10:00:01")]
    records = sorted(json.loads(r.record)["domain"] + str(json.loads(r.record)["love"])
                     for r in quarantine_rows(flagged, "r").collect())
    assert records == ["drama0", "drama1"]
