"""Importance-sampled 1-hop neighbour lists (docs/method.md §Neighbours): k neighbours per node,
drawn without replacement with probability proportional to w^beta, by Efraimidis–Spirakis keys.

For each edge e = (v, x) of type t and weight w: U_e = uniform(0, 1) from xxhash64(seed, v, x, t),
key_e = U_e^(1 / w^beta); the k largest keys of v's out-edges are its sample (all of them when
deg(v) <= k), listed by descending key — which is also the order of successive sampling. Keys are
compared as log(U_e) / w^beta (the same order, without underflow for small w^beta), with w as
gold.neighbors stores it (a float), so that a list's keys can be recomputed from its own rows
(etl.checks.neighbors proves the lists against the edges that way).

The top-k runs as a per-node window with `row_number() <= k`, which Spark executes as a
WindowGroupLimit: a partial top-k per node before the shuffle and a final one after, so a hub's
edges are reduced map-side. A hub's surviving candidates still meet in one task (sorted there);
at this project's scale that is fine; a node with hundreds of millions of edges would want salting.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from schemas.params import check_bounds, param
from schemas.tables import NEIGHBORS

_TWO_POW_53 = float(2 ** 53)


@dataclass(frozen=True)
class NeighborParams:
    """Args:
        k: neighbours kept per node (E2E-GRec: 100).
        beta: sampling exponent, p ∝ w^beta (E2E-GRec: 0.5).
        seed: the sample is a pure function of (seed, edges).
    """

    k: int = param(100, "neighbours kept per node", at_least=1)
    beta: float = param(0.5, "sampling exponent: p ∝ weight^beta", at_least=0)
    seed: int = param(0, "sampling seed")

    def __post_init__(self) -> None:
        check_bounds(self)


def edge_hash(seed: int, src: Column | str, dst: Column | str, edge_type: Column | str) -> Column:
    """xxhash64(seed, src, dst, edge_type): the edge's random bits, a pure function of the seed and
    the edge (etl.checks.neighbors re-derives them from gold.neighbors' rows)."""
    return F.xxhash64(F.lit(seed).cast("long"), src, dst, edge_type)


def log_key(h: Column, weight: Column, beta: float) -> Column:
    """log(U) / w^beta, for U uniform in (0, 1) strictly inside: the top 53 bits of the hash `h`,
    centred in their cell; w is `weight` rounded to a float, as gold.neighbors stores it, so that
    a list's keys can be recomputed from its own rows."""
    u = (F.shiftrightunsigned(h, 11).cast("double") + 0.5) / _TWO_POW_53
    return F.log(u) / F.pow(weight.cast("float").cast("double"), F.lit(beta))


def sampling_keys(edges: DataFrame, params: NeighborParams) -> DataFrame:
    """edges + log_key = log(U) / w^beta (larger = drawn earlier)."""
    return edges.withColumn("log_key", log_key(edge_hash(params.seed, "src", "dst", "edge_type"),
                                               F.col("weight"), params.beta))


def sample_neighbors(edges: DataFrame, nodes: DataFrame, type_codes: Mapping[str, int],
                     params: NeighborParams = NeighborParams()) -> DataFrame:
    """gold.neighbors: one row per node of `nodes` (isolated nodes get empty lists), with the sampled
    neighbours' ids, weights and type codes aligned by descending key, and the node's full degree
    (nodes.degree).

    Args:
        edges: gold.edges (src, dst, edge_type, weight > 0).
        nodes: gold.nodes (node_id, degree).
        type_codes: edge_type -> code (etl.transforms.graph.edge_type_codes).
    """
    code_map = F.create_map(*(x for t, c in sorted(type_codes.items()) for x in (F.lit(t), F.lit(c))))
    by_key = Window.partitionBy("src").orderBy(F.col("log_key").desc(), "dst", "edge_type")
    top = (sampling_keys(edges, params)
           .withColumn("rank", F.row_number().over(by_key)).where(F.col("rank") <= params.k))
    # The fallbacks never fire (edges are checked not-null and types come from the same label list);
    # they make the array elements non-nullable, as gold.neighbors declares them.
    picked = F.struct("rank",
                      F.coalesce("dst", F.lit(-1).cast("long")).alias("id"),
                      F.coalesce(F.col("weight").cast("float"), F.lit(0.0).cast("float")).alias("w"),
                      F.coalesce(F.element_at(code_map, F.col("edge_type")), F.lit(-1)).alias("t"))
    lists = top.groupBy(F.col("src").alias("node_id")).agg(F.sort_array(F.collect_list(picked)).alias("s"))

    def field(name: str, kind: T.DataType) -> Column:
        return F.coalesce(F.transform("s", lambda x: x[name]), F.array().cast(T.ArrayType(kind, False)))

    return (nodes.select("node_id", "degree").join(lists, "node_id", "left")
            .select("node_id", field("id", T.LongType()).alias("nbr_ids"),
                    field("w", T.FloatType()).alias("nbr_weights"),
                    field("t", T.IntegerType()).alias("nbr_types"), "degree")
            .select(*NEIGHBORS.names))
