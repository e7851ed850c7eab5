"""Ingest transforms: raw source rows -> typed bronze rows, each bad row flagged with its reason.

`flag_rows` casts every contract column without ever failing the job (Spark 4 runs in ANSI mode,
so a plain cast of a bad string would abort): it uses try_cast and records, per row, the first
row-level rule broken. `split_flagged` turns that into the bronze rows and the quarantine rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from etl.sources.base import TsUnit, item_domains
from schemas import TableSchema
from schemas.tables import MIN_PLAUSIBLE_TS, interactions

SOURCE_COL = "_source"
_INTERNAL = ("_rule", "_record", SOURCE_COL, "date")  # flag_rows' columns that are not the contract's
_EPOCH_FACTOR = {TsUnit.SECONDS: 1.0, TsUnit.MILLIS: 1e3, TsUnit.MICROS: 1e6}


def _default_max_ts() -> str:
    return (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")


@dataclass(frozen=True)
class IngestRules:
    """Row-level rules of the input contract (docs/method.md §Contract).

    Args:
        labels: task label columns; each must be 0 or 1.
        numeric: optional numeric columns; null is allowed, a non-number is not.
        ts_unit: how to read `ts` when it is a number or a numeric string.
        min_ts / max_ts: the plausible event-time range (UTC, ISO); outside it a row is rejected,
            which is how a timestamp in ms declared as s is caught.
    """

    labels: Sequence[str]
    numeric: Sequence[str] = ()
    ts_unit: TsUnit = TsUnit.TIMESTAMP
    min_ts: str = MIN_PLAUSIBLE_TS
    max_ts: str = field(default_factory=_default_max_ts)

    @property
    def schema(self) -> TableSchema:
        return interactions(self.labels, self.numeric)

    @property
    def required(self) -> list[str]:
        return ["user_id", "item_id", "ts", "domain", *self.labels]


def _epoch_seconds(iso: str) -> float:
    return datetime.fromisoformat(iso).replace(tzinfo=timezone.utc).timestamp()


def _id(c: str) -> Column:
    s = F.trim(F.col(c).cast("string"))
    return F.when(s == "", None).otherwise(s)


def _ts(raw_type: T.DataType, rules: IngestRules) -> tuple[Column, Column]:
    """(timestamp or null, rule broken or null) for the raw `ts` column."""
    lo, hi = _epoch_seconds(rules.min_ts), _epoch_seconds(rules.max_ts)
    where = f"outside the plausible range [{rules.min_ts}, {rules.max_ts}]"
    if isinstance(raw_type, (T.TimestampType, T.TimestampNTZType, T.DateType)) or rules.ts_unit == TsUnit.TIMESTAMP:
        ts = (F.col("ts").cast("timestamp") if not isinstance(raw_type, T.StringType)
              else F.try_to_timestamp(F.col("ts")))
        secs = F.unix_micros(ts) / 1e6
        rule = (F.when(F.col("ts").isNull(), F.lit("ts_null: ts is null"))
                .when(ts.isNull(), F.concat(F.lit("ts_type: ts is not a timestamp: "), F.col("ts").cast("string")))
                .when((secs < lo) | (secs > hi), F.concat(F.lit("ts_range: ts "), ts.cast("string"), F.lit(f" {where}"))))
        return ts, rule
    factor = _EPOCH_FACTOR[rules.ts_unit]
    num = F.expr("try_cast(ts as double)")
    secs = num / factor
    ok = secs.between(lo, hi)
    hint = F.when((secs / 1e3).between(lo, hi), F.lit(" (the value looks like milliseconds: pass --ts-unit ms)")) \
        .when((secs / 1e6).between(lo, hi), F.lit(" (the value looks like microseconds: pass --ts-unit us)")) \
        .when((secs * 1e3).between(lo, hi), F.lit(" (the value looks like seconds: pass --ts-unit s)")) \
        .otherwise(F.lit(""))
    ts = F.when(ok, F.timestamp_micros((secs * 1e6).cast("long")))
    rule = (F.when(F.col("ts").isNull(), F.lit("ts_null: ts is null"))
            .when(num.isNull(), F.concat(F.lit(f"ts_type: ts is not a number of {rules.ts_unit.value}: "),
                                         F.col("ts").cast("string")))
            .when(~ok, F.concat(F.lit("ts_range: ts "), F.col("ts").cast("string"),
                                F.lit(f" read as {rules.ts_unit.value} is {where}"), hint)))
    return ts, rule


def flag_rows(raw: DataFrame, rules: IngestRules) -> DataFrame:
    """Typed contract columns plus `_rule` (first broken rule, 'name: reason', or null) and `_record`
    (the raw row as JSON where `_rule` is set, else null).

    Raises:
        ValueError: a required column is missing (the message lists the columns found).
    """
    missing = [c for c in rules.required if c not in raw.columns]
    if missing:
        raise ValueError(f"missing required column(s) {missing}; columns found: {raw.columns}")
    raw_types = {f.name: f.dataType for f in raw.schema.fields}
    data_cols = [c for c in raw.columns if c != SOURCE_COL]
    source = F.col(SOURCE_COL) if SOURCE_COL in raw.columns else F.lit("input")
    ts, ts_rule = _ts(raw_types["ts"], rules)

    checks: list[Column] = [
        F.when(_id("user_id").isNull(), F.lit("user_id_null: user_id is null or empty")),
        F.when(_id("item_id").isNull(), F.lit("item_id_null: item_id is null or empty")),
        ts_rule,
        F.when(_id("domain").isNull(), F.lit("domain_null: domain is null or empty")),
    ]
    typed = {"user_id": _id("user_id"), "item_id": _id("item_id"), "ts": ts, "domain": _id("domain")}
    for lab in rules.labels:
        v = F.expr(f"try_cast(`{lab}` as double)")
        checks.append(F.when(~v.isin(0.0, 1.0) | v.isNull(),
                             F.concat(F.lit(f"label_value: {lab} must be 0 or 1, got "),
                                      F.coalesce(F.col(lab).cast("string"), F.lit("null")))))
        typed[lab] = v.cast("int")
    for num in rules.numeric:
        v = F.expr(f"try_cast(`{num}` as double)")
        checks.append(F.when(F.col(num).isNotNull() & v.isNull(),
                             F.concat(F.lit(f"numeric_type: {num} is not a number: "), F.col(num).cast("string"))))
        typed[num] = v
    first_broken = F.coalesce(*checks)
    out = raw.select(
        *(typed[c].alias(c) for c in typed),
        first_broken.alias("_rule"),
        source.alias(SOURCE_COL),
        # the row as read, kept only where a rule is broken: a JSON string on every row, cached and
        # shuffled by mark_duplicates, took 40% of flagging and deduplicating 3M synthetic rows
        F.when(first_broken.isNotNull(), F.to_json(F.struct(*(F.col(c) for c in data_cols)))).alias("_record"),
    )
    return out.withColumn("date", F.to_date("ts"))


def mark_duplicates(flagged: DataFrame, labels: Sequence[str]) -> DataFrame:
    """Flag repeated (user_id, item_id, ts) events beyond the first as `duplicate_event`.

    The kept event is the one with the most positive labels (then the smallest values of the other
    columns, in order), so the choice does not depend on partitioning.
    """
    key = ["user_id", "item_id", "ts"]
    rest = [c for c in flagged.columns if c not in (*key, *labels, *_INTERNAL)] + [SOURCE_COL]
    order = [F.col(lab).desc() for lab in labels] + [F.col(c) for c in rest]
    w = Window.partitionBy(*key).orderBy(*order)
    valid = F.col("_rule").isNull()
    rn = F.when(valid, F.row_number().over(w))
    return flagged.withColumn("_rule", F.when(valid & (rn > 1), F.lit(
        "duplicate_event: another event with the same (user_id, item_id, ts) was kept")).otherwise(F.col("_rule")))


def good_rows(flagged: DataFrame, rules: IngestRules) -> DataFrame:
    return flagged.where(F.col("_rule").isNull()).select(*rules.schema.names)


def quarantine_rows(flagged: DataFrame, run_id: str) -> DataFrame:
    rule = F.col("_rule")
    return flagged.where(rule.isNotNull()).select(
        F.lit(run_id).alias("run_id"),
        F.col(SOURCE_COL).alias("source"),
        F.substring_index(rule, ":", 1).alias("rule"),
        rule.alias("reason"),
        # a duplicate broke no row rule, so its typed values are the row as read
        F.coalesce(F.col("_record"), F.to_json(F.struct(*(c for c in flagged.columns if c not in _INTERNAL))))
        .alias("record"),
    )


def rule_counts(flagged: DataFrame) -> DataFrame:
    """Per broken rule: row count and up to 5 sample reasons (aggregated, small)."""
    return (flagged.where(F.col("_rule").isNotNull())
            .groupBy(F.substring_index("_rule", ":", 1).alias("rule"))
            .agg(F.count("*").alias("rows"), F.slice(F.collect_list("_rule"), 1, 5).alias("samples")))


def complete_users(users: DataFrame | None, good: DataFrame) -> DataFrame:
    """Every user of the interactions gets a row; those missing from the side table get zero features."""
    ids = good.select("user_id").distinct()
    return _complete(users, ids, "user_id", extra=[])


def complete_items(items: DataFrame | None, good: DataFrame) -> DataFrame:
    """Every item gets a row; one missing from the side table takes its most frequent domain."""
    return _complete(items, item_domains(good), "item_id", extra=["domain"])


def _complete(side: DataFrame | None, ids: DataFrame, key: str, extra: list[str]) -> DataFrame:
    empty = F.array().cast(T.ArrayType(T.FloatType(), containsNull=False))
    if side is None:
        return ids.select(key, *extra, empty.alias("features"))
    side = side.select(F.col(key).cast("string").alias(key), *extra,
                       F.col("features").cast(T.ArrayType(T.FloatType(), containsNull=False)).alias("features"))
    width = side.agg(F.coalesce(F.max(F.size("features")), F.lit(0)).alias("_w"))
    missing = ids.join(side.select(key), key, "left_anti")
    filled = missing.select(key, *extra, F.lit(None).cast(T.ArrayType(T.FloatType(), False)).alias("features"))
    zeros = F.expr("array_repeat(cast(0.0 as float), _w)")
    return (side.unionByName(filled).crossJoin(F.broadcast(width))
            .withColumn("features", F.coalesce(F.col("features"), zeros))
            .drop("_w"))
