"""Rules of the graph stage's tables: gold.nodes, gold.edges, gold.graph_stats (etl.checks.rules).
"""
from __future__ import annotations

from datetime import date
from typing import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from etl.checks.hash_sums import CHUNKS, chunk_sums, chunks, sums_equal
from etl.checks.rules import not_finite_positive, rows_rule
from etl.transforms.graph import SWING_EDGE_TYPE, NodeType, edge_type_codes, positive_events
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
    return [
        *EDGES.expectations(),
        Expectation("ExpectColumnValuesToBeInSet", {"column": "edge_type", "value_set": list(edge_type_codes(labels))}),
        rows_rule("no self loops", "src = dst"),
        rows_rule("weights finite and > 0", not_finite_positive("weight")),
        rows_rule("swing weights in (0, 1]", f"edge_type = '{SWING_EDGE_TYPE}' AND weight > 1"),
    ]


def _typed(nodes: DataFrame, id_col: str, type_col: str) -> DataFrame:
    # broadcast: the nodes are few next to the edges, which then need no shuffle to meet them
    return F.broadcast(nodes.select(F.col("node_id").alias(id_col), F.col("node_type").alias(type_col),
                                    F.col("raw_id").alias("raw_" + id_col)))


def _ends(edges: DataFrame, nodes: DataFrame) -> DataFrame:
    """The edges with each endpoint's node type and raw id (null where the node is missing)."""
    return (edges.join(_typed(nodes, "src", "src_type"), "src", "left")
            .join(_typed(nodes, "dst", "dst_type"), "dst", "left"))


_USER, _ITEM = NodeType.USER.value, NodeType.ITEM.value
MISSING_ENDS = "edge endpoints missing from gold.nodes"
WRONG_TYPES = "edges joining the wrong node types"
UNBACKED = "behaviour edges without pre-cutoff positives (leak) or with weight != log1p(count)"
ORPHANED = "users with pre-cutoff positives but no edge (orphaned)"
WRONG_DEGREE = "nodes whose degree differs from their out-edge count"


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


def edge_violations(edges: DataFrame, nodes: DataFrame, interactions: DataFrame, labels: Sequence[str],
                    cutoff: date) -> dict[str, DataFrame]:
    """Join rules of gold.edges and gold.nodes, as frames of violating rows."""
    ends = _ends(edges, nodes)
    behaviour = _is_behaviour()
    # A behaviour edge must be backed by pre-cutoff positives of its type, with weight log1p(count).
    as_pairs = (ends.where(behaviour & (F.col("src_type") == _USER)).select(
        F.col("raw_src").alias("user_id"), F.col("raw_dst").alias("item_id"), "edge_type", "weight")
        .unionByName(ends.where(behaviour & (F.col("src_type") == _ITEM)).select(
            F.col("raw_dst").alias("user_id"), F.col("raw_src").alias("item_id"), "edge_type", "weight")))
    expected = F.log1p(F.col("n").cast("double"))
    unbacked = (as_pairs.join(positive_events(interactions, labels, cutoff), ["user_id", "item_id", "edge_type"], "left")
                .where(F.col("n").isNull() | (F.abs(F.col("weight") - expected) > WEIGHT_RTOL * expected)))
    out_deg = edges.groupBy(F.col("src").alias("node_id")).agg(F.count(F.lit(1)).alias("_out"))
    wrong_degree = (nodes.join(out_deg, "node_id", "left")
                    .where(F.col("degree") != F.coalesce("_out", F.lit(0))).select("node_id", "degree", "_out"))
    orphaned = (_pre_cutoff_positives(interactions, labels, cutoff).join(_edgeless_users(nodes), "user_id")
                .select("node_id", F.col("user_id").alias("raw_id")).distinct())
    return {
        MISSING_ENDS: ends.where(_missing_ends()),
        WRONG_TYPES: ends.where(_wrong_types()),
        UNBACKED: unbacked,
        WRONG_DEGREE: wrong_degree,
        ORPHANED: orphaned,
    }


def _any_positive(labels: Sequence[str]) -> Column:
    """An event that backs edges (those positive_events counts), when before the cutoff: some label > 0."""
    positive = F.lit(False)
    for t in labels:
        positive = positive | (F.col(t) > 0)
    return positive


def _pre_cutoff_positives(interactions: DataFrame, labels: Sequence[str], cutoff: date) -> DataFrame:
    return interactions.where((F.col("date") < F.lit(cutoff)) & _any_positive(labels))


# A hash chunk (21 bits) times a count below 2^31 keeps each row's term far below a long's range;
# log1p(2^31) is 21.5, so an edge weighing more is left to the join.
_MAX_COUNT_WEIGHT = 21.0


