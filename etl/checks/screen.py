"""Screen a suite's data rules in one aggregate query (a large frame's uniqueness rules in a second),
so a passing suite costs one scan of its frame (and a distinct count of its key).

Great Expectations evaluates each expectation as its own Spark jobs: on a cached frame of 1M
examples its 62 rules took 36 jobs, and at 10M rows the suite cost more than the stage's own work.
`screen` turns every data rule whose meaning is a count of offending rows into one aggregate
column (`sum(CASE WHEN <row breaks the rule> THEN 1 ELSE 0 END)`) and evaluates all of them in a
single `agg` (a large frame's uniqueness rules in a second one). A row rule whose condition reads
the table again (a subquery over `{batch}`) is counted by Spark SQL over a temporary view, all such
rules in one query; GX took about a second for each. The schema rules (column set, column types) it
answers from the frame's schema. It returns per rule True (passed), False (failed here) or None
(not screened: GX validates it).

The screen errs on the side of failing: a rule it cannot prove clean it does not pass, and every
rule it does not pass is validated by GX itself (`runner.validate_suite`), whose verdict and
counts are the ones reported. Semantics follow GX's: value-set and range rules ignore nulls;
uniqueness ignores null values as GX does (an all-null compound key).
"""
from __future__ import annotations

import itertools
from contextlib import contextmanager
from typing import Callable, Iterator, Optional, Sequence

from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from etl.write_layout import estimated_bytes
from schemas import Expectation

# The exact query shapes etl.checks.rules writes; any other UnexpectedRowsExpectation goes to GX.
_ROWS_QUERY = "SELECT * FROM {batch}"
_ROWS_WHERE = _ROWS_QUERY + " WHERE "
_views = itertools.count()


def _count(condition: Column) -> Column:
    return F.sum(F.when(condition, 1).otherwise(0))


def _literal(df: DataFrame, column: str, value) -> Column:
    # cast to the column's type: a timestamp bound is written as an ISO string
    return F.lit(value).cast(df.schema[column].dataType)


def _between(df: DataFrame, kw: dict) -> Column:
    c = F.col(kw["column"])
    low, high = kw.get("min_value"), kw.get("max_value")
    outside = F.lit(False)
    if low is not None:
        lo = _literal(df, kw["column"], low)
        outside = outside | ((c <= lo) if kw.get("strict_min") else (c < lo))
    if high is not None:
        hi = _literal(df, kw["column"], high)
        outside = outside | ((c >= hi) if kw.get("strict_max") else (c > hi))
    return _count(c.isNotNull() & outside)


def _query(kw: dict) -> str:
    return " ".join(kw["unexpected_rows_query"].split())


def _where(kw: dict) -> Optional[str]:
    """The condition of a row rule of etl.checks.rules' shape; None for any other query."""
    query = _query(kw)
    return query[len(_ROWS_WHERE):] if query.startswith(_ROWS_WHERE) else None


def _rows(kw: dict) -> Optional[Column]:
    if _query(kw) == _ROWS_QUERY:
        return F.count(F.lit(1))
    where = _where(kw)
    if where is None or "{batch}" in where:  # a subquery over the table: counted by _count_queries
        return None
    return _count(F.expr(where))


def _rereads_table(exp: Expectation) -> bool:
    """A row rule of etl.checks.rules' shape whose condition has a subquery over the table."""
    where = _where(dict(exp.kwargs)) if exp.kind == "UnexpectedRowsExpectation" else None
    return where is not None and "{batch}" in where


@contextmanager
def batch_view(df: DataFrame) -> Iterator[str]:
    """`df` as a temporary view for a `{batch}` query, by a fresh name.

    The view is dropped from the session's catalog directly: `Catalog.dropTempView` would also
    uncache every frame whose plan is the view's, so a stage's checked, cached frame would be
    recomputed for its commit."""
    view = f"grec_batch_{next(_views)}"
    df.createOrReplaceTempView(view)
    try:
        yield view
    finally:
        df.sparkSession._jsparkSession.sessionState().catalog().dropTempView(view)


def _count_queries(df: DataFrame, queries: Sequence[str]) -> list[Optional[int]]:
    """The row count of each `{batch}` query over `df`, as the scalar subqueries of one Spark SQL
    query; None for a query Spark cannot plan (a column the frame lacks), left to GX to report."""
    spark = df.sparkSession
    with batch_view(df) as view:
        plannable = {}
        for i, q in enumerate(queries):
            sql = f"SELECT count(*) FROM ({q.replace('{batch}', view)})"
            try:
                spark.sql(sql)  # analysed now, run below
            except AnalysisException:
                continue
            plannable[i] = sql
        row = None
        if plannable:
            row = spark.sql("SELECT " + ", ".join(f"({sql}) AS r{i}" for i, sql in plannable.items())).first()
    return [int(row[f"r{i}"]) if row is not None and i in plannable else None for i in range(len(queries))]


def _duplicates(columns: Sequence[str]) -> Column:
    """Rows minus distinct keys among the rows GX considers (it skips a row whose key is all null):
    > 0 when a key repeats.

    A compound key is counted as one 64-bit hash (xxhash64, which skips nulls), not as a tuple: a
    shuffle of one long instead of the key's columns (12M edges: 15.6 s against 19.7 s). Equal keys
    hash equal, so a pass is exact; two distinct keys that share a hash (about 1 in 10^5 for 12M
    keys; (1, null) and (null, 1) always do) fail here, and GX then decides."""
    considered = F.lit(False)
    for c in columns:
        considered = considered | F.col(c).isNotNull()
    if len(columns) == 1:
        return _count(considered) - F.count_distinct(F.col(columns[0]))
    return _count(considered) - F.count_distinct(F.when(considered, F.xxhash64(*columns)))


