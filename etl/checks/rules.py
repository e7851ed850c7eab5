"""What every stage's checks are made of, beside the column-level rules their schemas give.

Two kinds of rule:
- Expectations validated on the table itself: the schema's rules plus row rules, written as GX
  UnexpectedRowsExpectation queries over `{batch}` (`rows_rule`);
- key rules that need another table, computed by the stage's `*_violations(...)` as a Spark join
  that yields the violating rows; the job validates each such frame with `must_be_empty`, so the
  report shows the count and sample rows of every broken rule.

The stages' own rules live beside this module, one module per stage (etl.checks.graph,
etl.checks.neighbors, etl.checks.examples, etl.checks.macro).
"""
from __future__ import annotations

from typing import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from schemas import Expectation


def rows_rule(description: str, where: str) -> Expectation:
    """Rows of the table matching `where` are violations."""
    return Expectation("UnexpectedRowsExpectation", {
        "description": description, "unexpected_rows_query": f"SELECT * FROM {{batch}} WHERE {where}"})


def must_be_empty(description: str) -> list[Expectation]:
    """The suite for a frame of violating rows: any row fails it."""
    return [Expectation("UnexpectedRowsExpectation", {
        "description": description, "unexpected_rows_query": "SELECT * FROM {batch}"})]


def not_finite_positive(x: str) -> str:
    # NaN compares greater than every number in Spark SQL, so test it explicitly.
    return f"(isnan({x}) OR {x} <= 0 OR {x} = CAST('Infinity' AS DOUBLE))"


def duplicate_keys(df: DataFrame, key: Sequence[str]) -> DataFrame:
    """The key values held by more than one row of `df`, with their row count (`rows`): a key
    uniqueness rule as a frame of violations, for a stage whose proof usually spares its shuffle."""
    return df.groupBy(*key).agg(F.count(F.lit(1)).alias("rows")).where(F.col("rows") > 1)
