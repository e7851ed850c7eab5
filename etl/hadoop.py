"""Hadoop's FileSystem from Python: the one way grec reaches plain files under any URI Spark reads
(file:, s3a:, abfss:, dbfs:), for reports, source files and the snapshot API's file checks."""
from __future__ import annotations

from typing import Any

from pyspark.sql import SparkSession

from schemas.layout import to_uri


def filesystem(spark: SparkSession, uri: str) -> tuple[Any, Any]:
    """(org.apache.hadoop.fs.FileSystem, org.apache.hadoop.fs.Path) of `uri`; a bare local path is
    taken as a file: URI, never the cluster's default filesystem."""
    path = spark._jvm.org.apache.hadoop.fs.Path(to_uri(uri))
    return path.getFileSystem(spark._jsc.hadoopConfiguration()), path