_OFFENDING: dict[str, Callable[[DataFrame, dict], Optional[Column]]] = {
    "ExpectColumnValuesToNotBeNull": lambda df, kw: _count(F.col(kw["column"]).isNull()),
    "ExpectColumnValuesToBeInSet": lambda df, kw: _count(
        F.col(kw["column"]).isNotNull() & ~F.col(kw["column"]).isin(list(kw["value_set"]))),
    "ExpectColumnValuesToBeBetween": _between,
    "ExpectColumnValuesToBeUnique": lambda df, kw: _duplicates([kw["column"]]),
    "ExpectCompoundColumnsToBeUnique": lambda df, kw: _duplicates(kw["column_list"]),
    "UnexpectedRowsExpectation": lambda df, kw: _rows(kw),
}


def _row_count_ok(kw: dict, rows: int) -> bool:
    if "value" in kw:
        return rows == kw["value"]
    low, high = kw.get("min_value"), kw.get("max_value")
    return (low is None or rows >= low) and (high is None or rows <= high)


_ROW_COUNT = ("ExpectTableRowCountToBeBetween", "ExpectTableRowCountToEqual")
_UNIQUE = ("ExpectColumnValuesToBeUnique", "ExpectCompoundColumnsToBeUnique")
SPLIT_UNIQUE_BYTES = 32 << 20  # Spark's size estimate above which uniqueness is screened apart (see screen)


def _schema_verdict(df: DataFrame, exp: Expectation) -> Optional[bool]:
    """The schema rules, from the frame's schema alone (no Spark job); None for shapes left to GX."""
    kw = dict(exp.kwargs)
    if exp.kind == "ExpectTableColumnsToMatchSet" and kw.get("exact_match", True):
        return set(df.columns) == set(kw["column_set"])
    if exp.kind == "ExpectColumnValuesToBeOfType" and kw["column"] in df.columns:
        return type(df.schema[kw["column"]].dataType).__name__ == kw["type_"]
    return None


def screen(df: DataFrame, expectations: Sequence[Expectation]) -> list[Optional[bool]]:
    """Per expectation: True when the frame's schema or the one aggregate query shows no offending
    row, False when it shows some, None when the rule is not screened (a shape this module does
    not know, or a column the frame lacks)."""
    aggregates: dict[int, Column] = {}
    verdicts: list[Optional[bool]] = [_schema_verdict(df, exp) for exp in expectations]
    for i, exp in enumerate(expectations):
        kw = dict(exp.kwargs)
        if verdicts[i] is not None:
            continue
        if exp.kind in _ROW_COUNT:
            aggregates[i] = F.count(F.lit(1))
        elif exp.kind in _OFFENDING and not _missing_columns(df, kw):
            col = _OFFENDING[exp.kind](df, kw)
            if col is not None:
                aggregates[i] = col
    # On a large frame the uniqueness rules go in a query of their own. Beside a distinct count,
    # every other aggregate is carried through its shuffle, one partial result per distinct key: on
    # 6M rows the scan rules took 0.9 s and the distinct count 3.7 s alone, 6.5 to 6.9 s together.
    # On a small frame the second query's fixed cost is the larger.
    large = estimated_bytes(df) > SPLIT_UNIQUE_BYTES
    unique = {i for i in aggregates if large and expectations[i].kind in _UNIQUE}
    rereading = [i for i, exp in enumerate(expectations) if verdicts[i] is None and _rereads_table(exp)]
    if rereading:
        counts = _count_queries(df, [_query(dict(expectations[i].kwargs)) for i in rereading])
        for i, n in zip(rereading, counts):
            verdicts[i] = None if n is None else n == 0
    for part in ({i: c for i, c in aggregates.items() if i not in unique},
                 {i: c for i, c in aggregates.items() if i in unique}):
        if not part:
            continue
        row = df.agg(*(col.alias(f"r{i}") for i, col in part.items())).first()
        assert row is not None  # an aggregate without grouping has exactly one row
        for i in part:
            value = int(row[f"r{i}"] or 0)
            exp = expectations[i]
            verdicts[i] = _row_count_ok(dict(exp.kwargs), value) if exp.kind in _ROW_COUNT else value == 0
    return verdicts


def _missing_columns(df: DataFrame, kw: dict) -> list[str]:
    """Columns a rule names that the frame lacks: such a rule is left to GX, which reports it."""
    named = [kw["column"]] if "column" in kw else list(kw.get("column_list", []))
    return [c for c in named if c not in df.columns]


def count_rows(frames: Sequence[DataFrame]) -> list[int]:
    """The row count of each frame, all from one Spark query: the frames' plans are its branches,
    so a subplan they share (a join input, an aggregation) is computed once, and the query's fixed
    cost is paid once rather than per frame (adaptive execution still runs its shuffle stages as
    jobs of their own)."""
    if not frames:
        return []
    tagged = [f.select(F.lit(i).alias("_frame")) for i, f in enumerate(frames)]
    union = tagged[0]
    for t in tagged[1:]:
        union = union.unionByName(t)
    counts = {r["_frame"]: r["count"] for r in union.groupBy("_frame").count().collect()}
    return [int(counts.get(i, 0)) for i in range(len(frames))]
