"""The lake's layout: how a root is written as a URI and where each table lives under it.

One lake is one root URI; table `layer.name` lives at `<root>/<layer>/<name>`. The ETL (etl.lake,
with Spark), the trainer (training.data.snapshot, JVM-free) and the sources share these rules.

    >>> to_uri("s3a://bucket/lake/")
    's3a://bucket/lake/'
    >>> normalize_root("s3a://bucket/lake/")
    's3a://bucket/lake'
    >>> table_uri("s3a://bucket/lake", "gold.examples")
    's3a://bucket/lake/gold/examples'
    >>> normalize_root("/data/lake")
    'file:///data/lake'
"""
from __future__ import annotations

import os
from urllib.parse import urlparse

# Files are written near this size (etl.write_layout): large enough that a table of millions of rows
# is a handful of files, small enough that a cluster reads one table in parallel.
TARGET_FILE_BYTES = 128 * 2 ** 20


class SnapshotError(RuntimeError):
    """A table version cannot be resolved, pinned or read (by Spark or by raw-file reading); the
    message names the table, the version and what to do. One class for the ETL's snapshot API
    (etl.snapshot) and the trainer's reader (training.data.snapshot)."""


def is_local(path: str) -> bool:
    """A bare path or a `file:` URI (a one-letter scheme is a Windows drive, not a scheme)."""
    scheme = urlparse(path).scheme
    return len(scheme) <= 1 or scheme == "file"


def to_uri(path: str) -> str:
    """A bare local path as an absolute `file://` URI, so a cluster's default filesystem is never
    assumed; a URI with a scheme passes through unchanged."""
    if len(urlparse(path).scheme) > 1:
        return path
    return "file://" + os.path.abspath(os.path.expanduser(path))


def normalize_root(root: str) -> str:
    """A lake root as a URI without a trailing slash."""
    return to_uri(root).rstrip("/")


def table_uri(root: str, table: str) -> str:
    """Where table `layer.name` lives under the lake root."""
    return f"{normalize_root(root)}/{table.replace('.', '/')}"
