"""Every lake table grec writes. Layers: bronze (ingested), silver (derived), gold (graph and
training), quarantine (rejected rows), and the `_runs` manifest.

The interactions table carries one 0/1 column per configured task label and optional numeric
columns, so it is built by `interactions(labels, numeric)`; every other table is fixed.
"""
from __future__ import annotations

from typing import Sequence

from schemas.columns import Col, Kind
from schemas.split import EVAL, SPLITS, TRAIN, VAL
from schemas.table import TableSchema

# Timestamps before this are treated as implausible (a unit mistake or a zero default).
MIN_PLAUSIBLE_TS = "1990-01-01T00:00:00"

USER_ID = Col("user_id", Kind.STRING, "raw user key, as a string")
ITEM_ID = Col("item_id", Kind.STRING, "raw item key, as a string")
DOMAIN = Col("domain", Kind.STRING, "the item's domain / scenario")
FEATURES = Col("features", Kind.FLOAT_ARRAY,
               "encoded side features (fixed length per table; names in the table property grec.feature_names)")

INTERACTIONS_BASE: list[Col] = [
    USER_ID,
    ITEM_ID,
    Col("ts", Kind.TIMESTAMP, "event time (UTC)", min_value=MIN_PLAUSIBLE_TS),
    Col("date", Kind.DATE, "UTC date of ts; files are range-ordered by it"),
    DOMAIN,
]


def label_col(name: str) -> Col:
    return Col(name, Kind.INT, f"task label {name!r} (0/1)", values=[0, 1])


def numeric_col(name: str) -> Col:
    return Col(name, Kind.DOUBLE, f"numeric signal {name!r}", nullable=True)


def interactions(labels: Sequence[str], numeric: Sequence[str] = ()) -> TableSchema:
    """bronze.interactions for a given task list: one row per impression or interaction."""
    if not labels:
        raise ValueError("an interactions table needs at least one task label column")
    clash = set(labels) & ({c.name for c in INTERACTIONS_BASE} | set(numeric))
    if clash:
        raise ValueError(f"label names clash with other columns: {sorted(clash)}")
    return TableSchema(
        "bronze.interactions",
        [*INTERACTIONS_BASE, *(label_col(n) for n in labels), *(numeric_col(n) for n in numeric)],
        doc="one row per impression; labels are the configured tasks",
        cluster_by=("date",),
        key=("user_id", "item_id", "ts"),
    )


USERS = TableSchema(
    "bronze.users",
    [USER_ID, FEATURES],
    doc="one row per user with encoded side features",
    key=("user_id",), unique_key=True,
)

ITEMS = TableSchema(
    "bronze.items",
    [ITEM_ID, DOMAIN, FEATURES],
    doc="one row per item: its domain and encoded side features",
    key=("item_id",), unique_key=True,
)

QUARANTINE = TableSchema(
    "quarantine.interactions",
    [
        Col("run_id", Kind.STRING, "the run that rejected the row"),
        Col("source", Kind.STRING, "where the row came from (file or source name)"),
        Col("rule", Kind.STRING, "the first row-level rule the row broke"),
        Col("reason", Kind.STRING, "human-readable reason, naming column and expected value"),
        Col("record", Kind.STRING, "the row as it was read, JSON"),
    ],
    doc="rows rejected by ingest's row-level rules, with the reason",
    partition_by=("run_id",),
)

SWING_I2I = TableSchema(
    "silver.swing_i2i",
    [
        ITEM_ID,
        Col("neighbor_id", Kind.STRING, "the similar item"),
        Col("score", Kind.DOUBLE, "Swing similarity s(item, neighbor)", min_value=0.0, strict_min=True),
        Col("n_common_users", Kind.LONG, "|U_i ∩ U_j| after caps", min_value=2),
        Col("rank", Kind.INT, "1 = most similar (ties by neighbor_id)", min_value=1),
    ],
    doc="Swing item-item weights, top-k neighbours per item (docs/method.md §Swing)",
    key=("item_id", "neighbor_id"), unique_key=True,
)

