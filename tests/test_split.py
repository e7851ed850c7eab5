"""The three-way time split (etl.transforms.split): cutoffs by row fraction and by days on a
hand-built log, worked out by hand below; the policy's validation; and a long, thinning log that
the default policy splits usably where the old "last 7 days" kept almost nothing."""
from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from etl.jobs.graph import warn_if_eval_too_small
from etl.transforms.split import SplitCutoffs, SplitPolicy, split_column, split_cutoffs, split_sizes
from schemas.split import EVAL, MIN_EVAL_ROWS, MIN_EVAL_USERS, TRAIN, VAL

J = {d: date(2024, 1, d) for d in range(1, 11)}
# Rows per date, with calendar gaps (no rows on Jan 3, 6, 7, 9); N = 20. The i-th row of a date
# belongs to user u<i>, so a date's distinct users are its first `count` users.
COUNTS = {J[1]: 5, J[2]: 3, J[4]: 4, J[5]: 2, J[8]: 1, J[10]: 5}


def _frame(spark, counts):
    return spark.createDataFrame([(f"u{i}", d) for d, n in counts.items() for i in range(n)],
                                 "user_id string, date date")


@pytest.fixture(scope="module")
def log(spark):
    return _frame(spark, COUNTS).cache()


def test_fraction_rule_takes_whole_days_from_the_end(log):
    # eval 30% of 20 = 6 rows: Jan 10 (5) is short, + Jan 8 (1) = 6 -> eval from Jan 8.
    # val 20% of 20 = 4 rows before Jan 8: Jan 5 (2) is short, + Jan 4 (4) = 6 -> val from Jan 4.
    got = split_cutoffs(log, SplitPolicy(eval_fraction=0.3, val_fraction=0.2))
    assert got == SplitCutoffs(val_start=J[4], eval_start=J[8])


def test_fraction_rule_counts_exact_decimals(spark):
    # N = 30: 10% is exactly 3 rows (in floats 0.1 * 30 = 3.0000000000000004, which would take a day more).
    # eval: Jan 10 holds 3 -> Jan 10. val: Jan 8 (2) short, + Jan 5 (2) = 4 -> Jan 5.
    log = _frame(spark, {J[1]: 10, J[2]: 10, J[4]: 3, J[5]: 2, J[8]: 2, J[10]: 3})
    assert split_cutoffs(log, SplitPolicy()) == SplitCutoffs(val_start=J[5], eval_start=J[10])


def test_days_rule_counts_calendar_days(log):
    # The last 2 calendar days are Jan 9..10 (Jan 9 has no row); the 5 days before are Jan 4..8.
    assert split_cutoffs(log, SplitPolicy(eval_days=2, val_days=5)) == SplitCutoffs(J[4], J[9])
    # Days for eval, a fraction for val: 10% of 20 = 2 rows before Jan 9: Jan 8 (1), + Jan 5 (2) -> Jan 5.
    assert split_cutoffs(log, SplitPolicy(eval_days=2, val_fraction=0.1)) == SplitCutoffs(J[5], J[9])


def test_no_validation_period(log):
    assert split_cutoffs(log, SplitPolicy(eval_fraction=0.3, val_fraction=0)) == SplitCutoffs(J[8], J[8])
    assert split_cutoffs(log, SplitPolicy(eval_days=3, val_days=0)) == SplitCutoffs(J[8], J[8])


def test_errors_name_the_span_and_the_policy(spark, log):
    with pytest.raises(ValueError, match="empty"):
        split_cutoffs(_frame(spark, {}), SplitPolicy())
    with pytest.raises(ValueError, match=r"no training day.*2024-01-01\.\.2024-01-10.*"):
        split_cutoffs(log, SplitPolicy(eval_days=10, val_days=0))   # evaluation from the first day
    # eval 50% = 10 rows: Jan 10, 8, 5, 4 hold 12 -> from Jan 4; val 45% = 9 rows, but only 8 are earlier.
    with pytest.raises(ValueError, match="no training day") as e:
        split_cutoffs(log, SplitPolicy(eval_fraction=0.5, val_fraction=0.45))
    assert "eval: last 50% of rows, val: the 45% before" in str(e.value)
    # eval from Jan 8 (as above); 7 days of val before it start on Jan 1, the first day.
    with pytest.raises(ValueError, match="no training day"):
        split_cutoffs(log, SplitPolicy(eval_fraction=0.3, val_days=7))


@pytest.mark.parametrize("kwargs, flag", [
    ({"eval_fraction": 0}, "--eval-fraction"), ({"eval_fraction": 1}, "--eval-fraction"),
    ({"val_fraction": -0.1}, "--val-fraction"), ({"val_fraction": 1}, "--val-fraction"),
    ({"eval_days": 0}, "--eval-days"), ({"val_days": -1}, "--val-days"),
    ({"eval_fraction": 0.6, "val_fraction": 0.4}, "--eval-fraction 0.6 \\+ --val-fraction 0.4"),
])
def test_policy_rejects_bad_values_naming_the_flag(kwargs, flag):
    with pytest.raises(ValueError, match=flag):
        SplitPolicy(**kwargs)


