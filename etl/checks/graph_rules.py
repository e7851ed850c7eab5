"""Quality rules for the graph stages' tables (gold.nodes, gold.edges, gold.neighbors,
gold.examples, gold.macro) beyond the column-level ones their schemas give.

Two kinds:
- `*_rules(...)`: Expectations validated on the table itself (schema rules + row rules written as
  GX UnexpectedRowsExpectation queries over `{batch}`);
- `*_violations(...)`: key rules that need another table, computed here as a Spark join that yields
  the violating rows; a job validates each such frame with `MUST_BE_EMPTY`, so the report shows the
  count and sample rows of every broken rule.
"""
from __future__ import annotations

from datetime import date
from typing import Mapping, Optional, Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from etl.transforms.graph import SWING_EDGE_TYPE, NodeType, edge_type_codes, positive_events
from etl.transforms.split import SplitCutoffs
from schemas import Expectation
from schemas.split import EVAL, TRAIN, VAL
from schemas.tables import EDGES, GRAPH_STATS, NEIGHBORS, NODES, PAD_TYPE, examples, macro, macro_counts_col

# Relative tolerance for recomputed weights (doubles summed in a different order).
WEIGHT_RTOL = 1e-9


def rows_rule(description: str, where: str) -> Expectation:
    """Rows of the table matching `where` are violations."""
    return Expectation("UnexpectedRowsExpectation", {
        "description": description, "unexpected_rows_query": f"SELECT * FROM {{batch}} WHERE {where}"})


def must_be_empty(description: str) -> list[Expectation]:
    """The suite for a frame of violating rows: any row fails it."""
    return [Expectation("UnexpectedRowsExpectation", {
        "description": description, "unexpected_rows_query": "SELECT * FROM {batch}"})]


def _not_finite_positive(x: str) -> str:
    # NaN compares greater than every number in Spark SQL, so test it explicitly.
    return f"(isnan({x}) OR {x} <= 0 OR {x} = CAST('Infinity' AS DOUBLE))"


# ---- gold.nodes / gold.edges ----------------------------------------------------------------------
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
        rows_rule("weights finite and > 0", _not_finite_positive("weight")),
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


# ---- gold.neighbors -------------------------------------------------------------------------------
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


# ---- gold.examples --------------------------------------------------------------------------------
def example_rules(labels: Sequence[str], k: int, cutoffs: SplitCutoffs, n_domains: int,
                  n_impressions: Optional[int] = None, neighbor_arrays: bool = False) -> list[Expectation]:
    """Rules of gold.examples in the given layout: the neighbour-array rules (and the schema's rules
    on the array and feature columns) only when the rows carry them."""
    val_day, eval_day = ((d - date(1970, 1, 1)).days for d in (cutoffs.val_start, cutoffs.eval_start))
    rules = [*examples(labels, neighbor_arrays).expectations(),
             rows_rule(f"split = {TRAIN} before day {val_day} ({cutoffs.val_start}), {VAL} before day {eval_day} "
                       f"({cutoffs.eval_start}), {EVAL} from it on",
                       f"split != CASE WHEN day < {val_day} THEN '{TRAIN}' WHEN day < {eval_day} THEN '{VAL}' "
                       f"ELSE '{EVAL}' END"),
             rows_rule(f"domain_id in 0..{n_domains - 1}", f"domain_id >= {n_domains}")]
    for side in ("user", "item") if neighbor_arrays else ():
        rules += [
            rows_rule(f"{side} arrays of length {k}",
                      f"size({side}_nbr_ids) != {k} OR size({side}_nbr_weights) != {k} OR size({side}_nbr_types) != {k}"),
            rows_rule(f"{side}_nbr_count = min({k}, {side}_degree)", f"{side}_nbr_count != least({k}, {side}_degree)"),
            rows_rule(f"{side} padding after {side}_nbr_count",
                      f"exists(slice({side}_nbr_types, {side}_nbr_count + 1, {k}), t -> t != {PAD_TYPE}) "
                      f"OR exists(slice({side}_nbr_types, 1, {side}_nbr_count), t -> t = {PAD_TYPE})"),
        ]
    if n_impressions is not None:
        rules.append(Expectation("ExpectTableRowCountToEqual", {"value": n_impressions}))
    return rules


def example_violations(examples_df: DataFrame, nodes: DataFrame) -> dict[str, DataFrame]:
    def typed(t: NodeType, col: str) -> DataFrame:
        return nodes.where(F.col("node_type") == t.value).select(F.col("node_id").alias(col))

    return {
        "examples whose user_node is not a user node": examples_df.join(typed(NodeType.USER, "user_node"),
                                                                        "user_node", "left_anti"),
        "examples whose item_node is not an item node": examples_df.join(typed(NodeType.ITEM, "item_node"),
                                                                         "item_node", "left_anti"),
    }


# ---- gold.macro -----------------------------------------------------------------------------------
def macro_rules(labels: Sequence[str], n_domains: int, n_clusters: int) -> list[Expectation]:
    schema = macro(labels)
    rules = [*schema.expectations(),
             rows_rule(f"user macro_id < {n_clusters}, item macro_id < {n_domains}",
                       f"(node_type = 'user' AND macro_id >= {n_clusters}) OR "
                       f"(node_type = 'item' AND macro_id >= {n_domains})")]
    for c in (macro_counts_col(t).name for t in labels):
        rules += [
            rows_rule(f"{c}: length {n_domains} for users, {n_clusters} for items",
                      f"size({c}) != CASE node_type WHEN 'user' THEN {n_domains} ELSE {n_clusters} END"),
            rows_rule(f"{c}: counts >= 0", f"exists({c}, x -> isnan(x) OR x < 0)"),
        ]
    return rules


def macro_violations(macro_df: DataFrame, nodes: DataFrame) -> dict[str, DataFrame]:
    key = ["node_id", "node_type"]
    return {
        "nodes without a macro row of their type": nodes.select(*key).join(macro_df.select(*key), key, "left_anti"),
        "macro rows of unknown nodes": macro_df.select(*key).join(nodes.select(*key), key, "left_anti"),
    }
