"""What the graph-side stages (graph, neighbors, examples, macro) tell each other through Delta table
properties, and the flags that override them.

- bronze.interactions (set by ingest): grec.labels (comma list), grec.positive_label.
- gold.edges (set by graph): grec.labels, grec.cutoff (ISO date: the graph window's end, the first
  non-training day = the validation start), grec.eval_cutoff (ISO date: the first evaluation day),
  grec.split (the split policy in words), grec.edge_types (comma list in code order: the code of a
  type is its position).
- gold.neighbors (set by neighbors): grec.k, grec.beta, grec.seed, grec.edge_types.
- gold.examples / gold.macro: grec.labels, grec.cutoff, grec.domains (comma list, code order), ...
- gold.examples also: grec.eval_cutoff, grec.k (list length), grec.neighbor_arrays ("true": rows carry the lists;
  "false": slim rows, lists in gold.neighbors).
"""
from __future__ import annotations

import argparse
from datetime import date
from typing import Optional, Sequence

from pyspark.sql import DataFrame, SparkSession

from etl.jobs._main import InputError
from etl.lake import Lake
from etl.transforms.split import CUTOFF_PROP, SplitCutoffs, SplitPolicy, split_cutoffs
from schemas.tables import EDGES, NEIGHBORS

INTERACTIONS = "bronze.interactions"


def add_labels_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--labels", default=None,
                        help="task labels, comma list (default: the grec.labels property of bronze.interactions)")


def comma_list(values: Sequence[str], what: str) -> str:
    bad = [v for v in values if "," in v or v != v.strip() or not v]
    if bad:
        raise InputError(f"{what} cannot be stored as a comma list: {bad} (empty, padded or containing ',')")
    return ",".join(values)


def split_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _properties(spark: SparkSession, lake: Lake, table: str, version: Optional[int] = None) -> dict[str, str]:
    if not lake.exists(spark, table):
        raise InputError(f"{table} does not exist at {lake.path(table)}: run the stage that writes it first")
    return lake.properties(spark, table, version)


def prop(spark: SparkSession, lake: Lake, table: str, key: str) -> str:
    """A table property; InputError naming the table when absent."""
    value = _properties(spark, lake, table).get(key)
    if not value:
        raise InputError(f"{table} has no table property {key}: was it written by a grec stage?")
    return value


def resolve_labels(spark: SparkSession, lake: Lake, flag: Optional[str], version: Optional[int] = None) -> list[str]:
    """--labels (a subset of bronze.interactions' grec.labels, in any order), else grec.labels
    (of bronze.interactions at `version` when given, else the latest)."""
    table_labels = split_list(_properties(spark, lake, INTERACTIONS, version).get("grec.labels", ""))
    labels = split_list(flag) if flag else table_labels
    if not labels:
        raise InputError(f"{INTERACTIONS} has no grec.labels property: name the task labels with --labels")
    unknown = [t for t in labels if t not in table_labels]
    if table_labels and unknown:
        raise InputError(f"--labels {flag!r}: {unknown} not among the task labels of {INTERACTIONS} "
                         f"({','.join(table_labels)})")
    return labels


def add_split_arguments(parser: argparse.ArgumentParser) -> None:
    """The train/val/eval split flags (etl.transforms.split.SplitPolicy)."""
    d = SplitPolicy()
    g = parser.add_argument_group("time split (train, then val, then eval)")
    g.add_argument("--eval-fraction", type=float, default=None,
                   help=f"evaluate the fewest last whole days holding this share of the rows "
                        f"(default {d.eval_fraction})")
    g.add_argument("--eval-days", type=int, default=None,
                   help="evaluate the last N calendar days instead (overrides --eval-fraction)")
    g.add_argument("--val-fraction", type=float, default=None,
                   help=f"validate on the fewest whole days before evaluation holding this share of the rows; "
                        f"0 = no validation period (default {d.val_fraction})")
    g.add_argument("--val-days", type=int, default=None,
                   help="validate on the N calendar days before evaluation instead (overrides --val-fraction); "
                        "0 = no validation period")


def split_policy_from_args(args: argparse.Namespace) -> SplitPolicy:
    given = {"eval_fraction": args.eval_fraction, "eval_days": args.eval_days,
             "val_fraction": args.val_fraction, "val_days": args.val_days}
    try:
        return SplitPolicy(**{k: v for k, v in given.items() if v is not None})
    except ValueError as e:
        raise InputError(str(e)) from None


def resolve_split(interactions: DataFrame, policy: SplitPolicy) -> SplitCutoffs:
    """split_cutoffs, with the data's problems (empty, too short) as InputError."""
    try:
        return split_cutoffs(interactions, policy)
    except ValueError as e:
        raise InputError(f"{INTERACTIONS}: {e}") from None


def graph_cutoffs(spark: SparkSession, lake: Lake) -> SplitCutoffs:
    """The split the graph was built with (gold.edges' grec.cutoff and grec.eval_cutoff; a gold.edges
    written before the three-way split has no grec.eval_cutoff: evaluation then began at grec.cutoff)."""
    prop(spark, lake, EDGES.name, CUTOFF_PROP)  # names the table when absent
    return SplitCutoffs.from_properties(_properties(spark, lake, EDGES.name))


def graph_cutoff(spark: SparkSession, lake: Lake) -> date:
    """The graph window's end: the first non-training day (gold.edges' grec.cutoff)."""
    return graph_cutoffs(spark, lake).val_start


def edge_type_codes_of(spark: SparkSession, lake: Lake) -> dict[str, int]:
    return {t: i for i, t in enumerate(split_list(prop(spark, lake, EDGES.name, "grec.edge_types")))}


def neighbors_k(spark: SparkSession, lake: Lake) -> int:
    return int(prop(spark, lake, NEIGHBORS.name, "grec.k"))