NODES = TableSchema(
    "gold.nodes",
    [
        Col("node_id", Kind.LONG, "dense id: users 0..U-1, then items U..U+I-1", min_value=0),
        Col("node_type", Kind.STRING, "user or item", values=["user", "item"]),
        Col("raw_id", Kind.STRING, "the raw user_id or item_id"),
        Col("domain", Kind.STRING, "item domain; null for users", nullable=True),
        FEATURES,
        Col("degree", Kind.LONG, "out-edges of the node in the full graph (Swing edges may run one way only)", min_value=0),
    ],
    doc="the cross-domain graph's nodes (docs/method.md §Graph)",
    key=("node_id",), unique_key=True,
)

EDGES = TableSchema(
    "gold.edges",
    [
        Col("src", Kind.LONG, "source node_id", min_value=0),
        Col("dst", Kind.LONG, "destination node_id", min_value=0),
        Col("edge_type", Kind.STRING, "behaviour label (user-item) or 'swing' (item-item)"),
        Col("weight", Kind.DOUBLE, "log1p(count) for behaviour edges; s/max_s for swing", min_value=0.0,
            strict_min=True),
    ],
    doc="directed edges; every undirected relation is stored in both directions (docs/method.md §Graph)",
    key=("src", "dst", "edge_type"), unique_key=True,
)

NEIGHBORS = TableSchema(
    "gold.neighbors",
    [
        Col("node_id", Kind.LONG, "the node", min_value=0),
        Col("nbr_ids", Kind.LONG_ARRAY, "sampled neighbour node_ids, by descending key"),
        Col("nbr_weights", Kind.FLOAT_ARRAY, "their edge weights"),
        Col("nbr_types", Kind.INT_ARRAY, "their edge type codes (etl.transforms.graph.edge_type_codes; table property grec.edge_types)"),
        Col("degree", Kind.LONG, "deg(node) in the full graph", min_value=0),
    ],
    doc="importance-sampled 1-hop neighbour lists, p ∝ w^β, k per node (docs/method.md §Neighbours)",
    key=("node_id",), unique_key=True,
)

RUNS = TableSchema(
    "_runs",
    [
        Col("run_id", Kind.STRING, "run id"),
        Col("stage", Kind.STRING, "stage name"),
        Col("status", Kind.STRING, "running, succeeded or failed", values=["running", "succeeded", "failed"]),
        Col("config", Kind.STRING, "the stage's configuration, JSON"),
        Col("inputs", Kind.STRING, "JSON list of {table, version, rows} read"),
        Col("outputs", Kind.STRING, "JSON list of {table, version, rows} written"),
        Col("started_at", Kind.TIMESTAMP, "stage start (UTC)"),
        Col("finished_at", Kind.TIMESTAMP, "stage end (UTC)", nullable=True),
        Col("duration_s", Kind.DOUBLE, "wall time", nullable=True),
        Col("report", Kind.STRING, "path of the stage's check report", nullable=True),
        Col("message", Kind.STRING, "error summary when failed", nullable=True),
    ],
    doc="the run manifest: per run and stage, what was read and written at which Delta version",
    key=("run_id", "stage"), unique_key=True,
)


# Padding for the fixed-length neighbour arrays of gold.examples' arrays layout (Petastorm needs
# rectangular batches).
PAD_NODE = 0
PAD_TYPE = -1


def _nbr_cols(side: str) -> list[Col]:
    return [
        Col(f"{side}_nbr_ids", Kind.LONG_ARRAY, f"{side} node's sampled neighbours, padded to k with {PAD_NODE}"),
        Col(f"{side}_nbr_weights", Kind.FLOAT_ARRAY, "their edge weights; 0.0 on padding"),
        Col(f"{side}_nbr_types", Kind.INT_ARRAY, f"their edge type codes; {PAD_TYPE} on padding"),
        Col(f"{side}_nbr_count", Kind.INT, "number of real (unpadded) neighbours = min(k, degree)", min_value=0),
        Col(f"{side}_degree", Kind.LONG, f"{side} node's degree in the full graph", min_value=0),
    ]


