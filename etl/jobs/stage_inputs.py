"""Inputs every stage after ingest shares: the labels, the split, and the upstream table properties
(the `grec.*` keys of schemas.contract: who writes each and who reads it), with the flags that override them.

A stage reads these at the version its own run wrote (table_properties), as it reads the tables
themselves (etl.stage.Stage.read): a run sharing the lake may have committed a later version since.
"""
from __future__ import annotations

import argparse
from datetime import date
from typing import Optional, Sequence

from pyspark.sql import DataFrame, SparkSession

from etl.jobs.shell import InputError
from etl.lake import Lake, RunManifest
from etl.transforms.split import SplitCutoffs, SplitPolicy, split_cutoffs
from schemas import contract
from schemas.params import add_param_arguments, params_from_args
from schemas.tables import EDGES, NEIGHBORS

INTERACTIONS = "bronze.interactions"


def add_labels_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--labels", default=None,
                        help="task labels, comma list (default: the grec.labels property of bronze.interactions)")


def join_list(values: Sequence[str], what: str) -> str:
    """contract.join_list, its problem as InputError (the values came from the user's data)."""
    try:
        return contract.join_list(values, what)
    except ValueError as e:
        raise InputError(str(e)) from None


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
    table_labels = list(contract.split_list(table_properties(spark, lake, INTERACTIONS, run_id)
                                            .get(contract.LABELS.key, "")))
    labels = list(contract.split_list(flag)) if flag else table_labels
    if not labels:
        raise InputError(f"{INTERACTIONS} has no grec.labels property: name the task labels with --labels")
    unknown = [t for t in labels if t not in table_labels]
    if table_labels and unknown:
        raise InputError(f"--labels {flag!r}: {unknown} not among the task labels of {INTERACTIONS} "
                         f"({','.join(table_labels)})")
    return labels


SPLIT_FLAGS_GROUP = "time split (train, then val, then eval)"


def add_split_arguments(parser: argparse.ArgumentParser) -> None:
    """The train/val/eval split flags (etl.transforms.split.SplitPolicy)."""
    add_param_arguments(parser.add_argument_group(SPLIT_FLAGS_GROUP), SplitPolicy)


def split_policy_from_args(args: argparse.Namespace) -> SplitPolicy:
    return params_from_args(SplitPolicy, args)


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
    _required(props, EDGES.name, contract.CUTOFF.key)
    return SplitCutoffs.from_properties(props)


def graph_cutoff(spark: SparkSession, lake: Lake, run_id: str) -> date:
    """The graph window's end: the first non-training day (gold.edges' grec.cutoff)."""
    return graph_cutoffs(spark, lake, run_id).val_start


def edge_type_codes_of(spark: SparkSession, lake: Lake, run_id: str) -> dict[str, int]:
    types = contract.split_list(prop(spark, lake, EDGES.name, contract.EDGE_TYPES.key, run_id))
    return {t: i for i, t in enumerate(types)}


def neighbors_k(spark: SparkSession, lake: Lake, run_id: str) -> int:
    return int(prop(spark, lake, NEIGHBORS.name, contract.K.key, run_id))
