"""Rules of the graph stage's tables: gold.nodes, gold.edges, gold.graph_stats (etl.checks.rules).
"""
from __future__ import annotations

from typing import Optional, Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from etl.checks.hash_sums import chunk_sums, counted_sums, same_multiset, sums_equal
from etl.checks.rules import duplicate_keys, not_finite_positive, rows_rule
from etl.transforms.graph import SWING_EDGE_TYPE, NodeType, edge_type_codes
from schemas import Expectation
from schemas.tables import EDGES, GRAPH_STATS, NODES

# Relative tolerance for recomputed weights (doubles summed in a different order).
WEIGHT_RTOL = 1e-9


def node_rules() -> list[Expectation]:
    return [
        *NODES.expectations(),
        Expectation("ExpectCompoundColumnsToBeUnique", {"column_list": ["node_type", "raw_id"]}),
        rows_rule("node ids are dense: min 0, max = count - 1",
                  "(SELECT min(node_id) != 0 OR max(node_id) != count(*) - 1 FROM {batch})"),
        rows_rule("users come before items",
                  "node_type = 'item' AND node_id <= (SELECT max(node_id) FROM {batch} WHERE node_type = 'user')"),
        rows_rule("users have no domain, items have one", "(node_type = 'user') = (domain IS NOT NULL)"),
    ]


def edge_rules(labels: Sequence[str]) -> list[Expectation]:
    """gold.edges' rules on its own rows. The key's uniqueness is a join rule (DUPLICATE_EDGES) that
    proven_edge_rules usually proves without its shuffle."""
    return [
        *EDGES.expectations(key_rule=False),
        Expectation("ExpectColumnValuesToBeInSet", {"column": "edge_type", "value_set": list(edge_type_codes(labels))}),
        rows_rule("no self loops", "src = dst"),
        rows_rule("weights finite and > 0", not_finite_positive("weight")),
        rows_rule("swing weights in (0, 1]", f"edge_type = '{SWING_EDGE_TYPE}' AND weight > 1"),
    ]


def _typed(nodes: DataFrame, id_col: str, type_col: str, raw: Column) -> DataFrame:
    # broadcast: the nodes are few next to the edges, which then need no shuffle to meet them
    return F.broadcast(nodes.select(F.col("node_id").alias(id_col), F.col("node_type").alias(type_col),
                                    raw.alias("raw_" + id_col)))


def _ends(edges: DataFrame, nodes: DataFrame, raw: Optional[Column] = None) -> DataFrame:
    """The edges with each endpoint's node type and raw id, or `raw` of its node (null where the
    node is missing): src_type, raw_src, dst_type, raw_dst."""
    raw = F.col("raw_id") if raw is None else raw
    return (edges.join(_typed(nodes, "src", "src_type", raw), "src", "left")
            .join(_typed(nodes, "dst", "dst_type", raw), "dst", "left"))


def _id_hash(raw_id: Column) -> Column:
    """A raw id's hash, which the proof takes once per node rather than once per edge."""
    return F.xxhash64(raw_id)


_USER, _ITEM = NodeType.USER.value, NodeType.ITEM.value
MISSING_ENDS = "edge endpoints missing from gold.nodes"
WRONG_TYPES = "edges joining the wrong node types"
UNBACKED = "behaviour edges without pre-cutoff positives (leak) or with weight != log1p(count)"
ORPHANED = "users with pre-cutoff positives but no edge (orphaned)"
WRONG_DEGREE = "nodes whose degree differs from their out-edge count"
DUPLICATE_EDGES = f"edge keys ({', '.join(EDGES.key)}) held by more than one edge"
UNLISTED_SWING = "swing edges that are no silver.swing_i2i pair, or pairs without an edge"


def _is_behaviour() -> Column:
    return F.col("edge_type") != SWING_EDGE_TYPE


def _missing_ends() -> Column:
    """Over `_ends`' rows: an endpoint is not a node."""
    return F.col("src_type").isNull() | F.col("dst_type").isNull()


def _wrong_types() -> Column:
    """Over `_ends`' rows: a behaviour edge that does not join a user and an item, or a swing edge
    that does not join two items."""
    behaviour = _is_behaviour()
    src, dst = F.col("src_type"), F.col("dst_type")
    return ((behaviour & ~(((src == _USER) & (dst == _ITEM)) | ((src == _ITEM) & (dst == _USER))))
            | (~behaviour & ~((src == _ITEM) & (dst == _ITEM))))


def _edgeless_users(nodes: DataFrame) -> DataFrame:
    # users without an edge are few: broadcast, they meet the positive events as they stream by
    return F.broadcast(nodes.where((F.col("node_type") == _USER) & (F.col("degree") == 0))
                       .select("node_id", F.col("raw_id").alias("user_id")))


