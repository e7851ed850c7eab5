"""`contract` source: files already in the input contract's form (docs/method.md §Contract), as CSV
with a header or as Parquet.

CSV is read with every column as a string and no row dropped or altered: ingest casts and
quarantines bad rows with their reason. Parquet keeps its types. Columns outside the contract are
left out with a warning that names them. Side tables: users = user_id + numeric feature columns,
items = item_id, domain + numeric feature columns; the numeric columns become the features array
(in file order; a missing value becomes 0.0) and their names are recorded.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Optional, Sequence
from urllib.parse import urlparse

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from etl.sources.base import (DOMAIN, FEATURES_COL, ITEM_ID, SOURCE_COL, TS, USER_ID, SourceData,
                              SourceError, SourceWarning, TsUnit, features_array,
                              is_delta_table, option, require_files, source_file)
from schemas.contract import split_list
from schemas.layout import to_uri
from schemas.tables import interactions as interactions_schema

NAME = "contract"
_PARQUET_SUFFIXES = (".parquet", ".pq")
_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".txt")


class FileFormat(str, Enum):
    CSV = "csv"
    PARQUET = "parquet"


@dataclass(frozen=True)
class ContractOptions:
    interactions: Optional[str] = option(
        None, "--interactions",
        "interactions file, folder or glob with the input contract's columns (docs/method.md §Contract)")
    labels: tuple[str, ...] = option((), "--labels", "comma-separated task label columns, e.g. like,love",
                                     split_list)
    positive_label: Optional[str] = option(
        None, "--positive-label", "the label defining a positive interaction (default: the first label)")
    numeric: tuple[str, ...] = option((), "--numeric", "comma-separated optional numeric columns, e.g. rating",
                                      split_list)
    users: Optional[str] = option(None, "--users", "users file: user_id + numeric feature columns")
    items: Optional[str] = option(None, "--items", "items file: item_id, domain + numeric feature columns")
    format: Optional[FileFormat] = option(
        None, "--format", "csv or parquet (default: from the file names)", FileFormat)
    ts_unit: TsUnit = option(TsUnit.TIMESTAMP, "--ts-unit",
                             "how to read ts: timestamp (default), or epoch s, ms, us", TsUnit)


def detect_format(files: Sequence[str], path: str) -> FileFormat:
    names = {Path(urlparse(f).path).name.lower() for f in files}
    if all(n.endswith(_PARQUET_SUFFIXES) for n in names):
        return FileFormat.PARQUET
    if all(n.endswith(_CSV_SUFFIXES) for n in names):
        return FileFormat.CSV
    raise SourceError(f"cannot tell the format of {path} from its file names "
                      f"({sorted(names)[:5]}): pass --format csv or --format parquet")


def read_table(spark: SparkSession, path: str, fmt: Optional[FileFormat], what: str) -> DataFrame:
    """A CSV (header, all columns strings) or Parquet table with `_source` = the file of each row."""
    files = require_files(spark, path, what)
    if is_delta_table(spark, path):
        raise SourceError(f"{what} {path} is a Delta table: its Parquet files include removed rows, so it "
                          "cannot be read as contract files; export a snapshot (e.g. to Parquet) first")
    fmt = fmt or detect_format(files, path)
    reader = spark.read.option("header", True) if fmt is FileFormat.CSV else spark.read
    df = reader.format(fmt.value).load(to_uri(path))
    return df.withColumn(SOURCE_COL, source_file())


def require_columns(df: DataFrame, required: Sequence[str], path: str, what: str) -> None:
    found = [c for c in df.columns if c != SOURCE_COL]
    missing = [c for c in required if c not in found]
    if missing:
        raise SourceError(f"{what} {path}: missing required column(s) {missing}; columns found: {found}")


def keep_columns(df: DataFrame, keep: Sequence[str], path: str, what: str) -> DataFrame:
    """`df` restricted to `keep` (+ `_source`), warning about the columns left out."""
    extra = [c for c in df.columns if c not in keep and c != SOURCE_COL]
    if extra:
        warnings.warn(f"{what} {path}: column(s) outside the contract left out: {extra}", SourceWarning,
                      stacklevel=3)
    return df.select(*keep, *([SOURCE_COL] if SOURCE_COL in df.columns else []))


def numeric_columns(df: DataFrame, candidates: Sequence[str], path: str, what: str) -> list[str]:
    """The candidates that hold numbers: numeric/boolean types, or strings whose every non-empty
    value parses as a number (one aggregate pass). The others are left out with a warning."""
    types = {f.name: f.dataType for f in df.schema.fields}
    typed = [c for c in candidates if isinstance(types[c], (T.NumericType, T.BooleanType))]
    strings = [c for c in candidates if isinstance(types[c], T.StringType)]
    parsed: list[str] = []
    if strings:
        counts = df.agg(*(F.sum(F.when((F.trim(F.col(c)) != "") & F.col(c).try_cast("double").isNull(), 1)
                                .otherwise(0)).alias(c) for c in strings),
                        *(F.count(F.when(F.trim(F.col(c)) != "", 1)).alias(f"n_{c}") for c in strings)).first()
        assert counts is not None  # a global aggregate gives one row
        parsed = [c for c in strings if counts[c] == 0 and counts[f"n_{c}"] > 0]
    keep = [c for c in candidates if c in typed or c in parsed]
    dropped = [c for c in candidates if c not in keep]
    if dropped:
        warnings.warn(f"{what} {path}: non-numeric column(s) are not features and are left out: {dropped}",
                      SourceWarning, stacklevel=3)
    return keep


def read_side_table(spark: SparkSession, path: str, key: Sequence[str], fmt: Optional[FileFormat],
                    what: str) -> tuple[DataFrame, list[str]]:
    """(key columns as strings + features array, feature names) from a users or items file."""
    df = read_table(spark, path, fmt, what).drop(SOURCE_COL)
    require_columns(df, key, path, what)
    names = numeric_columns(df, [c for c in df.columns if c not in key], path, what)
    out = df.select(*(F.col(k).cast("string").alias(k) for k in key),
                    features_array([F.col(n).try_cast("double") for n in names]).alias(FEATURES_COL))
    return out, names


def load(spark: SparkSession, opts: ContractOptions) -> SourceData:
    if not opts.interactions:
        raise SourceError("source contract needs --interactions PATH")
    if not opts.labels:
        raise SourceError("source contract needs --labels (comma-separated task label columns)")
    labels, numeric = list(opts.labels), list(opts.numeric)
    try:
        interactions_schema(labels, numeric)
    except ValueError as e:
        raise SourceError(f"source contract: {e}") from None
    positive = opts.positive_label or labels[0]
    what = "interactions file"
    df = read_table(spark, opts.interactions, opts.format, what)
    required = [USER_ID, ITEM_ID, TS, DOMAIN, *labels]
    require_columns(df, required, opts.interactions, what)
    # An absent optional numeric column is an error too: the user named it.
    require_columns(df, numeric, opts.interactions, what)
    df = keep_columns(df, [*required, *numeric], opts.interactions, what)

    users = items = None
    user_names: list[str] = []
    item_names: list[str] = []
    if opts.users:
        users, user_names = read_side_table(spark, opts.users, [USER_ID], opts.format, "users file")
    if opts.items:
        items, item_names = read_side_table(spark, opts.items, [ITEM_ID, DOMAIN], opts.format, "items file")
    return SourceData(
        name=NAME, description=f"contract files {opts.interactions}", interactions=df, labels=labels,
        positive_label=positive, numeric=numeric, ts_unit=opts.ts_unit, users=users, items=items,
        user_feature_names=user_names, item_feature_names=item_names)
