"""Delta snapshots to device batches: resolve (delta-rs), read (Petastorm or pyarrow), re-batch, shard.

Notebook helper, without a JVM (etl.snapshot.load_snapshot is the Spark side: it pins every table
of a run and returns Spark DataFrames):

    >>> from training.data import read_snapshot_table
    >>> read_snapshot_table("lake", "gold.examples", version=3, split="eval").num_rows   # doctest: +SKIP
"""
from __future__ import annotations

from typing import Optional, Sequence

import pyarrow as pa

from training.data.arrow_reader import read_files
from training.data.manifest import run_outputs
from training.data.snapshot import Snapshot, SnapshotError, resolve_snapshot


def read_snapshot_table(root: str, table: str, *, version: Optional[int] = None, timestamp: Optional[str] = None,
                        run: Optional[str] = None, columns: Optional[Sequence[str]] = None, **partition: str) -> pa.Table:
    """The rows of one pinned table version (by version, timestamp or run id) as an Arrow table."""
    if run is not None:
        written = run_outputs(root, run)
        if table not in written:
            raise SnapshotError(f"run {run!r} wrote {sorted(written)} but not {table}")
        version = written[table]
    snap = resolve_snapshot(root, table, version=version, timestamp=timestamp)
    return read_files(snap, snap.files_where(**partition) if partition else snap.files, columns)


__all__ = ["Snapshot", "SnapshotError", "read_snapshot_table", "resolve_snapshot"]
