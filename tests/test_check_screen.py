"""The one-query screen of a suite's data rules agrees with Great Expectations' own verdicts.

The oracle is GX itself, validating every rule on the same frame; the screen must pass exactly the
rules GX passes (it may only fail more, and then GX decides), and `validate_suite` must report
GX's verdict, counts and sample for every failed rule.
"""
from __future__ import annotations

from datetime import datetime

import pytest
from pyspark.sql import types as T

from etl.checks import runner
from etl.checks.rules import must_be_empty, rows_rule
from etl.checks.screen import count_rows, screen
from schemas import Expectation

SCHEMA = T.StructType([
    T.StructField("id", T.LongType()),
    T.StructField("name", T.StringType()),
    T.StructField("ts", T.TimestampType()),
    T.StructField("score", T.DoubleType()),
    T.StructField("a", T.LongType()),
    T.StructField("b", T.StringType()),
])
ROWS = [
    (1, "x", datetime(2020, 1, 1), 0.5, 1, "p"),
    (2, "y", datetime(2021, 6, 1), 1.0, 1, "q"),
    (3, None, datetime(1985, 1, 1), 0.0, 2, "p"),
    (3, "z", datetime(2022, 1, 1), None, 2, "q"),
]


def E(kind: str, **kw) -> Expectation:
    return Expectation(kind, kw)


# (expectation, does GX pass it on ROWS?) -- worked out by hand from ROWS
CASES = [
    (E("ExpectColumnValuesToNotBeNull", column="id"), True),
    (E("ExpectColumnValuesToNotBeNull", column="name"), False),
    (E("ExpectColumnValuesToBeInSet", column="name", value_set=["x", "y", "z"]), True),  # null ignored
    (E("ExpectColumnValuesToBeInSet", column="name", value_set=["x", "y"]), False),
    (E("ExpectColumnValuesToBeBetween", column="score", min_value=0.0, max_value=1.0), True),
    (E("ExpectColumnValuesToBeBetween", column="score", min_value=0.0, strict_min=True), False),
    (E("ExpectColumnValuesToBeBetween", column="score", max_value=1.0, strict_max=True), False),
    (E("ExpectColumnValuesToBeBetween", column="ts", min_value="1990-01-01T00:00:00"), False),
    (E("ExpectColumnValuesToBeBetween", column="ts", min_value="1980-01-01T00:00:00"), True),
    (E("ExpectColumnValuesToBeUnique", column="name"), True),
    (E("ExpectColumnValuesToBeUnique", column="id"), False),
    (E("ExpectCompoundColumnsToBeUnique", column_list=["a", "b"]), True),
    (E("ExpectCompoundColumnsToBeUnique", column_list=["id", "a"]), False),
    (E("ExpectTableRowCountToBeBetween", min_value=1), True),
    (E("ExpectTableRowCountToBeBetween", min_value=5), False),
    (E("ExpectTableRowCountToEqual", value=4), True),
    (E("ExpectTableRowCountToEqual", value=3), False),
    (rows_rule("no score above a", "score > a"), True),
    (rows_rule("ids are odd", "id % 2 = 0"), False),
    (E("ExpectColumnValuesToBeOfType", column="id", type_="LongType"), True),
    (E("ExpectColumnValuesToBeOfType", column="id", type_="StringType"), False),
    (E("ExpectTableColumnsToMatchSet", column_set=["id", "name", "ts", "score", "a", "b"], exact_match=True), True),
    (E("ExpectTableColumnsToMatchSet", column_set=["id", "name", "ts", "score", "a"], exact_match=True), False),
    (E("ExpectColumnValuesToNotBeNull", column="nope"), False),
    (E("UnexpectedRowsExpectation", description="a subquery",
       unexpected_rows_query="SELECT * FROM {batch} WHERE id > (SELECT avg(id) FROM {batch})"), False),
    (rows_rule("no id above the largest a", "id > (SELECT max(a) + 1 FROM {batch})"), True),
    (rows_rule("a subquery over a missing column", "id > (SELECT max(nope) FROM {batch})"), False),
]


@pytest.fixture(scope="module")
def frame(spark):
    return spark.createDataFrame(ROWS, SCHEMA).cache()


def test_gx_agrees_with_the_hand_worked_verdicts(frame):
    # the oracle's own sanity: GX on every case, as hand-worked above
    _, results = runner._results(frame, [c for c, _ in CASES], {"result_format": "BOOLEAN_ONLY"})
    assert [bool(r.success) for r in results] == [ok for _, ok in CASES]


def test_screen_passes_exactly_what_gx_passes(frame):
    verdicts = screen(frame, [c for c, _ in CASES])
    for (exp, ok), v in zip(CASES, verdicts):
        if "nope" in str(exp.kwargs):
            assert v is None, exp.describe()  # missing columns are GX's to report
        else:
            assert v is ok, exp.describe()


def test_null_keys_follow_gx(spark):
    # a repeated null is no duplicate to GX, nor to the screen
    single = spark.createDataFrame([(None,), (None,), (1,)], "k long")
    unique = E("ExpectColumnValuesToBeUnique", column="k")
    assert screen(single, [unique]) == [True]
    assert runner._results(single, [unique], {"result_format": "BOOLEAN_ONLY"})[1][0].success
    # compound keys: a repeated partly null key fails; distinct partly null keys pass, unless their
    # hashes meet ((1, null) and (null, 1) do): the screen then fails them and GX's verdict is reported
    pair = E("ExpectCompoundColumnsToBeUnique", column_list=["a", "b"])
    for rows, screened in [([(1, None), (1, None), (2, 3)], False), ([(1, None), (2, None), (2, 3)], True),
                           ([(None, None), (None, None), (2, 3)], True), ([(1, None), (None, 1)], False)]:
        compound = spark.createDataFrame(rows, "a long, b long")
        assert screen(compound, [pair]) == [screened], rows
        gx_ok = runner._results(compound, [pair], {"result_format": "BOOLEAN_ONLY"})[1][0].success
        assert runner.validate_suite(compound, [pair], "t").outcomes[0].success == gx_ok, rows
        assert not screened or gx_ok, rows   # a screened pass is one GX agrees with