def edge_violations(edges: DataFrame, nodes: DataFrame, positive: DataFrame, swing: DataFrame) -> dict[str, DataFrame]:
    """Join rules of gold.edges against gold.nodes, the positive groups and silver.swing_i2i, as
    frames of violating rows.

    Args:
        positive: the pre-cutoff positive groups (user_id, item_id, edge_type, n) the edges were
            built from (etl.transforms.graph.positive_events of the stage's interactions).
        swing: silver.swing_i2i, whose pairs are the swing edges.
    """
    ends = _ends(edges, nodes)
    behaviour = _is_behaviour()
    # A behaviour edge must be backed by pre-cutoff positives of its type, with weight log1p(count).
    as_pairs = (ends.where(behaviour & (F.col("src_type") == _USER)).select(
        F.col("raw_src").alias("user_id"), F.col("raw_dst").alias("item_id"), "edge_type", "weight")
        .unionByName(ends.where(behaviour & (F.col("src_type") == _ITEM)).select(
            F.col("raw_dst").alias("user_id"), F.col("raw_src").alias("item_id"), "edge_type", "weight")))
    expected = F.log1p(F.col("n").cast("double"))
    unbacked = (as_pairs.join(positive, ["user_id", "item_id", "edge_type"], "left")
                .where(F.col("n").isNull() | (F.abs(F.col("weight") - expected) > WEIGHT_RTOL * expected)))
    out_deg = edges.groupBy(F.col("src").alias("node_id")).agg(F.count(F.lit(1)).alias("_out"))
    wrong_degree = (nodes.join(out_deg, "node_id", "left")
                    .where(F.col("degree") != F.coalesce("_out", F.lit(0))).select("node_id", "degree", "_out"))
    orphaned = (positive.join(_edgeless_users(nodes), "user_id")
                .select("node_id", F.col("user_id").alias("raw_id")).distinct())
    pairs = ["item_id", "neighbor_id"]
    swing_edges = ends.where(~behaviour).select(F.col("raw_src").alias("item_id"), F.col("raw_dst").alias("neighbor_id"),
                                                F.lit(True).alias("_edge"))
    unlisted = (swing_edges.join(swing.select(*pairs, F.lit(True).alias("_listed")), pairs, "full_outer")
                .where(F.col("_edge").isNull() | F.col("_listed").isNull()))
    return {
        MISSING_ENDS: ends.where(_missing_ends()),
        WRONG_TYPES: ends.where(_wrong_types()),
        UNBACKED: unbacked,
        WRONG_DEGREE: wrong_degree,
        ORPHANED: orphaned,
        DUPLICATE_EDGES: duplicate_keys(edges, EDGES.key),
        UNLISTED_SWING: unlisted,
    }


# A hash chunk (21 bits) times a count below 2^31 keeps each row's term far below a long's range;
# log1p(2^31) is 21.5, so an edge weighing more is left to the join.
_MAX_COUNT_WEIGHT = 21.0


