"""Resolve a pinned Delta snapshot to its Parquet files with delta-rs, without a JVM.

A snapshot is one version of one table: its data files (absolute URIs with their partition values
and row counts), its schema and its table properties. Reading those files directly is only correct
when the version has no deletion vectors in use, no column mapping and no other reader feature that
changes how files map to rows; `resolve_snapshot` refuses such versions with a message saying why.
Never glob a Delta folder instead: it returns files that later versions removed.

    >>> snap = resolve_snapshot("lake", "gold.examples", version=3)     # doctest: +SKIP
    >>> [f.uri for f in snap.files_where(split="train")][:1]            # doctest: +SKIP
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping, Optional, Sequence
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs

from schemas.layout import SnapshotError, table_uri
from schemas.runs import parse_utc

# Reader features that leave "the add actions' files, partition values restored" equal to the
# table's rows. deletionVectors is checked separately: allowed only while no file carries one.
RAW_READABLE_FEATURES = frozenset({"timestampNtz", "v2Checkpoint", "vacuumProtocolCheck", "checkpointProtection",
                                   "deletionVectors"})


def file_uri(path: str) -> str:
    """delta-rs lists local files as plain absolute paths; give them a scheme (petastorm needs one)."""
    return path if urlparse(path).scheme and len(urlparse(path).scheme) > 1 else "file://" + path


@dataclass(frozen=True)
class DataFile:
    uri: str
    partition: Mapping[str, Optional[str]]
    rows: int


@dataclass(frozen=True)
class Snapshot:
    """One version of one Delta table, as the list of Parquet files that make it up."""

    table: str
    uri: str
    version: int
    files: tuple[DataFile, ...]
    schema: pa.Schema
    partition_columns: tuple[str, ...]
    configuration: Mapping[str, str]
    column_max: Mapping[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    def files_where(self, **partition: str) -> list[DataFile]:
        """The files of one partition (e.g. split="train"); raises if a key is not a partition column."""
        bad = set(partition) - set(self.partition_columns)
        if bad:
            raise SnapshotError(f"{self.table} v{self.version} is partitioned by {list(self.partition_columns)}, "
                                f"not by {sorted(bad)}")
        return [f for f in self.files if all(f.partition.get(k) == str(v) for k, v in partition.items())]

    def describe(self) -> dict[str, object]:
        return {"table": self.table, "uri": self.uri, "version": self.version, "rows": self.rows,
                "files": len(self.files)}


def resolve_snapshot(root: str, table: str, *, version: Optional[int] = None,
                     timestamp: Optional[str | datetime] = None,
                     storage_options: Optional[dict[str, str]] = None) -> Snapshot:
    """Pin `table` under the lake `root` to a version (default: latest) or a timestamp and list its files.

    Raises SnapshotError when the table or version does not exist (e.g. removed by log cleanup or
    VACUUM), when a data file of the version is gone, or when raw-file reading would return wrong
    rows (deletion vectors in use, column mapping, an unknown reader feature).
    """
    from deltalake import DeltaTable

    uri = table_uri(root, table)
    if version is not None and timestamp is not None:
        raise SnapshotError("give a version or a timestamp, not both")
    try:
        dt = DeltaTable(uri, version=version, storage_options=storage_options)
    except Exception as e:  # delta-rs raises several types (TableNotFoundError, DeltaError, OSError)
        what = f"version {version} of {table}" if version is not None else f"table {table}"
        raise SnapshotError(f"cannot open {what} at {uri}: {e}. If the version existed, its log may have been "
                            "cleaned up (delta.logRetentionDuration) or the table vacuumed") from e
    if timestamp is not None:
        _load_as_of(dt, table, uri, timestamp)
    _check_raw_readable(dt, table)
    snap = _snapshot_of(dt, table, uri)
    _check_files_exist(snap)
    return snap


def _load_as_of(dt, table: str, uri: str, timestamp: str | datetime) -> None:
    """Time travel to the last version committed at or before `timestamp` (naive times are UTC)."""
    try:
        when = parse_utc(timestamp)
    except ValueError as e:
        raise SnapshotError(f"timestamp {timestamp!r} is not ISO 8601 (e.g. 2024-05-01T12:00:00Z)") from e
    # delta-rs falls back to the first version for times before it; Delta's rule is an error.
    commits = [h for h in dt.history() if h.get("timestamp") is not None]
    first = min(commits, key=lambda h: h["timestamp"]) if commits else None
    if first is not None and when.timestamp() * 1000 < first["timestamp"]:
        raise SnapshotError(f"no version of {table} at {uri} as of {when.isoformat()}: the earliest available "
                            f"version was committed at "
                            f"{datetime.fromtimestamp(first['timestamp'] / 1000, timezone.utc).isoformat()}")
    try:
        dt.load_as_version(when)
    except Exception as e:
        raise SnapshotError(f"no version of {table} at {uri} as of {when.isoformat()}: {e}") from e


def _check_raw_readable(dt, table: str) -> None:
    name = f"{table} v{dt.version()}"
    conf = dt.metadata().configuration or {}
    mode = conf.get("delta.columnMapping.mode", "none")
    if mode != "none":
        raise SnapshotError(f"{name} uses column mapping (delta.columnMapping.mode={mode}): its Parquet files "
                            "name columns by physical ids, so raw-file reading cannot serve it. Rewrite the table "
                            "without column mapping")
    features = set(dt.protocol().reader_features or ())
    unknown = sorted(features - RAW_READABLE_FEATURES)
    if unknown:
        raise SnapshotError(f"{name} needs reader features {unknown} that raw-file reading does not implement")
    if "deletionVectors" in features:
        with_dv = pa.table(dt.deletion_vectors()).column("filepath").to_pylist()
        if with_dv:
            raise SnapshotError(f"{name} has deletion vectors on {len(with_dv)} file(s) (e.g. {with_dv[0]}): raw "
                                "files would return deleted rows. Purge them (REORG TABLE ... APPLY (PURGE)) or "
                                "write the table with delta.enableDeletionVectors=false")


def _snapshot_of(dt, table: str, uri: str) -> Snapshot:
    actions = pa.table(dt.get_add_actions(flatten=True))
    uris = dt.file_uris()
    paths = actions.column("path").to_pylist()
    partition_columns = tuple(dt.metadata().partition_columns)
    parts = {c: actions.column(f"partition.{c}").to_pylist() for c in partition_columns}
    rows = actions.column("num_records").to_pylist()
    files = []
    for i, (u, p) in enumerate(zip(uris, paths)):
        # file_uris() and the add actions come in the same order; check rather than trust.
        if os.path.basename(u) != os.path.basename(p):
            raise SnapshotError(f"{table} v{dt.version()}: file list and add actions disagree ({u} vs {p})")
        if rows[i] is None:
            raise SnapshotError(f"{table} v{dt.version()}: file {u} has no row count statistics")
        files.append(DataFile(file_uri(u), {c: _part_str(parts[c][i]) for c in partition_columns}, int(rows[i])))
    column_max = {name[4:]: actions.column(name).to_pylist() for name in actions.column_names
                  if name.startswith("max.")}
    return Snapshot(table=table, uri=uri, version=dt.version(), files=tuple(files),
                    schema=pa.schema(dt.schema().to_arrow()), partition_columns=partition_columns,
                    configuration=dict(dt.metadata().configuration or {}),
                    column_max={k: max((v for v in vals if v is not None), default=None)
                                for k, vals in column_max.items()})


def _part_str(value: object) -> Optional[str]:
    return None if value is None else str(value)


def _check_files_exist(snap: Snapshot) -> None:
    if not snap.files:
        return
    fs, _ = pafs.FileSystem.from_uri(snap.files[0].uri)
    infos = fs.get_file_info([pafs.FileSystem.from_uri(f.uri)[1] for f in snap.files])
    missing = [f.uri for f, info in zip(snap.files, infos) if info.type == pafs.FileType.NotFound]
    if missing:
        raise SnapshotError(f"{snap.table} v{snap.version}: {len(missing)} data file(s) are gone (e.g. {missing[0]}); "
                            "the version was probably vacuumed. Pin a newer version or re-run the stage")


def require_columns(snap: Snapshot, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in snap.schema.names]
    if missing:
        raise SnapshotError(f"{snap.table} v{snap.version} ({snap.uri}) lacks columns {missing}; "
                            f"it has {snap.schema.names}")
