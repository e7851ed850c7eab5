"""The three-way time split of the interactions: training days, then validation, then evaluation.

    policy = SplitPolicy()                                   # eval: last 10% of rows, val: the 10% before
    cutoffs = split_cutoffs(interactions, policy)            # SplitCutoffs(val_start, eval_start)
    rows = interactions.withColumn("split", split_column(cutoffs))

Cutoffs fall on whole days, so a day is never split. By default the periods are sized by rows, not
calendar days: a fixed "last N days" holds almost nothing when a long log thins out at its end.
The graph is built from training rows only (date < val_start), so validation rows are as unseen by
the graph as evaluation rows.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction
from typing import Mapping, Optional

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from schemas import contract
from schemas.params import check_bounds, param
from schemas.split import EVAL, SPLITS, TRAIN, VAL


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.4g}%"


@dataclass(frozen=True)
class SplitPolicy:
    """How large the evaluation and validation periods are.

    Args:
        eval_fraction: the evaluation period is the fewest last whole days holding at least this
            share of the rows.
        eval_days: when given, overrides eval_fraction: the last N calendar days are evaluated.
        val_fraction: the validation period is the fewest whole days before the evaluation period
            holding at least this share of all rows; 0 means no validation period.
        val_days: when given, overrides val_fraction: the N calendar days before the evaluation
            period; 0 means no validation period.
    """

    eval_fraction: float = param(0.1, "evaluate the fewest last whole days holding this share of the rows",
                                 above=0, below=1)
    eval_days: Optional[int] = param(None, "evaluate the last N calendar days instead (overrides --eval-fraction)",
                                     at_least=1)
    val_fraction: float = param(0.1, "validate on the fewest whole days before evaluation holding this share of "
                                     "the rows; 0 = no validation period", at_least=0, below=1)
    val_days: Optional[int] = param(None, "validate on the N calendar days before evaluation instead (overrides "
                                          "--val-fraction); 0 = no validation period", at_least=0)

    def __post_init__(self) -> None:
        check_bounds(self)
        # Only fractions in effect compete for the rows; one overridden by days does not count.
        if self.eval_days is None and self.val_days is None and self.eval_fraction + self.val_fraction >= 1:
            raise ValueError(f"--eval-fraction {self.eval_fraction} + --val-fraction {self.val_fraction} must be < 1: "
                             "no row would be left for training")

    @property
    def has_val(self) -> bool:
        return bool(self.val_days) if self.val_days is not None else self.val_fraction > 0

    def describe(self) -> str:
        """One line, e.g. 'eval: last 10% of rows, val: the 10% before'."""
        evaluated = (f"eval: last {self.eval_days} days" if self.eval_days is not None
                     else f"eval: last {_percent(self.eval_fraction)} of rows")
        if not self.has_val:
            return f"{evaluated}, no val"
        validated = (f"the {self.val_days} days before" if self.val_days is not None
                     else f"the {_percent(self.val_fraction)} before")
        return f"{evaluated}, val: {validated}"


@dataclass(frozen=True)
class SplitCutoffs:
    """train: date < val_start; val: val_start <= date < eval_start; eval: date >= eval_start.
    val_start == eval_start when there is no validation period."""

    val_start: date
    eval_start: date

    def __post_init__(self) -> None:
        if self.val_start > self.eval_start:
            raise ValueError(f"val_start {self.val_start} is after eval_start {self.eval_start}")

    def to_properties(self) -> dict[str, str]:
        return {contract.CUTOFF.key: self.val_start.isoformat(), contract.EVAL_CUTOFF.key: self.eval_start.isoformat()}

    @classmethod
    def from_properties(cls, props: Mapping[str, str]) -> SplitCutoffs:
        """From table properties; a table written before the three-way split has only grec.cutoff,
        which then was the first evaluation day with no validation period."""
        if not props.get(contract.CUTOFF.key):
            raise ValueError(f"no table property {contract.CUTOFF.key}")
        val_start = date.fromisoformat(props[contract.CUTOFF.key])
        eval_start = props.get(contract.EVAL_CUTOFF.key)
        return cls(val_start, date.fromisoformat(eval_start) if eval_start else val_start)


def _rows_needed(fraction: float, n: int) -> int:
    # Exact decimal arithmetic: 0.1 * 30 is 3.0000000000000004 in floats, which would demand a 4th row.
    return math.ceil(Fraction(repr(fraction)) * n)


def _start_by_rows(counts: list[tuple[date, int]], before: date, needed: int) -> Optional[date]:
    """The latest date d < `before` with rows(d <= date < before) >= needed, or None if none has."""
    total = 0
    for d, n in reversed(counts):
        if d >= before:
            continue
        total += n
        if total >= needed:
            return d
    return None


def split_cutoffs(interactions: DataFrame, policy: SplitPolicy) -> SplitCutoffs:
    """The cutoffs `policy` gives on `interactions` (one small Spark job: rows per date).

    Raises ValueError when the interactions are empty or no training day is left before val_start.
    """
    counts = sorted((r["date"], r["count"]) for r in interactions.groupBy("date").count().collect())
    if not counts:
        raise ValueError(f"interactions are empty: no date to split on ({policy.describe()})")
    first, last, n = counts[0][0], counts[-1][0], sum(c for _, c in counts)

    def no_training_day(detail: str) -> ValueError:
        return ValueError(f"{policy.describe()} leaves no training day: the interactions span {first}..{last} "
                          f"({len(counts)} days, {n:,} rows); {detail}")

    if policy.eval_days is not None:
        eval_start = last - timedelta(days=policy.eval_days - 1)
    else:
        # Always found: all rows together reach any fraction < 1.
        eval_start = _start_by_rows(counts, last + timedelta(days=1), _rows_needed(policy.eval_fraction, n))
    if not policy.has_val:
        val_start = eval_start
    elif policy.val_days is not None:
        val_start = eval_start - timedelta(days=policy.val_days)
    else:
        found = _start_by_rows(counts, eval_start, _rows_needed(policy.val_fraction, n))
        if found is None:
            raise no_training_day(f"the days before the evaluation start {eval_start} hold too few rows "
                                  "for the validation period")
        val_start = found
    if val_start <= first:
        raise no_training_day(f"training would end before {val_start}, evaluation start at {eval_start}")
    return SplitCutoffs(val_start, eval_start)


def split_column(cutoffs: SplitCutoffs, date_col: str = "date") -> Column:
    """The split of each row by its date: "train", "val" or "eval" (schemas.split)."""
    d = F.col(date_col)
    return (F.when(d < F.lit(cutoffs.val_start), TRAIN)
            .when(d < F.lit(cutoffs.eval_start), VAL)
            .otherwise(EVAL))


def split_sizes(interactions: DataFrame, cutoffs: SplitCutoffs) -> dict[str, dict[str, int]]:
    """{split: {"rows": n, "users": distinct users}} for every split, zeros for an empty one."""
    got = {r["split"]: {"rows": r["rows"], "users": r["users"]}
           for r in interactions.groupBy(split_column(cutoffs).alias("split"))
           .agg(F.count(F.lit(1)).alias("rows"), F.countDistinct("user_id").alias("users")).collect()}
    return {s: got.get(s, {"rows": 0, "users": 0}) for s in SPLITS}