def proven_edge_rules(edges: DataFrame, nodes: DataFrame, interactions: DataFrame, labels: Sequence[str],
                      cutoff: date) -> set[str]:
    """The rules of edge_violations shown empty by one aggregate query instead of their joins
    (Stage.check_empty's `proven`): of MISSING_ENDS, WRONG_TYPES, ORPHANED, UNBACKED and
    WRONG_DEGREE, those that hold.

    The query streams the edges past the broadcast nodes and the pre-cutoff events past the
    broadcast edgeless users, with no shuffle. The first three rules it counts exactly (rows of
    their frames). UNBACKED it proves by hash sums (etl.checks.hash_sums): let h(u, i, t) be a
    64-bit hash of the raw user id, item id and edge type. Every behaviour edge whose endpoints are
    a user and an item, of weight w = log1p(n) for a whole n >= 1, adds h(u, i, t) * n to its
    direction's sum; every pre-cutoff event adds h(u, i, t) * label_t for each label t, which over
    all events is the sum over positive_events of h * n. When no behaviour edge breaks the premises
    and both directions' sums equal the events', each direction's edges carry exactly the positive
    (u, i, t) groups with their counts, so no edge is unbacked or mis-weighted, unless 64-bit hashes
    cancel, or two edges share one (u, i, t): the uniqueness rules of gold.edges' key and of
    gold.nodes' (node_type, raw_id), checked before, rule that out (Stage.check_empty trusts a
    proof only while every check so far passed). WRONG_DEGREE is proven the same way: the edges'
    sources, each edge adding the hash of its src, against the nodes, each adding the hash of its
    node_id times its degree; equal sums make the two multisets equal, so each node has as many
    out-edges as its degree says and no edge leaves an unknown node. A rule left out is not proven:
    its join decides.
    """
    w = F.col("weight")
    user_item = F.coalesce((F.col("src_type") == _USER) & (F.col("dst_type") == _ITEM), F.lit(False))
    item_user = F.coalesce((F.col("src_type") == _ITEM) & (F.col("dst_type") == _USER), F.lit(False))
    # per edge: the two counted rules, and for a behaviour edge its direction, its (user, item)
    # pair and the count its weight stands for; every edge's source node for the degrees
    ends = _ends(edges, nodes).select(
        _missing_ends().alias("missing"), _wrong_types().alias("wrong"), _is_behaviour().alias("behaviour"),
        F.when(user_item, "ui").when(item_user, "iu").alias("direction"),
        F.when(user_item, F.col("raw_src")).otherwise(F.col("raw_dst")).alias("user_id"),
        F.when(user_item, F.col("raw_dst")).otherwise(F.col("raw_src")).alias("item_id"),
        "edge_type", w, F.when(w.between(0.0, _MAX_COUNT_WEIGHT), F.round(F.expm1(w))).cast("long").alias("n"),
        "src")
    expected = F.log1p(F.col("n").cast("double"))
    weight_ok = F.coalesce((F.col("n") >= 1) & (F.abs(w - expected) <= WEIGHT_RTOL * expected), F.lit(False))
    hashed = ends.select("missing", "wrong", "behaviour", "direction", "n", weight_ok.alias("ok"),
                         _key_hash(F.xxhash64("user_id", "item_id"), F.col("edge_type")).alias("h"),
                         F.xxhash64("src").alias("hs"))
    b = F.col("behaviour")
    one = F.lit(1).cast("long")
    edge_side = hashed.agg(
        F.count_if("missing").alias("missing"), F.count_if("wrong").alias("wrong"),
        F.count_if(b & (F.col("direction").isNull() | ~F.col("ok"))).alias("unprovable"),
        *(s for d in ("ui", "iu") for s in chunk_sums(F.col("h"), d, F.col("n"), b & (F.col("direction") == d))),
        *chunk_sums(F.col("hs"), "out", one, F.lit(True)))
    node_side = nodes.agg(*chunk_sums(F.xxhash64("node_id"), "deg", F.col("degree"), F.lit(True)))
    pair = F.xxhash64("user_id", "item_id").alias("pair")
    events = (interactions.where(F.col("date") < F.lit(cutoff)).join(_edgeless_users(nodes), "user_id", "left")
              .select(pair, (_any_positive(labels) & F.col("node_id").isNotNull()).alias("orphan"),
                      *(F.coalesce(F.col(t).cast("long"), F.lit(0).cast("long")).alias(t) for t in labels)))
    per_label = events.select("orphan", *(F.struct(*(c.alias(f"c{k}") for k, c in enumerate(
        chunks(_key_hash(F.col("pair"), F.lit(t))))), F.col(t).alias("n")).alias(t) for t in labels))
    event_side = per_label.agg(F.count_if("orphan").alias("orphans"), *(
        F.try_sum(sum((F.col(f"{t}.c{k}") * F.col(f"{t}.n") for t in labels), F.lit(0).cast("long"))).alias(f"ev{k}")
        for k in range(CHUNKS)))
    row = edge_side.crossJoin(event_side).crossJoin(node_side).first()
    assert row is not None  # two global aggregates give one row
    r = row.asDict()
    counted = {MISSING_ENDS: r["missing"], WRONG_TYPES: r["wrong"], ORPHANED: r["orphans"]}
    proven = {rule for rule, rows in counted.items() if rows == 0}
    # a null sum: no row to sum (the join is then cheap) or an overflow
    if r["unprovable"] == 0 and sums_equal(r, "ev", "ui", "iu"):
        proven.add(UNBACKED)
    if sums_equal(r, "out", "deg"):
        proven.add(WRONG_DEGREE)
    return proven


def _key_hash(pair: Column, edge_type: Column) -> Column:
    """h(u, i, t) from the pair's hash: the ids' strings are hashed once per row, not once per label."""
    return F.xxhash64(pair, edge_type)


def graph_stats_rules() -> list[Expectation]:
    return GRAPH_STATS.expectations()