def test_validate_suite_reports_gx_counts_and_samples_for_failures(frame):
    run = runner.validate_suite(frame, [c for c, _ in CASES], "t")
    assert [o.success for o in run.outcomes] == [ok for _, ok in CASES]
    by_rule = {o.expectation: o for o in run.outcomes}
    names = by_rule[E("ExpectColumnValuesToBeInSet", column="name", value_set=["x", "y"]).describe()]
    assert names.unexpected_count == 1 and names.sample == ["z"]
    odd = by_rule[rows_rule("ids are odd", "id % 2 = 0").describe()]
    assert sorted(r["id"] for r in odd.sample) == [2]
    # the GX result behind Data Docs holds every rule, screened passes included
    assert len(run.gx_result.results) == len(CASES)
    assert run.gx_result.statistics["successful_expectations"] == sum(ok for _, ok in CASES)


def test_validation_leaves_no_frame_cached(spark):
    """GX caches each frame it validates unless told not to; a frame left registered with Spark's
    cache manager slows the planning of every later query of the process."""
    from pyspark import StorageLevel

    fresh = spark.createDataFrame(ROWS, SCHEMA).where("id > 0")
    assert fresh.storageLevel == StorageLevel.NONE
    failing = [E("ExpectColumnValuesToNotBeNull", column="name"), rows_rule("ids are odd", "id % 2 = 0")]
    run = runner.validate_suite(fresh, failing, "t")  # failures: GX validates them
    assert not all(o.success for o in run.outcomes)
    assert fresh.storageLevel == StorageLevel.NONE


def test_validation_leaves_a_cached_frame_cached(spark):
    """The rules that reread the table and the samples of failed row rules query a temporary view
    of the frame; dropping it must not uncache the frame, which the stage then commits."""
    cached = spark.createDataFrame(ROWS, SCHEMA).where("id > 0").cache()
    cached.count()
    manager = spark._jsparkSession.sharedState().cacheManager()
    rules = [rows_rule("ids are odd", "id % 2 = 0"), rows_rule("no id above the largest a", "id > (SELECT max(a) FROM {batch})")]
    run = runner.validate_suite(cached, rules, "t")
    assert not all(o.success for o in run.outcomes)   # the failed row rules' samples were fetched
    assert manager.lookupCachedData(cached._jdf).isDefined()
    cached.unpersist()


def test_a_large_frames_uniqueness_rules_are_screened_apart_with_the_same_verdicts(frame, monkeypatch):
    from etl.checks import screen as screen_module

    together = screen(frame, [c for c, _ in CASES])
    monkeypatch.setattr(screen_module, "SPLIT_UNIQUE_BYTES", -1)  # every frame counts as large
    assert screen(frame, [c for c, _ in CASES]) == together
    assert [v for v in together if v is not None] == [ok for (c, ok), v in zip(CASES, together) if v is not None]


def test_must_be_empty_is_screened_as_a_row_count(spark):
    empty = spark.createDataFrame([], "x long")
    assert screen(empty, must_be_empty("no orphan")) == [True]
    assert screen(spark.createDataFrame([(1,)], "x long"), must_be_empty("no orphan")) == [False]


def test_a_passing_suite_runs_fewer_spark_jobs_than_gx(spark, frame):
    frame.count()  # the cache is built, so only the rules' own jobs are counted
    # the rules the aggregate query screens (a rule with a subquery is counted by its own query)
    passing = [c for c, ok in CASES if ok and "{batch} WHERE" not in str(c.kwargs)]
    tracker = spark.sparkContext.statusTracker()

    def jobs(group: str, work) -> int:
        spark.sparkContext.setJobGroup(group, group)
        try:
            work()
        finally:
            spark.sparkContext.setJobGroup("", "")
        return len(tracker.getJobIdsForGroup(group))

    screened = jobs("grec-screen", lambda: screen(frame, passing))
    gx = jobs("grec-gx", lambda: runner._results(frame, passing, {"result_format": "BOOLEAN_ONLY"}))
    # one aggregate, whose distinct-key part adds stages that adaptive execution runs as jobs
    assert screened <= 3 < gx, (screened, gx)


def test_count_rows_counts_every_frame_in_one_query(spark):
    left = spark.createDataFrame([(i, i % 3) for i in range(10)], "id long, g long")
    right = spark.createDataFrame([(0,), (1,)], "g long")
    joined = left.join(right, "g")  # g in {0, 1}: ids 0,1,3,4,6,7,9 -> 7 rows
    frames = [joined, joined.where("id > 5"), left.where("id < 0"), left]  # 7, 3 (6,7,9), 0, 10
    sc = spark.sparkContext

    def jobs(group: str, work):
        sc.setJobGroup(group, group)
        try:
            out = work()
        finally:
            sc.setJobGroup("", "")
        return out, len(sc.statusTracker().getJobIdsForGroup(group))

    counts, together = jobs("grec-count-rows", lambda: count_rows(frames))
    assert counts == [7, 3, 0, 10]
    _, apart = jobs("grec-count-apart", lambda: [f.count() for f in frames])
    assert together < apart
    assert count_rows([]) == []
