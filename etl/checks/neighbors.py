"""Rules of gold.neighbors (etl.checks.rules).
"""
from __future__ import annotations

from typing import Mapping

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from etl.checks.rules import rows_rule
from schemas import Expectation
from schemas.tables import NEIGHBORS


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


def neighbor_violations(neighbors: DataFrame, nodes: DataFrame, edges: DataFrame,
                        type_codes: Mapping[str, int]) -> dict[str, DataFrame]:
    """Join rules of gold.neighbors against gold.nodes and gold.edges."""
    codes = edges.sparkSession.createDataFrame(sorted(type_codes.items()), "edge_type string, t int")
    sampled = neighbors.select("node_id", F.explode(F.arrays_zip("nbr_ids", "nbr_types")).alias("n")).select(
        F.col("node_id").alias("src"), F.col("n.nbr_ids").alias("dst"), F.col("n.nbr_types").alias("t"))
    known = edges.join(F.broadcast(codes), "edge_type").select("src", "dst", "t")
    return {
        "nodes without a neighbour row, or with another degree": nodes.select("node_id", "degree").join(
            neighbors.select("node_id", "degree"), ["node_id", "degree"], "left_anti"),
        "neighbour rows of unknown nodes": neighbors.join(nodes.select("node_id"), "node_id", "left_anti"),
        "sampled neighbours that are not edges of the node": sampled.join(known, ["src", "dst", "t"], "left_anti"),
    }
