"""Rules of gold.neighbors (etl.checks.rules).
"""
from __future__ import annotations

from typing import Mapping, Optional

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from etl.checks.hash_sums import counted_sums, same_multiset
from etl.checks.rules import duplicate_keys, rows_rule
from etl.transforms.neighbors import NeighborParams, edge_hash, log_key
from schemas import Expectation
from schemas.tables import NEIGHBORS

MISSING_ROWS = "nodes without a neighbour row, or with another degree"
UNKNOWN_ROWS = "neighbour rows of unknown nodes"
NOT_EDGES = "sampled neighbours that are not edges of the node"
DUPLICATE_ROWS = "nodes with more than one neighbour row"


def neighbor_rules(k: int, n_types: int) -> list[Expectation]:
    """gold.neighbors' rules on its own rows. The key's uniqueness is a join rule (DUPLICATE_ROWS)
    that proven_neighbor_rules proves with the rows' other rules."""
    return [
        *NEIGHBORS.expectations(key_rule=False),
        rows_rule(f"arrays aligned, of length min({k}, degree)",
                  f"size(nbr_ids) != least({k}, degree) OR size(nbr_weights) != size(nbr_ids) "
                  "OR size(nbr_types) != size(nbr_ids)"),
        # array_min / array_max rather than exists(..., lambda): Spark interprets a lambda element by
        # element (250k lists of 20: 0.5 s against 0.2 s); NaN sorts above every float, so a list
        # holding one has the maximum NaN
        rows_rule(f"type codes in 0..{n_types - 1}", f"array_min(nbr_types) < 0 OR array_max(nbr_types) >= {n_types}"),
        rows_rule("weights finite and > 0",
                  "array_min(nbr_weights) <= 0 OR isnan(array_max(nbr_weights)) "
                  "OR array_max(nbr_weights) = CAST('Infinity' AS FLOAT)"),
        rows_rule("no node is its own neighbour", "array_contains(nbr_ids, node_id)"),
    ]


def neighbor_violations(neighbors: DataFrame, nodes: DataFrame, edges: DataFrame,
                        type_codes: Mapping[str, int]) -> dict[str, DataFrame]:
    """Join rules of gold.neighbors against gold.nodes and gold.edges. Runs one small query (the
    largest node id, which the join key is planned from)."""
    codes = edges.sparkSession.createDataFrame(sorted(type_codes.items()), "edge_type string, t int")
    sampled = neighbors.select("node_id", F.explode(F.arrays_zip("nbr_ids", "nbr_types")).alias("n")).select(
        F.col("node_id").alias("src"), F.col("n.nbr_ids").alias("dst"), F.col("n.nbr_types").alias("t"))
    known = edges.join(F.broadcast(codes), "edge_type").select("src", "dst", "t")
    top = nodes.agg(F.max("node_id")).first()
    assert top is not None  # a global aggregate has one row
    max_id = top[0]
    return {
        MISSING_ROWS: nodes.select("node_id", "degree").join(
            neighbors.select("node_id", "degree"), ["node_id", "degree"], "left_anti"),
        UNKNOWN_ROWS: neighbors.join(nodes.select("node_id"), "node_id", "left_anti"),
        NOT_EDGES: _not_among(sampled, known, max_id, len(type_codes)),
        DUPLICATE_ROWS: duplicate_keys(neighbors, NEIGHBORS.key),
    }


def _not_among(sampled: DataFrame, known: DataFrame, max_id: Optional[int], n_types: int) -> DataFrame:
    """The (src, dst, t) rows of `sampled` that are not rows of `known`.

    Joined on one long, (src * N + dst) * T + t for node ids below N and codes below T, which is
    one to one on that range: a shuffle join on one long key took half the time of one on the three
    columns (12M edges). A row outside the range gets no key, so a sampled one is kept as a
    violation (gold.nodes has no such node or code) and a known one matches nothing. Where N * N *
    T would not fit in a long, the three columns are joined."""
    n = (max_id if max_id is not None else -1) + 1
    if n * n * max(n_types, 1) >= 2 ** 62:
        return sampled.join(known, ["src", "dst", "t"], "left_anti")

    def key(df: DataFrame) -> Column:
        src, dst, t = F.col("src"), F.col("dst"), F.col("t")
        inside = src.between(0, n - 1) & dst.between(0, n - 1) & t.between(0, n_types - 1)
        return F.when(inside, (src * n + dst) * n_types + t)

    return (sampled.withColumn("_key", key(sampled))
            .join(known.select(key(known).alias("_key")), "_key", "left_anti").drop("_key"))


