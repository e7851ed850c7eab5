"""The swing job shell: the pipeline stage on a tiny lake (positives before the cutoff, checks,
manifest, properties; a failed key check writes nothing) and the standalone mode on plain files
(filter, id types kept, top_k, clear errors for a missing path, missing columns, a bad filter).
Scores are checked against the brute-force reference of tests/test_swing.py on positives selected
here in plain Python."""
from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, datetime

from etl.jobs import swing as swing_job
from etl.jobs.shell import job_main
from etl.lake import RunManifest
from etl.transforms.swing import SwingParams
from schemas.contract import EXIT_CHECKS, EXIT_INPUT, EXIT_OK
from schemas.tables import ITEMS, SWING_I2I, interactions
from tests.test_swing import REL, as_dict, assert_same_scores, reference

LABELS = ["like", "love"]
DAYS = [date(2024, 1, d) for d in (1, 2, 3, 4)]


def _log_rows():
    """6 users x 5 items, liked unless (u + i) % 4 == 0; the last two days' rows (val, eval) are all liked."""
    rows = []
    for n, (u, i) in enumerate((u, i) for u in range(6) for i in range(5)):
        d = DAYS[n % 4]
        like = 1 if d >= DAYS[-2] else int((u + i) % 4 != 0)
        rows.append((f"u{u}", f"i{i}", datetime(d.year, d.month, d.day, 9), d, "A", like, 0))
    return rows


def _bronze(spark, lake, items=range(5)):
    schema = interactions(LABELS)
    log = spark.createDataFrame(_log_rows(), schema.spark_schema())
    lake.write(log, schema, run_id="seed", stage="ingest",
               properties={"grec.labels": "like,love", "grec.positive_label": "like"})
    lake.write(spark.createDataFrame([(f"i{i}", "A", [1.0]) for i in items], ITEMS.spark_schema()), ITEMS,
               run_id="seed", stage="ingest")
    return log


def test_stage_writes_checked_weights_of_pre_cutoff_positives(spark, lake):
    _bronze(spark, lake)
    args = ["--lake", lake.root, "--run-id", "r1", "--top-k", "none", "--max-users-per-item", "none"]
    assert job_main(swing_job.add_arguments, swing_job.run, args) == EXIT_OK

    # 30 rows: 8, 8, 7, 7 a day. The default split evaluates 10% = 3 rows -> the last day, and
    # validates the 3 before -> the day before; neither day's likes may count.
    pos = [(r[0], r[1]) for r in _log_rows() if r[5] == 1 and r[3] < DAYS[-2]]
    p = SwingParams(top_k=None, max_users_per_item=None)
    want = reference(pos, p)
    with_held_out = reference([(r[0], r[1]) for r in _log_rows() if r[5] == 1 and r[3] < DAYS[-1]], p)
    assert want and want != with_held_out  # the cutoff changes the weights on this input
    got = lake.read(spark, SWING_I2I)
    assert_same_scores(as_dict(got.collect()), want)
    assert got.dtypes == [(f.name, f.dataType.simpleString()) for f in SWING_I2I.spark_schema().fields]
    props = lake.properties(spark, SWING_I2I)
    assert (props["grec.positive_label"], props["grec.cutoff"]) == ("like", DAYS[-2].isoformat())
    stages = {r["stage"]: r["status"] for r in RunManifest(lake).records(spark, "r1").collect()}
    assert stages == {"swing": "succeeded"}


def test_stage_fails_and_writes_nothing_when_an_item_is_unknown(spark, lake, capsys):
    _bronze(spark, lake, items=range(4))  # i4 has Swing neighbours but no row in bronze.items
    args = ["--lake", lake.root, "--run-id", "r2", "--cutoff", DAYS[-1].isoformat()]
    assert job_main(swing_job.add_arguments, swing_job.run, args) == EXIT_CHECKS
    assert "bronze.items" in capsys.readouterr().err
    assert not lake.exists(spark, SWING_I2I)
    stages = {r["stage"]: r["status"] for r in RunManifest(lake).records(spark, "r2").collect()}
    assert stages == {"swing": "failed"}


