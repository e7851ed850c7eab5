"""What the graph-side stages (graph, neighbors, examples, macro) tell each other through Delta table
properties, and the flags that override them.

- bronze.interactions (set by ingest): grec.labels (comma list), grec.eval_days.
- gold.edges (set by graph): grec.labels, grec.cutoff (ISO date), grec.eval_days, grec.edge_types
  (comma list in code order: the code of a type is its position).
- gold.neighbors (set by neighbors): grec.k, grec.beta, grec.seed, grec.edge_types.
- gold.examples / gold.macro: grec.labels, grec.cutoff, grec.domains (comma list, code order), ...
- gold.examples also: grec.k (list length), grec.neighbor_arrays ("true": rows carry the lists;
  "false": slim rows, lists in gold.neighbors).
"""
from __future__ import annotations

import argparse
from datetime import date
from typing import Optional, Sequence

from pyspark.sql import SparkSession

from etl.jobs._main import InputError
from etl.lake import Lake
from schemas.tables import EDGES, NEIGHBORS

INTERACTIONS = "bronze.interactions"
DEFAULT_EVAL_DAYS = 7   # SPEC §5; ingest records 14 for MovieLens in grec.eval_days


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


def resolve_eval_days(spark: SparkSession, lake: Lake, flag: Optional[int], version: Optional[int] = None) -> int:
    """--eval-days, else bronze.interactions' grec.eval_days (at `version` when given), else the SPEC default (7)."""
    if flag is not None:
        return flag
    value = _properties(spark, lake, INTERACTIONS, version).get("grec.eval_days")
    return int(value) if value else DEFAULT_EVAL_DAYS


def graph_cutoff(spark: SparkSession, lake: Lake) -> date:
    """The first evaluation day the graph was built with (gold.edges' grec.cutoff)."""
    return date.fromisoformat(prop(spark, lake, EDGES.name, "grec.cutoff"))


def edge_type_codes_of(spark: SparkSession, lake: Lake) -> dict[str, int]:
    return {t: i for i, t in enumerate(split_list(prop(spark, lake, EDGES.name, "grec.edge_types")))}


def neighbors_k(spark: SparkSession, lake: Lake) -> int:
    return int(prop(spark, lake, NEIGHBORS.name, "grec.k"))