def examples(labels: Sequence[str], neighbor_arrays: bool = False) -> TableSchema:
    """gold.examples for a given task list: one row per impression (docs/method.md §Examples).

    Slim rows (the default, neighbor_arrays=False) carry only the impression: both node ids, day,
    split, domain and labels. Node features and neighbour lists are not copied into every row: a
    trainer keeps gold.nodes and gold.neighbors (k per node, the table property grec.k) resident on
    the device and gathers them per example, so the rows stay a few dozen bytes instead of kilobytes
    and a resampled gold.neighbors needs no rewrite of the examples.

    With neighbor_arrays=True each row also carries both nodes' features and their 1-hop lists cut
    and padded to k (the row's self-contained 1-hop subgraph), for consumers that read rows alone.
    The table property grec.neighbor_arrays records which layout a version has.

    Only numeric and flat-array columns, so Petastorm streams every column the trainer needs.
    """
    features = [Col("user_features", Kind.FLOAT_ARRAY, "user side features"),
                Col("item_features", Kind.FLOAT_ARRAY, "item side features")] if neighbor_arrays else []
    return TableSchema(
        "gold.examples",
        [
            Col("user_node", Kind.LONG, "user node_id", min_value=0),
            Col("item_node", Kind.LONG, "item node_id", min_value=0),
            Col("day", Kind.INT, "event date as days since 1970-01-01 (UTC)"),
            Col("split", Kind.STRING, f"{TRAIN}, {VAL} or {EVAL} by day (see schemas.split)", values=list(SPLITS)),
            Col("domain_id", Kind.INT, "code of the domain the row was shown in (see the table property grec.domains)", min_value=0),
            *features,
            *(label_col(n) for n in labels),
            *(_nbr_cols("user") + _nbr_cols("item") if neighbor_arrays else []),
        ],
        doc=("training and evaluation examples with both nodes' sampled neighbour lists" if neighbor_arrays else
             "training and evaluation examples: one impression per row; neighbours come from gold.neighbors"),
        partition_by=("split",),
    )


GRAPH_STATS = TableSchema(
    "gold.graph_stats",
    [
        Col("metric", Kind.STRING, "nodes, edges, isolated_nodes, degree_min/mean/p50/p99/max, components, "
                                   "largest_component_size, singleton_components"),
        Col("dimension", Kind.STRING, "what the rows are grouped by", values=["all", "node_type", "domain", "edge_type"]),
        Col("group", Kind.STRING, "the group's value ('all' for dimension all)"),
        Col("value", Kind.DOUBLE, "the metric's value"),
    ],
    doc="graph statistics for reports: per node type, domain and edge type (etl.transforms.graph_algos)",
    key=("metric", "dimension", "group"), unique_key=True,
)


def macro_counts_col(label: str) -> Col:
    return Col(f"{label}_macro_counts", Kind.FLOAT_ARRAY,
               f"task {label!r} positive counts before the cutoff: for a user, its positives per item macro node "
               "(domain, length D, 1st order); for an item, its positives from each user macro node "
               "(cluster, length C, 2nd order)")


def macro(labels: Sequence[str]) -> TableSchema:
    """gold.macro for a given task list: one row per node with MGOE's macro-graph counts
    (docs/method.md §Macro).

    Users: macro_id = KMeans cluster (0..C-1); items: macro_id = domain code (0..D-1, the vocabulary
    of the table property grec.domains). C and D are the table properties grec.n_clusters and
    grec.n_domains. Counts are raw; softmax(log(1 + count) / tau) is the model's job.
    """
    return TableSchema(
        "gold.macro",
        [
            Col("node_id", Kind.LONG, "node_id (gold.nodes)", min_value=0),
            Col("node_type", Kind.STRING, "user or item", values=["user", "item"]),
            Col("macro_id", Kind.INT, "user: KMeans cluster; item: domain code", min_value=0),
            *(macro_counts_col(t) for t in labels),
        ],
        doc="MGOE macro-graph features per node: user clusters, item domains, per-task macro counts",
        key=("node_id",), unique_key=True,
    )
