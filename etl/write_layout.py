"""How a frame is laid out in files when it is committed: sized files, range-ordered where a table
says so.

A partition per value (the interactions table was partitioned by date) makes the file count follow
the span of the data instead of its size: 100k rows over 20 years were 9,814 files. Tables are
instead written as few files near `schemas.layout.TARGET_FILE_BYTES`, and a table with
`cluster_by` columns has its rows range-partitioned and sorted on them, so each file covers a
narrow range of those columns and Delta's per-file min/max statistics skip files on predicates over
them (what directory pruning did for the partitions).
"""
from __future__ import annotations

import math

from pyspark.sql import DataFrame

from schemas import TableSchema
from schemas.layout import TARGET_FILE_BYTES


def estimated_bytes(df: DataFrame) -> int:
    """Spark's size estimate of `df`: exact for a materialized cache (its in-memory columnar size,
    which is larger than the same rows in Parquet), from file sizes for a table read, and an upper
    bound after a join."""
    return int(str(df._jdf.queryExecution().optimizedPlan().stats().sizeInBytes()))  # a Scala BigInt


def file_count(df: DataFrame, partitions: int, target_bytes: int = TARGET_FILE_BYTES) -> int:
    """Files to write `df` (of `partitions` partitions) as: its estimated size over the target, at
    least one, and never more than its partitions (an estimate after a join can be far too large)."""
    wanted = max(1, math.ceil(estimated_bytes(df) / target_bytes))
    return min(wanted, max(1, partitions))


def laid_out(df: DataFrame, schema: TableSchema, target_bytes: int = TARGET_FILE_BYTES) -> DataFrame:
    """`df` partitioned into the files it should be written as (see the module docstring)."""
    partitions = df.rdd.getNumPartitions()  # plans the frame once; no Spark job
    files = file_count(df, partitions, target_bytes)
    if schema.cluster_by:
        return df.repartitionByRange(files, *schema.cluster_by).sortWithinPartitions(*schema.cluster_by)
    # coalesce merges partitions without a shuffle; the frames committed are cached or read from
    # a cache, so the merged tasks only copy rows
    return df.coalesce(files) if files < partitions else df