def proven_neighbor_rules(neighbors: DataFrame, nodes: DataFrame, edges: DataFrame,
                          type_codes: Mapping[str, int], params: NeighborParams) -> set[str]:
    """The rules of neighbor_violations shown empty by one aggregate query instead of their joins
    (Stage.check_empty's `proven`), by sums of 64-bit hashes (etl.checks.hash_sums): no shuffle,
    the edges streamed once past a broadcast of one number per node.

    MISSING_ROWS, UNKNOWN_ROWS and DUPLICATE_ROWS: gold.nodes' (node_id, degree) rows and
    gold.neighbors' are equal multisets when their counts and hash sums agree; gold.nodes' node_id
    is unique (its own rule, checked by the graph stage), so every node has exactly one row, of its
    degree, and no row names another node.

    NOT_EDGES: a sampled neighbour (v, x, t) of weight w has the sampler's key
    k = log(U) / w^beta, U from the hash of (seed, v, x, t) and w as stored, a float
    (etl.transforms.neighbors), which the row's own fields give again. Let tau_v be the key of v's
    last sampled neighbour. The edges of v whose key is at least tau_v are summed against the
    sampled neighbours; when the two are equal in number and in hash sums, they are the same
    multiset, so every sampled neighbour is an edge. That holds whatever tau_v is; the sampler's
    order (by descending key) makes tau_v the least key of the list, and then a true sample is
    exactly those edges, so the proof holds for it (unless an edge left out ties the last key
    exactly: the rule is then not proven and its join decides). A list as long as its node's
    degree has no threshold: all of the node's edges are summed, which is a threshold below every
    key, and their keys are not computed (with k = 100 most users' lists are whole).
    """
    names = F.array(*(F.lit(t) for t, _ in sorted(type_codes.items(), key=lambda kv: kv[1])))

    def type_name(code: Column) -> Column:
        # an unknown type code hashes without a type, so it matches no edge
        return F.when(code.between(0, len(type_codes) - 1), F.get(names, code))

    def h(src: Column, dst: Column, edge_type: Column) -> Column:
        return edge_hash(params.seed, src, dst, edge_type)

    def key(h: Column, weight: Column) -> Column:
        return log_key(h, weight, params.beta)

    # exploded, not transformed in place: Spark interprets lambda functions row by row, while
    # explode and the expressions after it are compiled
    e = F.col("e")
    sampled = (neighbors.select("node_id", F.explode(F.arrays_zip("nbr_ids", "nbr_types")).alias("e"))
               .select(h(F.col("node_id"), e["nbr_ids"], type_name(e["nbr_types"])).alias("h")))
    # one row per list, no shuffle: the last neighbour's key, null for a whole list
    last = key(h(F.col("node_id"), F.element_at("nbr_ids", -1), type_name(F.element_at("nbr_types", -1))),
               F.element_at("nbr_weights", -1))
    thresholds = neighbors.where(F.size("nbr_ids") > 0).select(
        F.col("node_id").alias("src"), F.when(F.size("nbr_ids") < F.col("degree"), last).alias("tau"))
    tau = F.col("tau")
    # OR evaluates its right side only where the left is false: no key for a whole list's edges
    selected = (edges.select("src", h(F.col("src"), F.col("dst"), F.col("edge_type")).alias("h"), "weight")
                .join(F.broadcast(thresholds), "src").where(tau.isNull() | (key(F.col("h"), F.col("weight")) >= tau)))

    def sums(df: DataFrame, h: Column, prefix: str) -> DataFrame:
        return df.agg(*counted_sums(h, prefix, F.lit(1).cast("long"), F.lit(True)))

    row_hash = F.xxhash64(F.col("node_id").cast("long"), F.col("degree").cast("long"))
    row = (sums(selected, F.col("h"), "e").crossJoin(sums(sampled, F.col("h"), "s"))
           .crossJoin(sums(nodes, row_hash, "g")).crossJoin(sums(neighbors, row_hash, "l")).first())
    assert row is not None  # global aggregates give one row
    r = row.asDict()
    proven = set()
    if same_multiset(r, "g", "l"):
        proven |= {MISSING_ROWS, UNKNOWN_ROWS, DUPLICATE_ROWS}
    if same_multiset(r, "e", "s"):
        proven.add(NOT_EDGES)
    return proven
