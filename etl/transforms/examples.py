"""Training and evaluation examples (SPEC §5): one row per impression, as flat numeric columns that
Petastorm can stream.

    domains = domain_vocabulary(interactions, items)
    ex = build_examples(interactions, nodes, neighbors, ExampleParams(labels, cutoffs, domains, k=100))

By default rows are slim: node ids, day, split, domain and labels only; the trainer gathers node
features and neighbour lists from gold.nodes and gold.neighbors (cut to k) itself. With
`neighbor_arrays=True` each row also carries both nodes' features and 1-hop lists cut and padded to
k (schemas.tables.examples(labels, neighbor_arrays=True)).

`domain_id` codes the impression's `domain` column (the item's domain or the scenario it was shown
in, SPEC §1) by its position in the sorted vocabulary; jobs record the vocabulary as the table
property `grec.domains`. `split` is "train", "val" or "eval" by the row's date
(etl.transforms.split.split_column with the graph's cutoffs).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from etl.transforms.graph import NodeType
from etl.transforms.split import SplitCutoffs, split_column
from schemas.tables import PAD_NODE, PAD_TYPE, examples


@dataclass(frozen=True)
class ParquetLayout:
    """How gold.examples is laid out in Parquet. Petastorm yields one row group per read, so the
    row-group size bounds reader memory (the trainer re-batches to its batch size). Slim rows
    (the default) are a few dozen bytes, so a 32 MiB group holds on the order of a million rows;
    with neighbour arrays and k = 100 a row holds ~3.4 KB of them, so 32 MiB groups carry ~10k rows.

    Delta ignores `parquet.block.size` as a writer option; it must be set in the session's Hadoop
    configuration for the write (etl.jobs.examples.parquet_layout does that), while
    `spark.sql.files.maxRecordsPerFile` is an ordinary SQL conf.
    """

    row_group_bytes: int = 32 * 1024 * 1024
    max_records_per_file: int = 1_000_000

    def hadoop_conf(self) -> dict[str, str]:
        return {"parquet.block.size": str(self.row_group_bytes)}

    def sql_conf(self) -> dict[str, str]:
        return {"spark.sql.files.maxRecordsPerFile": str(self.max_records_per_file)}


def domain_vocabulary(interactions: DataFrame, items: DataFrame) -> list[str]:
    """Sorted distinct domains of the interactions and the items table (a small closed set)."""
    both = interactions.select("domain").union(items.select("domain")).distinct()
    return sorted(r["domain"] for r in both.collect())


def domain_code(domains: Sequence[str], col: str = "domain") -> Column:
    """The int code of `col` in `domains` (null for an unknown domain, which the checks reject)."""
    return F.element_at(F.create_map(*(x for i, d in enumerate(domains) for x in (F.lit(d), F.lit(i)))), F.col(col))


@dataclass(frozen=True)
class ExampleParams:
    """Args:
        labels: task label columns, copied to each example.
        cutoffs: the validation and evaluation starts (etl.transforms.split.split_cutoffs).
        domains: domain vocabulary, sorted (domain_vocabulary); a domain's code is its position.
        k: neighbour list length; lists are cut to k and padded to k. Must not exceed the k the
            neighbour lists were sampled with (the first k of a sample by descending key are a
            sample of k). Slim rows carry no lists; the job records k for the trainer's cut.
        neighbor_arrays: copy both nodes' features and neighbour lists into each row (default
            False: slim rows, see the module docstring).
    """

    labels: Sequence[str]
    cutoffs: SplitCutoffs
    domains: Sequence[str]
    k: int = 100
    neighbor_arrays: bool = False

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        if not self.domains or list(self.domains) != sorted(set(self.domains)):
            raise ValueError(f"domains must be non-empty, sorted and distinct: {list(self.domains)}")


def padded_neighbors(neighbors: DataFrame, side: str, k: int) -> DataFrame:
    """Neighbour lists renamed for one side of an example, cut to k and padded to k."""
    def fit(col: str, pad: Column) -> Column:
        head = F.slice(col, 1, k)
        return F.concat(head, F.array_repeat(pad, F.lit(k) - F.size(head)))

    return neighbors.select(
        F.col("node_id").alias(f"{side}_node"),
        fit("nbr_ids", F.lit(PAD_NODE).cast("long")).alias(f"{side}_nbr_ids"),
        fit("nbr_weights", F.lit(0.0).cast("float")).alias(f"{side}_nbr_weights"),
        fit("nbr_types", F.lit(PAD_TYPE).cast("int")).alias(f"{side}_nbr_types"),
        F.least(F.size("nbr_ids"), F.lit(k)).alias(f"{side}_nbr_count"),
        F.col("degree").alias(f"{side}_degree"))


def build_examples(interactions: DataFrame, nodes: DataFrame, neighbors: DataFrame,
                   params: ExampleParams) -> DataFrame:
    """gold.examples: one row per impression (any date), columns of
    schemas.tables.examples(labels, params.neighbor_arrays).

    Slim rows only look up the node ids (`neighbors` is not read); with neighbour arrays the node
    features and both nodes' lists are joined in too. Joins are left joins, so an impression whose
    user or item has no node (or a node without a neighbour row) keeps a null that the examples
    checks reject, instead of vanishing.
    """
    schema = examples(params.labels, params.neighbor_arrays)
    arrays = params.neighbor_arrays

    def side(node_type: NodeType, name: str) -> DataFrame:
        cols = [F.col("raw_id").alias(f"{name}_id"), F.col("node_id").alias(f"{name}_node")]
        if arrays:
            cols.append(F.col("features").alias(f"{name}_features"))
        return nodes.where(F.col("node_type") == node_type.value).select(*cols)

    rows = (interactions
            .join(side(NodeType.USER, "user"), "user_id", "left")
            .join(side(NodeType.ITEM, "item"), "item_id", "left"))
    if arrays:
        rows = (rows.join(padded_neighbors(neighbors, "user", params.k), "user_node", "left")
                .join(padded_neighbors(neighbors, "item", params.k), "item_node", "left"))
    return rows.select(
        "user_node", "item_node",
        F.datediff(F.col("date"), F.lit(date(1970, 1, 1))).cast("int").alias("day"),
        split_column(params.cutoffs).alias("split"),
        domain_code(params.domains).cast("int").alias("domain_id"),
        *(c for c in schema.names if c not in {"user_node", "item_node", "day", "split", "domain_id"}))
