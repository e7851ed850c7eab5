"""The contract between stages and with the scheduler: the `grec.*` Delta table properties one
stage writes and later stages, the trainer and the notebooks read; and the exit codes of every
`grec` command and spark-submit job.

A stage reads them at the version its own run wrote (etl.jobs.stage_inputs.table_properties), as it
reads the tables themselves, so a run sharing the lake cannot change them midway. Lists are comma
lists in code order: the code of a label, domain or edge type is its position. JVM-free.

    >>> LABELS.key, LABELS.writers
    ('grec.labels', ('ingest', 'graph', 'examples', 'macro'))
    >>> K in PROPERTIES
    True
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class TableProperty:
    key: str
    meaning: str
    writers: tuple[str, ...]   # stages that set it, on the tables they write
    readers: tuple[str, ...]   # stages and trainer modules that read it


LABELS = TableProperty(
    "grec.labels", "the task labels (comma list, code order)",
    ("ingest", "graph", "examples", "macro"),
    ("graph, examples and macro (bronze.interactions' when no --labels)", "training.data.examples"))
POSITIVE_LABEL = TableProperty(
    "grec.positive_label", "the label whose 1s are positives for Swing",
    ("ingest", "swing"), ("swing", "pipeline"))
NUMERIC = TableProperty("grec.numeric", "the numeric (non-binary) labels", ("ingest",), ("notebooks",))
SOURCE = TableProperty("grec.source", "the source the rows came from", ("ingest",), ("notebooks",))
FEATURE_NAMES = TableProperty(
    "grec.feature_names", "names of the encoded side features (bronze.users, bronze.items)", ("ingest",),
    ("notebooks",))
SWING = TableProperty("grec.swing", "Swing's parameters, name=value comma list", ("swing",), ("notebooks",))
CUTOFF = TableProperty(
    "grec.cutoff", "ISO date: the first non-training day = the validation start = the graph window's end",
    ("swing", "graph", "examples", "macro"), ("neighbors", "examples", "macro", "training"))
EVAL_CUTOFF = TableProperty(
    "grec.eval_cutoff", "ISO date: the first evaluation day (absent on tables from before the three-way split: "
                        "evaluation then began at grec.cutoff)", ("graph", "examples"), ("examples", "macro", "training"))
SPLIT = TableProperty("grec.split", "the split policy in words", ("graph",), ("notebooks",))
EDGE_TYPES = TableProperty(
    "grec.edge_types", "edge types (comma list, code order)", ("graph", "neighbors", "examples"),
    ("neighbors", "examples"))
K = TableProperty(
    "grec.k", "neighbour list length: sampled (gold.neighbors), or the length the trainer cuts to (gold.examples)",
    ("neighbors", "examples"), ("examples", "training.data.resident"))
BETA = TableProperty("grec.beta", "the sampling exponent of gold.neighbors", ("neighbors",), ("notebooks",))
SEED = TableProperty("grec.seed", "the sampling seed of gold.neighbors", ("neighbors",), ("notebooks",))
DOMAINS = TableProperty(
    "grec.domains", "the domain vocabulary (comma list, code order)", ("examples", "macro"),
    ("training.data.examples", "training.data.macro"))
N_DOMAINS = TableProperty("grec.n_domains", "D: length of the users' macro count arrays", ("macro",),
                          ("training.data.macro",))
N_CLUSTERS = TableProperty("grec.n_clusters", "C: user clusters KMeans found (length of the items' count arrays)",
                           ("macro",), ("training.data.macro",))
NEIGHBOR_ARRAYS = TableProperty(
    "grec.neighbor_arrays", "'true': gold.examples rows carry both nodes' lists; 'false': slim rows",
    ("examples",), ("notebooks",))

def join_list(values: Iterable[str], what: str) -> str:
    """A list property's value: `values` joined by commas; ValueError naming `what` for a value that
    would not survive the round trip (empty, padded or holding a comma).

    >>> join_list(["like", "love"], "labels")
    'like,love'
    """
    values = list(values)
    bad = [v for v in values if "," in v or v != v.strip() or not v]
    if bad:
        raise ValueError(f"{what} cannot be stored as a comma list: {bad} (empty, padded or containing ',')")
    return ",".join(values)


def split_list(text: str) -> tuple[str, ...]:
    """A comma list (a list property, or a flag's value) as its items, blanks dropped.

    >>> split_list(" like, love ,")
    ('like', 'love')
    """
    return tuple(v.strip() for v in text.split(",") if v.strip())


PROPERTIES = (LABELS, POSITIVE_LABEL, NUMERIC, SOURCE, FEATURE_NAMES, SWING, CUTOFF, EVAL_CUTOFF, SPLIT,
              EDGE_TYPES, K, BETA, SEED, DOMAINS, N_DOMAINS, N_CLUSTERS, NEIGHBOR_ARRAYS)


# Exit codes of every grec command (ETL jobs, grec train, grec compare, grec demo), for schedulers.
EXIT_OK = 0
EXIT_INPUT = 1        # bad input or setup: the message names the flag, file, column or row and what was expected
EXIT_CHECKS = 2       # a quality check failed: the report's path is printed, no table moved
EXIT_CONFLICT = 3     # another writer conflicts with the run (same run id elsewhere, or retries ran out)
EXIT_INTERRUPTED = 130