def proven_edge_rules(edges: DataFrame, nodes: DataFrame, positive: DataFrame, swing: DataFrame) -> set[str]:
    """The rules of edge_violations shown empty by one aggregate query instead of their joins
    (Stage.check_empty's `proven`); a rule left out is not proven, and its join decides.

    The query streams the edges past the broadcast nodes and the positive groups past the broadcast
    edgeless users, with no shuffle. MISSING_ENDS, WRONG_TYPES and ORPHANED it counts exactly (rows
    of their frames). The others it proves by sums of 64-bit hashes (etl.checks.hash_sums), resting
    on gold.nodes' own rules, checked before (Stage.check_empty trusts a proof only while every
    check so far passed): node_id is unique, and so is (node_type, raw_id), so an edge's ends give
    one raw key and distinct edges of one direction give distinct raw keys.

    UNBACKED: let h(u, i, t) be a hash of the raw user id, item id and edge type. Every behaviour
    edge joining a user and an item, of weight w = log1p(n) for a whole n >= 1, adds h(u, i, t) * n
    to its direction's sum; every positive group (u, i, t, n) adds h(u, i, t) * n. Equal sums give,
    for every key, the edges' counts adding up to the group's count (0 for a key without a group),
    so every edge is backed and every group has an edge; as many edges in each direction as
    groups then leaves exactly one edge per group, of its count.

    UNLISTED_SWING: the swing edges' raw (src, dst) and silver.swing_i2i's (item_id, neighbor_id),
    equal in number and in hash sums, are the same multiset.

    DUPLICATE_EDGES follows from the two: one behaviour edge per positive group and direction, and
    the swing edges are the swing pairs, whose key is unique (silver.swing_i2i's own rule, checked
    by the swing stage).

    WRONG_DEGREE: the edges' sources, each edge adding the hash of its src, against the nodes, each
    adding the hash of its node_id times its degree; equal sums make the two multisets equal, so
    each node has as many out-edges as its degree says and no edge leaves an unknown node.

    Unequal multisets give equal sums only when their 64-bit hashes cancel, a chance of about 2^-63.
    """
    w = F.col("weight")
    behaviour = _is_behaviour()
    user_item = F.coalesce((F.col("src_type") == _USER) & (F.col("dst_type") == _ITEM), F.lit(False))
    item_user = F.coalesce((F.col("src_type") == _ITEM) & (F.col("dst_type") == _USER), F.lit(False))
    # rint, not round: Spark rounds a double through BigDecimal, which made this query 1.4x slower
    n = F.when(w.between(0.0, _MAX_COUNT_WEIGHT), F.rint(F.expm1(w))).cast("long")
    expected = F.log1p(n.cast("double"))
    weight_ok = F.coalesce((n >= 1) & (F.abs(w - expected) <= WEIGHT_RTOL * expected), F.lit(False))
    # per edge: the two counted rules; for a behaviour edge its direction (1: user -> item, 2: item
    # -> user), whether its weight is a count's, and the hash of its (user, item, type); for a
    # swing edge the hash of its raw pair; every edge's source node for the degrees. Hashes are
    # taken only where summed, and of the ends' id hashes (raw_src, raw_dst here), not their strings.
    hashed = _ends(edges, nodes, _id_hash(F.col("raw_id"))).select(
        _missing_ends().alias("missing"), _wrong_types().alias("wrong"), behaviour.alias("behaviour"),
        F.when(behaviour & user_item, 1).when(behaviour & item_user, 2).alias("direction"),
        n.alias("n"), weight_ok.alias("ok"),
        F.when(behaviour & user_item, F.xxhash64("raw_src", "raw_dst", "edge_type"))
         .when(behaviour & item_user, F.xxhash64("raw_dst", "raw_src", "edge_type")).alias("h"),
        F.when(~behaviour, F.xxhash64("raw_src", "raw_dst")).alias("hp"),
        F.xxhash64("src").alias("hs"))
    b, direction = F.col("behaviour"), F.col("direction")
    one = F.lit(1).cast("long")
    edge_side = hashed.agg(
        F.count_if("missing").alias("missing"), F.count_if("wrong").alias("wrong"),
        F.count_if(b & (direction.isNull() | ~F.col("ok"))).alias("unprovable"),
        *(s for d, code in (("ui", 1), ("iu", 2)) for s in counted_sums(F.col("h"), d, F.col("n"), direction == code)),
        *counted_sums(F.col("hp"), "sw", one, ~b),
        *chunk_sums(F.col("hs"), "out", one, F.lit(True)))
    group_side = positive.join(_edgeless_users(nodes), "user_id", "left").agg(
        F.count_if(F.col("node_id").isNotNull()).alias("orphans"),
        *counted_sums(F.xxhash64(_id_hash(F.col("user_id")), _id_hash(F.col("item_id")), F.col("edge_type")), "pos",
                       F.col("n"), F.lit(True)))
    pair_side = swing.agg(*counted_sums(F.xxhash64(_id_hash(F.col("item_id")), _id_hash(F.col("neighbor_id"))),
                                        "pairs", one, F.lit(True)))
    node_side = nodes.agg(*chunk_sums(F.xxhash64("node_id"), "deg", F.col("degree"), F.lit(True)))
    row = edge_side.crossJoin(group_side).crossJoin(pair_side).crossJoin(node_side).first()
    assert row is not None  # global aggregates give one row
    r = row.asDict()
    counted = {MISSING_ENDS: r["missing"], WRONG_TYPES: r["wrong"], ORPHANED: r["orphans"]}
    proven = {rule for rule, rows in counted.items() if rows == 0}
    # a null sum: no row to sum (the join is then cheap) or an overflow
    backed = r["unprovable"] == 0 and same_multiset(r, "pos", "ui") and same_multiset(r, "pos", "iu")
    listed = r["missing"] == 0 and same_multiset(r, "sw", "pairs")
    if backed:
        proven.add(UNBACKED)
    if listed:
        proven.add(UNLISTED_SWING)
    if backed and listed and r["wrong"] == 0:
        proven.add(DUPLICATE_EDGES)
    if sums_equal(r, "out", "deg"):
        proven.add(WRONG_DEGREE)
    return proven


def graph_stats_rules() -> list[Expectation]:
    return GRAPH_STATS.expectations()
