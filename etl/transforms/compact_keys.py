"""Compact long keys for ids of any type: unique, deterministic, below 2^31, built without a driver
collect or a single-partition window.

    bucket = pmod(xxhash64(id), KEY_BUCKETS)
    key    = (rank of id among the distinct ids of its bucket, ordered by id, from 0) * KEY_BUCKETS + bucket

Two ids of one bucket differ in rank; ids of different buckets differ in `key mod KEY_BUCKETS`; so
keys never collide (a plain 64-bit hash could). The ranking window is partitioned by bucket, so the
work spreads evenly, and keys depend only on the set of distinct ids. Keys below 2^31 let two of them
be packed into one long (e.g. a user pair), which makes grouping and sorting by the pair cheap; that
holds while no bucket holds more than 2^31 / KEY_BUCKETS ids (about 2·10^9 distinct ids in all), and
a key past it fails the job with a clear error instead of colliding.
"""
from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

KEY_BUCKETS = 1 << 16
KEY_LIMIT = 1 << 31


@dataclass(frozen=True)
class KeyedIds:
    """`frame` with its id column replaced by a compact key; `dictionary` maps key -> id."""

    frame: DataFrame
    dictionary: DataFrame
    id_column: str
    key_column: str
    id_type: T.DataType

    def decode(self, df: DataFrame, key_column: str, out_column: str) -> DataFrame:
        """Replace `df[key_column]` (keys of these ids) by the ids, named `out_column`."""
        ids = self.dictionary.select(F.col(self.key_column).alias(key_column),
                                     F.col(self.id_column).alias(out_column))
        return df.join(ids, key_column).drop(key_column)


def compact_keys(df: DataFrame, id_column: str, key_column: str) -> KeyedIds:
    """Replace `df[id_column]` (non-null) by `key_column`: a long in [0, 2^31), one per distinct id."""
    bucket = F.pmod(F.xxhash64(id_column), F.lit(KEY_BUCKETS))
    rank = F.row_number().over(Window.partitionBy("__bucket").orderBy(id_column)) - 1
    key = (rank * KEY_BUCKETS + F.col("__bucket")).cast("long")
    guarded = F.when(key < KEY_LIMIT, key).otherwise(F.raise_error(F.lit(
        f"more distinct values of {id_column!r} than compact keys can hold "
        f"({KEY_LIMIT // KEY_BUCKETS} in one of {KEY_BUCKETS} hash buckets)")))
    dictionary = (df.select(id_column).distinct().withColumn("__bucket", bucket)
                  .select(id_column, guarded.alias(key_column)))
    return KeyedIds(df.join(dictionary, id_column).drop(id_column), dictionary, id_column, key_column,
                    df.schema[id_column].dataType)
