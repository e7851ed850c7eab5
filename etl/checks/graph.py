"""Rules of the graph stage's tables: gold.nodes, gold.edges, gold.graph_stats (etl.checks.rules).
"""
from __future__ import annotations

from datetime import date
from typing import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from etl.checks.rules import not_finite_positive, rows_rule
from etl.transforms.graph import SWING_EDGE_TYPE, NodeType, edge_type_codes, positive_events
from schemas import Expectation
from schemas.tables import EDGES, GRAPH_STATS, NODES

# Relative tolerance for recomputed weights (doubles summed in a different order).
WEIGHT_RTOL = 1e-9


def node_rules() -> list[Expectation]:
    return [
        *NODES.expectations(),
        rows_rule("node ids are dense: min 0, max = count - 1",
                  "(SELECT min(node_id) != 0 OR max(node_id) != count(*) - 1 FROM {batch})"),
        rows_rule("users come before items",
                  "node_type = 'item' AND node_id <= (SELECT max(node_id) FROM {batch} WHERE node_type = 'user')"),
        rows_rule("users have no domain, items have one", "(node_type = 'user') = (domain IS NOT NULL)"),
    ]


def edge_rules(labels: Sequence[str]) -> list[Expectation]:
    return [
        *EDGES.expectations(),
        Expectation("ExpectColumnValuesToBeInSet", {"column": "edge_type", "value_set": list(edge_type_codes(labels))}),
        rows_rule("no self loops", "src = dst"),
        rows_rule("weights finite and > 0", not_finite_positive("weight")),
        rows_rule("swing weights in (0, 1]", f"edge_type = '{SWING_EDGE_TYPE}' AND weight > 1"),
    ]


def _typed(nodes: DataFrame, id_col: str, type_col: str) -> DataFrame:
    return nodes.select(F.col("node_id").alias(id_col), F.col("node_type").alias(type_col), F.col("raw_id").alias(
        "raw_" + id_col))


def edge_violations(edges: DataFrame, nodes: DataFrame, interactions: DataFrame, labels: Sequence[str],
                    cutoff: date) -> dict[str, DataFrame]:
    """Join rules of gold.edges and gold.nodes, as frames of violating rows."""
    ends = (edges.join(_typed(nodes, "src", "src_type"), "src", "left")
            .join(_typed(nodes, "dst", "dst_type"), "dst", "left"))
    user, item = NodeType.USER.value, NodeType.ITEM.value
    behaviour = F.col("edge_type") != SWING_EDGE_TYPE
    wrong_types = (behaviour & ~(((F.col("src_type") == user) & (F.col("dst_type") == item))
                                 | ((F.col("src_type") == item) & (F.col("dst_type") == user)))) | \
                  (~behaviour & ~((F.col("src_type") == item) & (F.col("dst_type") == item)))
    # A behaviour edge must be backed by pre-cutoff positives of its type, with weight log1p(count).
    as_pairs = (ends.where(behaviour & (F.col("src_type") == user)).select(
        F.col("raw_src").alias("user_id"), F.col("raw_dst").alias("item_id"), "edge_type", "weight")
        .unionByName(ends.where(behaviour & (F.col("src_type") == item)).select(
            F.col("raw_dst").alias("user_id"), F.col("raw_src").alias("item_id"), "edge_type", "weight")))
    expected = F.log1p(F.col("n").cast("double"))
    unbacked = (as_pairs.join(positive_events(interactions, labels, cutoff), ["user_id", "item_id", "edge_type"], "left")
                .where(F.col("n").isNull() | (F.abs(F.col("weight") - expected) > WEIGHT_RTOL * expected)))
    out_deg = edges.groupBy(F.col("src").alias("node_id")).agg(F.count(F.lit(1)).alias("_out"))
    wrong_degree = (nodes.join(out_deg, "node_id", "left")
                    .where(F.col("degree") != F.coalesce("_out", F.lit(0))).select("node_id", "degree", "_out"))
    with_positives = positive_events(interactions, labels, cutoff).select(F.col("user_id").alias("raw_id")).distinct()
    orphaned = (nodes.where((F.col("node_type") == user) & (F.col("degree") == 0))
                .join(with_positives, "raw_id").select("node_id", "raw_id"))
    return {
        "edge endpoints missing from gold.nodes": ends.where(F.col("src_type").isNull() | F.col("dst_type").isNull()),
        "edges joining the wrong node types": ends.where(wrong_types),
        "behaviour edges without pre-cutoff positives (leak) or with weight != log1p(count)": unbacked,
        "nodes whose degree differs from their out-edge count": wrong_degree,
        "users with pre-cutoff positives but no edge (orphaned)": orphaned,
    }


def graph_stats_rules() -> list[Expectation]:
    return GRAPH_STATS.expectations()