def test_policy_describes_itself():
    assert SplitPolicy().describe() == "eval: last 10% of rows, val: the 10% before"
    assert SplitPolicy(eval_days=14, val_days=7).describe() == "eval: last 14 days, val: the 7 days before"
    assert SplitPolicy(eval_fraction=0.125, val_fraction=0).describe() == "eval: last 12.5% of rows, no val"
    # A days override frees the fraction it replaces from the sum rule.
    assert SplitPolicy(eval_days=3, val_fraction=0.95).describe() == "eval: last 3 days, val: the 95% before"


def test_cutoffs_as_table_properties():
    c = SplitCutoffs(J[4], J[8])
    assert c.to_properties() == {"grec.cutoff": "2024-01-04", "grec.eval_cutoff": "2024-01-08"}
    assert SplitCutoffs.from_properties(c.to_properties()) == c
    # A table written before the three-way split: evaluation began at grec.cutoff.
    assert SplitCutoffs.from_properties({"grec.cutoff": "2024-01-04"}) == SplitCutoffs(J[4], J[4])
    with pytest.raises(ValueError):
        SplitCutoffs(J[8], J[4])


def test_split_column_and_sizes(log):
    cutoffs = SplitCutoffs(J[4], J[8])
    by_date = {r["date"]: r["split"] for r in log.select("date", split_column(cutoffs).alias("split")).collect()}
    assert by_date == {J[1]: TRAIN, J[2]: TRAIN, J[4]: VAL, J[5]: VAL, J[8]: EVAL, J[10]: EVAL}
    # train: Jan 1-2, users u0..u4; val: Jan 4-5, u0..u3; eval: Jan 8 and 10, u0..u4.
    assert split_sizes(log, cutoffs) == {TRAIN: {"rows": 8, "users": 5}, VAL: {"rows": 6, "users": 4},
                                         EVAL: {"rows": 6, "users": 5}}
    assert split_sizes(log, SplitCutoffs(J[8], J[8]))[VAL] == {"rows": 0, "users": 0}


def test_small_evaluation_warns_loudly(capsys):
    small = {TRAIN: {"rows": 9000, "users": 400}, VAL: {"rows": 500, "users": 60},
             EVAL: {"rows": 130, "users": 4}}
    warn_if_eval_too_small(small, SplitPolicy(eval_days=7))
    err = capsys.readouterr().err
    assert "WARNING" in err and "130 rows" in err and "4 users" in err and "--eval-fraction" in err
    big = {**small, EVAL: {"rows": MIN_EVAL_ROWS, "users": MIN_EVAL_USERS}}
    warn_if_eval_too_small(big, SplitPolicy())
    assert capsys.readouterr().err == ""


def test_default_split_of_a_long_thinning_log(spark):
    """~5,000 rows over 20 years, most in the early years and a sparse recent tail."""
    rng = np.random.default_rng(7)
    n, span = 5000, 20 * 365
    first = date(2004, 1, 1)
    offsets = np.floor(rng.beta(1.0, 6.0, n) * span).astype(int)   # density falls as (1 - t)^5
    users = rng.integers(0, 400, n)
    df = pd.DataFrame({"user_id": [f"u{u}" for u in users], "date": [first + timedelta(days=int(o)) for o in offsets]})
    log = spark.createDataFrame(list(df.itertuples(index=False, name=None)), "user_id string, date date")

    cutoffs = split_cutoffs(log, SplitPolicy())
    sizes = split_sizes(log, cutoffs)

    # The same rule worked out in pandas: whole days from the end until 10% (500 rows) is reached.
    per_day = df.groupby("date").size().sort_index(ascending=False)
    eval_start = per_day.index[int(np.argmax(per_day.cumsum().to_numpy() >= 500))]
    before = per_day[per_day.index < eval_start]
    val_start = before.index[int(np.argmax(before.cumsum().to_numpy() >= 500))]
    assert cutoffs == SplitCutoffs(val_start, eval_start)
    expected = {s: (int(m.sum()), df.user_id[m].nunique()) for s, m in (
        (TRAIN, df.date < val_start), (VAL, (df.date >= val_start) & (df.date < eval_start)),
        (EVAL, df.date >= eval_start))}
    assert {s: (v["rows"], v["users"]) for s, v in sizes.items()} == expected

    assert sizes[EVAL]["rows"] >= 500 and sizes[EVAL]["users"] >= 36
    assert sizes[VAL]["rows"] >= 500 and sizes[VAL]["users"] >= 36
    assert sizes[TRAIN]["rows"] >= 3000
    # The old rule, the last 7 calendar days, would have evaluated a handful of rows.
    last = df.date.max()
    assert (df.date > last - timedelta(days=7)).sum() < 10
