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

A stage reads these at the version its own run wrote (table_properties), as it reads the tables
themselves (etl.stage.Stage.read): a run sharing the lake may have committed a later version since.
"""
from __future__ import annotations

import argparse
from datetime import date
from typing import Optional, Sequence

from pyspark.sql import DataFrame, SparkSession

from etl.jobs._main import InputError
from etl.lake import Lake, RunManifest
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


def table_properties(spark: SparkSession, lake: Lake, table: str, run_id: str) -> dict[str, str]:
    """`table`'s properties at the version run `run_id` wrote, else at the latest: the version the
    run's stages read (Stage.read), so a concurrent run's later commit cannot change them midway."""
    if not lake.exists(spark, table):
        raise InputError(f"{table} does not exist at {lake.path(table)}: run the stage that writes it first")
    return lake.properties(spark, table, RunManifest(lake).own_version(spark, run_id, table))


def _required(props: dict[str, str], table: str, key: str) -> str:
    if not props.get(key):
        raise InputError(f"{table} has no table property {key}: was it written by a grec stage?")
    return props[key]


def prop(spark: SparkSession, lake: Lake, table: str, key: str, run_id: str) -> str:
    """A table property (at run `run_id`'s version, as table_properties); InputError naming the table when absent."""
    return _required(table_properties(spark, lake, table, run_id), table, key)


def resolve_labels(spark: SparkSession, lake: Lake, flag: Optional[str], run_id: str) -> list[str]:
    """--labels (a subset of bronze.interactions' grec.labels, in any order), else grec.labels
    (at run `run_id`'s version, as table_properties)."""
    table_labels = split_list(table_properties(spark, lake, INTERACTIONS, run_id).get("grec.labels", ""))
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


def graph_cutoffs(spark: SparkSession, lake: Lake, run_id: str) -> SplitCutoffs:
    """The split the graph was built with (gold.edges' grec.cutoff and grec.eval_cutoff at run
    `run_id`'s version; a gold.edges written before the three-way split has no grec.eval_cutoff:
    evaluation then began at grec.cutoff)."""
    props = table_properties(spark, lake, EDGES.name, run_id)
    _required(props, EDGES.name, CUTOFF_PROP)
    return SplitCutoffs.from_properties(props)


def graph_cutoff(spark: SparkSession, lake: Lake, run_id: str) -> date:
    """The graph window's end: the first non-training day (gold.edges' grec.cutoff)."""
    return graph_cutoffs(spark, lake, run_id).val_start


def edge_type_codes_of(spark: SparkSession, lake: Lake, run_id: str) -> dict[str, int]:
    return {t: i for i, t in enumerate(split_list(prop(spark, lake, EDGES.name, "grec.edge_types", run_id)))}


def neighbors_k(spark: SparkSession, lake: Lake, run_id: str) -> int:
    return int(prop(spark, lake, NEIGHBORS.name, "grec.k", run_id))