def _event_rows():
    return [(u, 1000 + i, "buy" if (u * i) % 3 else "view") for u in range(8) for i in range(6) if (u + i) % 3]


def _events(spark, tmp_path):
    df = spark.createDataFrame(_event_rows(), "uid int, iid long, event string")
    path = str(tmp_path / "events")
    df.write.parquet(path)
    return path


def test_standalone_parquet_with_filter_keeps_id_types(spark, tmp_path):
    path = _events(spark, tmp_path)
    out = str(tmp_path / "swing_out")
    args = ["--input", path, "--format", "parquet", "--user-col", "uid", "--item-col", "iid",
            "--where", "event = 'buy'", "--output", out, "--output-format", "parquet", "--top-k", "2"]
    assert job_main(swing_job.add_arguments, swing_job.run, args) == EXIT_OK
    got = spark.read.parquet(out)
    assert dict(got.dtypes)["item_id"] == "bigint" and dict(got.dtypes)["neighbor_id"] == "bigint"
    want = reference([(u, i) for u, i, e in _event_rows() if e == "buy"], SwingParams(top_k=None))
    scores_of = defaultdict(list)
    for (i, _), (s, _) in want.items():
        scores_of[i].append(s)
    kept = defaultdict(list)
    for r in got.collect():
        assert math.isclose(r.score, want[(r.item_id, r.neighbor_id)][0], rel_tol=REL), r
        assert r.n_common_users == want[(r.item_id, r.neighbor_id)][1], r
        kept[r.item_id].append(r)
    assert set(kept) == set(scores_of)
    for i, rows in kept.items():
        # top_k = 2: ranks 1..2 over the item's two best reference scores (ties either way).
        assert sorted(r.rank for r in rows) == list(range(1, min(2, len(scores_of[i])) + 1))
        best = sorted(scores_of[i], reverse=True)[:2]
        assert all(math.isclose(a, b, rel_tol=REL) for a, b in zip(sorted((r.score for r in rows), reverse=True), best))


def test_standalone_csv_to_delta(spark, tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("user,item\n" + "\n".join(f"u{u},m{i}" for u in range(5) for i in range(4) if u != i) + "\n")
    out = str(tmp_path / "swing_delta")
    args = ["--input", str(path), "--format", "csv", "--user-col", "user", "--item-col", "item", "--output", out]
    assert job_main(swing_job.add_arguments, swing_job.run, args) == EXIT_OK
    got = spark.read.format("delta").load(out)
    assert {r.item_id for r in got.collect()} == {"m0", "m1", "m2", "m3"}


def test_standalone_errors_name_the_problem(spark, tmp_path, capsys):
    path = _events(spark, tmp_path)
    out = str(tmp_path / "never")
    base = ["--output", out, "--format", "parquet"]

    def fails_with(args, *needles):
        assert job_main(swing_job.add_arguments, swing_job.run, base + args) == EXIT_INPUT
        err = capsys.readouterr().err
        assert all(n in err for n in needles), err

    fails_with(["--input", str(tmp_path / "missing")], str(tmp_path / "missing"))
    fails_with(["--input", path, "--user-col", "user"], "'user'", "uid", "iid", "event")
    fails_with(["--input", path, "--user-col", "uid", "--item-col", "iid", "--where", "no_such_col = 1"],
               "--where", "no_such_col")
    fails_with(["--input", path, "--user-col", "uid", "--item-col", "iid", "--where", "event = = 'buy'"], "--where")
    fails_with(["--input", path, "--user-col", "uid", "--item-col", "iid", "--max-users-per-item", "1"],
               "--max-users-per-item")
    fails_with(["--input", path, "--user-col", "uid", "--item-col", "iid", "--val-fraction", "1"], "--val-fraction")
