"""What every source returns (`SourceData`), how a source declares its options, and shared helpers.

A source maps one dataset onto grec's input contract (docs/method.md §Contract). Its options are a
frozen dataclass whose fields carry their CLI flag and parser (`option(...)`), so one declaration
gives both the Python keyword arguments (`load_source(spark, "synthetic", rows=1000)`) and the flags
(`--source synthetic --rows 1000`).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from etl.hadoop import filesystem
from schemas.columns import Kind
from schemas.tables import FEATURES, INTERACTIONS_BASE

# The key columns of the input contract (docs/method.md §Contract) a source provides (ingest
# derives `date` from ts).
USER_ID, ITEM_ID, TS, DOMAIN = (c.name for c in INTERACTIONS_BASE if c.kind is not Kind.DATE)
FEATURES_COL = FEATURES.name
SOURCE_COL = "_source"  # where each row came from (file or generator), kept for quarantine reasons

REPO_ROOT = Path(__file__).resolve().parents[2]


class SourceError(ValueError):
    """A source cannot be read as asked; the message names the path, column or option and why."""


class SourceWarning(UserWarning):
    """Input that is read, but not all of it (e.g. extra columns that are left out)."""


class TsUnit(str, Enum):
    """How a source's `ts` column is to be read."""

    TIMESTAMP = "timestamp"  # a timestamp value, or a string Spark parses as one
    SECONDS = "s"  # epoch seconds
    MILLIS = "ms"  # epoch milliseconds
    MICROS = "us"  # epoch microseconds


@dataclass
class SourceData:
    """One dataset mapped onto the input contract; ingest casts, validates and quarantines.

    Attributes:
        name: source name ("movielens-100k", "kuairand", "synthetic", "contract").
        description: one line for reports, naming where the data came from.
        interactions: user_id, item_id, ts, domain, each label, each numeric column, `_source`,
            with types as read (ingest casts them row by row).
        labels: task label columns (0/1).
        positive_label: the label whose 1 makes a positive interaction (Swing, explicit edges).
        numeric: optional numeric columns.
        ts_unit: how `ts` is to be read.
        users: user_id (string), features (array<float>, fixed length), or None.
        items: item_id (string), domain (string), features (array<float>, fixed length), or None.
        user_feature_names / item_feature_names: the names of the features arrays' slots.
    """

    name: str
    description: str
    interactions: DataFrame
    labels: list[str]
    positive_label: str
    numeric: list[str]
    ts_unit: TsUnit
    users: Optional[DataFrame] = None
    items: Optional[DataFrame] = None
    user_feature_names: list[str] = field(default_factory=list)
    item_feature_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.labels:
            raise SourceError(f"source {self.name}: at least one task label is needed")
        if self.positive_label not in self.labels:
            raise SourceError(f"source {self.name}: positive label {self.positive_label!r} is not one of the "
                              f"labels {self.labels}")
        missing = [c for c in self.interaction_columns if c not in self.interactions.columns]
        if missing:
            raise SourceError(f"source {self.name}: interactions lack {missing}; columns: {self.interactions.columns}")
        for table, key, names in ((self.users, [USER_ID], self.user_feature_names),
                                  (self.items, [ITEM_ID, DOMAIN], self.item_feature_names)):
            if table is not None and table.columns != [*key, FEATURES_COL]:
                raise SourceError(f"source {self.name}: side table columns {table.columns}, expected "
                                  f"{[*key, FEATURES_COL]} ({len(names)} feature names)")

    @property
    def interaction_columns(self) -> list[str]:
        return [USER_ID, ITEM_ID, TS, DOMAIN, *self.labels, *self.numeric, SOURCE_COL]


# ---- options: one declaration for keyword arguments and CLI flags ------------------------------

def option(default: Any, flag: Optional[str], help: str, parse: Callable[[str], Any] = str) -> Any:
    """A source option: a dataclass field with its CLI flag (None: keyword only) and string parser.

    A `bool` parser makes a switch (the flag takes no value and sets True).
    """
    return field(default=default, metadata={"flag": flag, "help": help, "parse": parse})


def flagged_fields(options_cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(options_cls) if f.metadata.get("flag")]


def flag_dest(flag: str) -> str:
    """argparse destination of a source flag, prefixed so it cannot clash with a job's own flags."""
    return "source_" + flag.lstrip("-").replace("-", "_")


# ---- paths ---------------------------------------------------------------------------------------

def shared_dir() -> Path:
    """The shared data folder: $GREC_SHARED, else `<repo>/../shared`."""
    return Path(os.environ.get("GREC_SHARED") or REPO_ROOT / ".." / "shared").resolve()


def _hidden(relative: str) -> bool:
    # Spark's file sources skip these too: `_SUCCESS`, `.crc`, `_delta_log/`, `_temporary/`.
    return any(part.startswith(("_", ".")) for part in relative.split("/") if part)


def matching_files(spark: SparkSession, path: str) -> list[str]:
    """Data files at `path` (a file, a folder read recursively, or a glob) via Hadoop's filesystem,
    so any URI Spark reads works. Hidden files and folders (`_SUCCESS`, `.crc`, `_delta_log`) are left out."""
    fs, hpath = filesystem(spark, path)
    out: list[str] = []
    for st in fs.globStatus(hpath) or []:
        root = st.getPath().toString()
        if not st.isDirectory():
            out += [] if _hidden(st.getPath().getName()) else [root]
            continue
        it = fs.listFiles(st.getPath(), True)
        while it.hasNext():
            p = it.next().getPath().toString()
            if not _hidden(p[len(root):]):
                out.append(p)
    return sorted(out)


def is_delta_table(spark: SparkSession, path: str) -> bool:
    fs, hpath = filesystem(spark, path.rstrip("/") + "/_delta_log")
    return bool(fs.exists(hpath))


def require_files(spark: SparkSession, path: str, what: str) -> list[str]:
    files = matching_files(spark, path)
    if not files:
        raise SourceError(f"{what}: no file at {path} (expected a file, a folder of files or a glob)")
    return files


def source_file() -> Column:
    """The file each row was read from (Spark's file-source metadata)."""
    return F.col("_metadata.file_path")


# ---- side features -------------------------------------------------------------------------------

def features_array(values: Sequence[Column]) -> Column:
    """array<float> without nulls (missing feature values become 0.0), as FEATURES requires."""
    if not values:
        return F.array().cast(FEATURES.kind.spark())
    return F.array(*(F.coalesce(v.cast("float"), F.lit(0.0).cast("float")) for v in values)) \
        .cast(FEATURES.kind.spark())


def one_hot(value: Column, vocabulary: Sequence[str]) -> list[Column]:
    """One 0/1 column per vocabulary entry (all 0 for a value outside it)."""
    return [F.when(value == v, 1.0).otherwise(0.0) for v in vocabulary]


def item_domains(interactions: DataFrame) -> DataFrame:
    """item_id, domain: each item's most frequent interaction domain (ties: the smaller name).

    For data whose domain is a property of the interaction (KuaiRand's tab), not of the item.
    """
    counts = interactions.groupBy(ITEM_ID, DOMAIN).count()
    best = Window.partitionBy(ITEM_ID).orderBy(F.desc("count"), F.asc(DOMAIN))
    return (counts.where(F.col(DOMAIN).isNotNull())
            .withColumn("_rank", F.row_number().over(best))
            .where("_rank = 1").select(ITEM_ID, DOMAIN))
