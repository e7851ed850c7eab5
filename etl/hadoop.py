"""Hadoop's FileSystem from Python: the one way grec reaches plain files under any URI Spark reads
(file:, s3a:, abfss:, dbfs:), for reports, source files and the snapshot API's file checks."""
from __future__ import annotations

from typing import Any

from pyspark.sql import SparkSession

from schemas.layout import to_uri


def jvm(spark: SparkSession) -> Any:
    """The driver's Py4J view of the JVM. pyspark types it Optional (None only on Spark Connect,
    which has no JVM here); a classic session always has it, as pyspark itself asserts."""
    view = spark._jvm
    assert view is not None
    return view


def filesystem(spark: SparkSession, uri: str) -> tuple[Any, Any]:
    """(org.apache.hadoop.fs.FileSystem, org.apache.hadoop.fs.Path) of `uri`; a bare local path is
    taken as a file: URI, never the cluster's default filesystem."""
    path = jvm(spark).org.apache.hadoop.fs.Path(to_uri(uri))
    return path.getFileSystem(spark._jsc.hadoopConfiguration()), path
