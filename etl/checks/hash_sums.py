"""Exact sums of 64-bit hashes, the arithmetic of proofs that replace key joins
(etl.checks.graph.proven_edge_rules).

Two multisets of keys are compared by summing a 64-bit hash of each key, weighted by its
multiplicity, on both sides: equal multisets give equal sums, and unequal ones give equal sums only
when their hashes happen to cancel. The hash is split into three 21-bit chunks, each summed apart
with `try_sum`, so a sum is exact as long as it fits a long; one that does not is null, which a proof
reads as "not proven" (its join then decides).
"""
from __future__ import annotations

from typing import Any, Mapping

from pyspark.sql import Column
from pyspark.sql import functions as F

CHUNK_BITS = 21
CHUNKS = 3


def chunks(h: Column) -> list[Column]:
    """The three 21-bit chunks of the 64-bit hash `h`, each a non-negative long."""
    mask = (1 << CHUNK_BITS) - 1
    return [F.shiftrightunsigned(h, CHUNK_BITS * c).bitwiseAND(F.lit(mask).cast("long")) for c in range(CHUNKS)]


def chunk_sums(h: Column, prefix: str, weight: Column, where: Column) -> list[Column]:
    """Aggregates `<prefix>0..2`: the sums of h's chunks times `weight`, over the rows where `where` holds."""
    return [F.try_sum(F.when(where, c * weight)).alias(f"{prefix}{k}") for k, c in enumerate(chunks(h))]


def counted_sums(h: Column, prefix: str, weight: Column, where: Column) -> list[Column]:
    """`<prefix>n`, the number of rows where `where` holds, and chunk_sums' `<prefix>0..2`."""
    return [F.count_if(where).alias(f"{prefix}n"), *chunk_sums(h, prefix, weight, where)]


def same_multiset(row: Mapping[str, Any], a: str, b: str) -> bool:
    """Whether counted_sums under `a` and `b` show the same multiset of hashed keys: equal row
    counts, and equal sums unless both sides are empty (a sum over no row is null)."""
    return row[f"{a}n"] == row[f"{b}n"] and (row[f"{a}n"] == 0 or sums_equal(row, a, b))


def sums_equal(row: Mapping[str, Any], *prefixes: str) -> bool:
    """Whether the chunk sums under each prefix are all known (no overflow, some row) and equal."""
    first, *rest = prefixes
    return all(row[f"{first}{k}"] is not None and all(row[f"{p}{k}"] == row[f"{first}{k}"] for p in rest)
               for k in range(CHUNKS))
