"""The cross-domain heterogeneous graph (docs/method.md §Graph): dense node ids, typed user–item
edges, Swing item–item edges, and each node's degree.

    cutoff = split_cutoffs(interactions, SplitPolicy()).val_start   # etl.transforms.split
    index = index_nodes(interactions, users, items)               # node ids, types, domains, features
    positive = positive_events(interactions, labels=["like", "love"], cutoff=cutoff)
    edges = build_edges(positive, swing_i2i, index)
    nodes = build_nodes(index, edges)                              # + degree

Node ids: users first (0..U-1, ascending raw id), then items (U..U+I-1, ascending raw id). Every user
and item that appears in the interactions (any date) or in a side table is a node, so evaluation
examples always resolve to node ids; a node without pre-cutoff edges has degree 0. The cutoff is
the first non-training day (the validation start): validation and evaluation rows build no edge.

Edges are directed; every user–item relation is stored in both directions. Swing edges are taken as
stored in silver.swing_i2i (one row = one directed edge item -> neighbour; Swing stores both
directions of a symmetric score, but its per-item top-k can keep one side only). The degree of a
node is its number of out-edges (`src = node`), which for relations stored both ways is the number
of incident relations, and is exactly the population the neighbour sampler draws from.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import Enum
from typing import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from etl.sources.base import item_domains
from etl.transforms.graph_algos import out_degrees
from schemas.tables import EDGES, ITEMS, NODES, USERS

SWING_EDGE_TYPE = "swing"


class NodeType(str, Enum):
    USER = "user"
    ITEM = "item"


def edge_type_codes(labels: Sequence[str]) -> dict[str, int]:
    """edge_type -> int code, as gold.neighbors stores types: labels in configured order get
    0..L-1 and 'swing' gets L. Stable for a given label list; jobs record the list in code order as
    the table property `grec.edge_types`."""
    if not labels:
        raise ValueError("edge types need at least one task label")
    if SWING_EDGE_TYPE in labels or len(set(labels)) != len(labels):
        raise ValueError(f"task labels must be distinct and not {SWING_EDGE_TYPE!r}: {list(labels)}")
    return {**{t: i for i, t in enumerate(labels)}, SWING_EDGE_TYPE: len(labels)}


@dataclass(frozen=True)
class GraphParams:
    """Args:
        labels: task labels; each gives one explicit user–item edge type, named after it.
        cutoff: first non-training day (the validation start); only interactions with date < cutoff
            build edges.
    """

    labels: Sequence[str]
    cutoff: date


# ---- nodes ----------------------------------------------------------------------------------------
def feature_widths(users: DataFrame, items: DataFrame) -> tuple[int, int]:
    """The one length of `features` in each side table (0 for an empty table), in one Spark job."""
    def bounds(df: DataFrame, prefix: str) -> DataFrame:
        return df.agg(F.min(F.size("features")).alias(prefix + "lo"), F.max(F.size("features")).alias(prefix + "hi"))

    r = bounds(users, "u").crossJoin(bounds(items, "i")).first()
    assert r is not None  # a global aggregate gives one row, even of empty tables
    widths = []
    for prefix, table in (("u", USERS.name), ("i", ITEMS.name)):
        lo, hi = r[prefix + "lo"], r[prefix + "hi"]
        if lo != hi:
            raise ValueError(f"{table}.features must have one length for every row; found lengths {lo}..{hi}")
        widths.append(int(hi or 0))
    return widths[0], widths[1]


def dense_index(keys: DataFrame, order: Sequence[str], id_col: str, start: int = 0) -> DataFrame:
    """Number the distinct rows of `keys[order]` start, start+1, ... in ascending `order`.

    Avoids a global single-partition window: the keys are range-partitioned and sorted, a row's
    position in its partition comes from monotonically_increasing_id, and partition offsets from the
    (few) partition sizes. The ranged frame is checkpointed because range bounds come from sampling,
    and the positions and the sizes must see the same partitioning.
    """
    ranged = (keys.select(*order).distinct().repartitionByRange(*order).sortWithinPartitions(*order)
              .withColumn("_part", F.spark_partition_id())
              .withColumn("_pos", F.monotonically_increasing_id())
              .localCheckpoint())
    sizes = sorted((r["_part"], r["count"]) for r in ranged.groupBy("_part").count().collect())
    offsets, total = [], start
    for part, n in sizes:
        offsets.append((part, total))
        total += n
    offset_df = keys.sparkSession.createDataFrame(offsets, "_part int, _offset long")
    # monotonically_increasing_id = (partition index << 33) + position within the partition
    local_pos = F.col("_pos") - F.shiftleft(F.col("_part").cast("long"), 33)
    return ranged.join(F.broadcast(offset_df), "_part").select(*order, (F.col("_offset") + local_pos).alias(id_col))


def _zeros(width: int) -> Column:
    return F.array_repeat(F.lit(0.0).cast(T.FloatType()), width)


def _item_domains(interactions: DataFrame, items: DataFrame) -> DataFrame:
    """item_id -> domain: the items table's, else the item's most frequent domain in the
    interactions (ties: smallest domain), for items that only appear in the logs."""
    from_log = item_domains(interactions).withColumnRenamed("domain", "_log_domain")
    return (from_log.join(items.select("item_id", "domain"), "item_id", "full")
            .select("item_id", F.coalesce("domain", "_log_domain").alias("domain")))


def index_nodes(interactions: DataFrame, users: DataFrame, items: DataFrame) -> DataFrame:
    """gold.nodes without `degree`: node_id, node_type, raw_id, domain, features.

    Runs a few small Spark jobs (feature widths, the id numbering). Users and items without a
    side-table row get a zero feature vector of the side table's width.
    """
    user_w, item_w = feature_widths(users, items)
    typed_keys = (interactions.select(F.lit(0).alias("_t"), F.col("user_id").alias("raw_id"))
                  .union(users.select(F.lit(0), "user_id"))
                  .union(interactions.select(F.lit(1), "item_id"))
                  .union(items.select(F.lit(1), "item_id")))
    ids = dense_index(typed_keys, ["_t", "raw_id"], "node_id")   # users (_t = 0) sort first
    user_nodes = (ids.where("_t = 0").withColumnRenamed("raw_id", "user_id").join(users, "user_id", "left")
                  .select("node_id", F.lit(NodeType.USER.value).alias("node_type"),
                          F.col("user_id").alias("raw_id"), F.lit(None).cast("string").alias("domain"),
                          F.coalesce("features", _zeros(user_w)).alias("features")))
    item_nodes = (ids.where("_t = 1").withColumnRenamed("raw_id", "item_id")
                  .join(_item_domains(interactions, items), "item_id", "left")
                  .join(items.select("item_id", "features"), "item_id", "left")
                  .select("node_id", F.lit(NodeType.ITEM.value).alias("node_type"),
                          F.col("item_id").alias("raw_id"), "domain",
                          F.coalesce("features", _zeros(item_w)).alias("features")))
    return user_nodes.unionByName(item_nodes)


def build_nodes(index: DataFrame, edges: DataFrame) -> DataFrame:
    """gold.nodes: the node index plus degree = number of out-edges in gold.edges (0 if none)."""
    deg = out_degrees(edges).withColumnRenamed("id", "node_id")
    return (index.join(deg, "node_id", "left")
            .withColumn("degree", F.coalesce("degree", F.lit(0).cast("long")))
            .select(*NODES.names))


def node_ids(nodes: DataFrame, node_type: NodeType, raw_col: str, id_col: str) -> DataFrame:
    """raw id -> node_id for one node type, renamed for joining onto a raw-keyed table."""
    return (nodes.where(F.col("node_type") == node_type.value)
            .select(F.col("raw_id").alias(raw_col), F.col("node_id").alias(id_col)))


# ---- edges ----------------------------------------------------------------------------------------
def positive_events(interactions: DataFrame, labels: Sequence[str], cutoff: date) -> DataFrame:
    """(user_id, item_id, edge_type, n): pre-cutoff positive events per pair and label, n > 0."""
    counts = (interactions.where(F.col("date") < F.lit(cutoff))
              .groupBy("user_id", "item_id").agg(*(F.sum(t).cast("long").alias(t) for t in labels)))
    per_type = F.explode(F.array(*(F.struct(F.lit(t).alias("edge_type"), F.col(t).alias("n")) for t in labels)))
    return (counts.select("user_id", "item_id", per_type.alias("e"))
            .select("user_id", "item_id", "e.edge_type", "e.n").where(F.col("n") > 0))


def build_edges(positive: DataFrame, swing: DataFrame, nodes: DataFrame) -> DataFrame:
    """gold.edges: explicit user–item edges (weight log1p(#positive events of the label), both
    directions) from the positive groups (`positive_events`) and Swing item–item edges (weight
    s(i,j) / max_j s(i,j), as stored).

    Ids are resolved with left joins, so a raw id missing from `nodes` surfaces as a null endpoint
    that gold.edges' checks reject rather than a silently dropped edge.
    """
    users = node_ids(nodes, NodeType.USER, "user_id", "u")
    items = node_ids(nodes, NodeType.ITEM, "item_id", "i")
    explicit = (positive.join(users, "user_id", "left").join(items, "item_id", "left")
                .select("u", "i", "edge_type", F.log1p(F.col("n").cast("double")).alias("weight")))
    user_item = explicit.select(F.col("u").alias("src"), F.col("i").alias("dst"), "edge_type", "weight")
    item_user = explicit.select(F.col("i").alias("src"), F.col("u").alias("dst"), "edge_type", "weight")

    per_item_max = F.max("score").over(Window.partitionBy("item_id"))
    swing_edges = (swing.withColumn("weight", F.col("score") / per_item_max)
                   .join(items, "item_id", "left")
                   .join(items.select(F.col("item_id").alias("neighbor_id"), F.col("i").alias("j")),
                         "neighbor_id", "left")
                   .select(F.col("i").alias("src"), F.col("j").alias("dst"),
                           F.lit(SWING_EDGE_TYPE).alias("edge_type"), "weight"))
    return user_item.unionByName(item_user).unionByName(swing_edges).select(*EDGES.names)


@dataclass(frozen=True)
class Graph:
    """gold.nodes and gold.edges, and the positive groups the behaviour edges were built from (the
    graph checks compare the edges with them: etl.checks.graph)."""

    nodes: DataFrame
    edges: DataFrame
    positive: DataFrame


def build_graph(interactions: DataFrame, users: DataFrame, items: DataFrame, swing: DataFrame,
                params: GraphParams) -> Graph:
    """gold.nodes and gold.edges in one call.

    The node index is checkpointed: edges and nodes read it four times over.
    """
    edge_type_codes(params.labels)  # validates the label list
    index = index_nodes(interactions, users, items).localCheckpoint()
    positive = positive_events(interactions, params.labels, params.cutoff)
    edges = build_edges(positive, swing, index)
    return Graph(build_nodes(index, edges), edges, positive)
