"""Rules of gold.neighbors (etl.checks.rules).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from etl.checks.hash_sums import chunk_sums, sums_equal
from etl.checks.rules import rows_rule
from schemas import Expectation
from schemas.tables import NEIGHBORS

NOT_EDGES = "sampled neighbours that are not edges of the node"
# The proof of NOT_EDGES broadcasts the sampled (node, neighbour, type) keys, a long each; past this
# many it is not tried (a broadcast that size would strain the driver) and the join decides.
MAX_PROOF_KEYS = 50_000_000


def neighbor_rules(k: int, n_types: int) -> list[Expectation]:
    return [
        *NEIGHBORS.expectations(),
        rows_rule(f"arrays aligned, of length min({k}, degree)",
                  f"size(nbr_ids) != least({k}, degree) OR size(nbr_weights) != size(nbr_ids) "
                  "OR size(nbr_types) != size(nbr_ids)"),
        rows_rule(f"type codes in 0..{n_types - 1}", f"exists(nbr_types, t -> t < 0 OR t >= {n_types})"),
        rows_rule("weights finite and > 0",
                  "exists(nbr_weights, w -> isnan(w) OR w <= 0 OR w = CAST('Infinity' AS FLOAT))"),
        rows_rule("no node is its own neighbour", "array_contains(nbr_ids, node_id)"),
    ]


@dataclass(frozen=True)
class _Keys:
    """The (src, dst, t) triples sampled from gold.neighbors and those of gold.edges, keyed by one
    long: (src * N + dst) * T + t for node ids below N and codes below T, which is one to one on that
    range (a shuffle join on one long key took half the time of one on the three columns, 12M
    edges). A triple outside the range gets a null key: gold.nodes has no such node or code."""

    sampled: DataFrame
    known: DataFrame
    n: int
    n_types: int

    @classmethod
    def of(cls, neighbors: DataFrame, nodes: DataFrame, edges: DataFrame, type_codes: Mapping[str, int]) -> "_Keys":
        codes = edges.sparkSession.createDataFrame(sorted(type_codes.items()), "edge_type string, t int")
        sampled = neighbors.select("node_id", F.explode(F.arrays_zip("nbr_ids", "nbr_types")).alias("n")).select(
            F.col("node_id").alias("src"), F.col("n.nbr_ids").alias("dst"), F.col("n.nbr_types").alias("t"))
        top = nodes.agg(F.max("node_id")).first()
        assert top is not None  # a global aggregate has one row
        n = (top[0] if top[0] is not None else -1) + 1
        return cls(sampled, edges.join(F.broadcast(codes), "edge_type").select("src", "dst", "t"), n, len(type_codes))

    @property
    def fits(self) -> bool:
        """Whether every in-range triple has a long key (N * N * T below 2^62)."""
        return self.n * self.n * max(self.n_types, 1) < 2 ** 62

    def key(self) -> Column:
        src, dst, t = F.col("src"), F.col("dst"), F.col("t")
        inside = src.between(0, self.n - 1) & dst.between(0, self.n - 1) & t.between(0, self.n_types - 1)
        return F.when(inside, (src * self.n + dst) * self.n_types + t)


def neighbor_violations(neighbors: DataFrame, nodes: DataFrame, edges: DataFrame,
                        type_codes: Mapping[str, int]) -> dict[str, DataFrame]:
    """Join rules of gold.neighbors against gold.nodes and gold.edges."""
    keys = _Keys.of(neighbors, nodes, edges, type_codes)
    return {
        "nodes without a neighbour row, or with another degree": nodes.select("node_id", "degree").join(
            neighbors.select("node_id", "degree"), ["node_id", "degree"], "left_anti"),
        "neighbour rows of unknown nodes": neighbors.join(nodes.select("node_id"), "node_id", "left_anti"),
        NOT_EDGES: _not_among(keys),
    }


def _not_among(keys: _Keys) -> DataFrame:
    """The sampled (src, dst, t) rows that are not rows of the known edges. A sampled row without a
    key is kept as a violation; where N * N * T would not fit in a long, the three columns are joined."""
    if not keys.fits:
        return keys.sampled.join(keys.known, ["src", "dst", "t"], "left_anti")
    return (keys.sampled.withColumn("_key", keys.key())
            .join(keys.known.select(keys.key().alias("_key")), "_key", "left_anti").drop("_key"))


def sampled_edges_proven(neighbors: DataFrame, nodes: DataFrame, edges: DataFrame,
                         type_codes: Mapping[str, int], max_keys: int = MAX_PROOF_KEYS) -> bool:
    """Whether the rule NOT_EDGES is proven to hold without its shuffle join, by one query.

    Let S be the multiset of sampled keys and E that of the edges' keys. The edges stream past a
    broadcast of S (no shuffle), and each edge whose key is in S adds h(key), a 64-bit hash, to one
    sum; each sampled key adds h(key) to another (etl.checks.hash_sums). When every sampled triple
    has a key and the sums are equal, every key of S has as many edges as samples, at least one
    each, unless 64-bit hashes cancel; a sample that is no edge, a key sampled twice or an edge
    stored twice makes the sums differ. So the proof rests on no other rule. False means not
    proven (the join then decides): so does a sample too large to broadcast (`max_keys`).
    """
    return _proven(_Keys.of(neighbors, nodes, edges, type_codes), max_keys)


def _proven(keys: _Keys, max_keys: int) -> bool:
    if not keys.fits:
        return False
    sampled = keys.sampled.select(keys.key().alias("_key"))
    h = F.xxhash64("_key")
    sample_side = sampled.agg(F.count(F.lit(1)).alias("samples"),
                              F.count_if(F.col("_key").isNull()).alias("unkeyed"), *chunk_sums(h, "s"))
    found = keys.known.select(keys.key().alias("_key")).join(
        F.broadcast(sampled.where(F.col("_key").isNotNull())), "_key", "left_semi")
    edge_side = found.agg(*chunk_sums(h, "e"))
    counts = sample_side.first()
    assert counts is not None  # a global aggregate has one row
    if counts["unkeyed"] or counts["samples"] > max_keys:
        return False
    if counts["samples"] == 0:
        return True
    row = edge_side.first()
    assert row is not None
    return sums_equal({**counts.asDict(), **row.asDict()}, "s", "e")


def proven_neighbor_rules(neighbors: DataFrame, nodes: DataFrame, edges: DataFrame,
                          type_codes: Mapping[str, int]) -> set[str]:
    """The rules of neighbor_violations shown empty without their joins (Stage.check_empty's `proven`)."""
    return {NOT_EDGES} if sampled_edges_proven(neighbors, nodes, edges, type_codes) else set()
