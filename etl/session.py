"""SparkSession factory: Delta Lake enabled, JARs from the local cache, sensible local defaults.

Under `spark-submit` (or in a notebook with a running Spark) the existing session is reused,
checked for Delta and set to the UTC session time zone; otherwise a `local[*]` session is built
from the JARs that `scripts/bootstrap.sh` fetched into `.grec/jars` (for an installed wheel: its
own grec-jvm.jar and Delta's from GREC_JARS_DIR; see etl/jars.py). Spark never resolves packages
at start-up.

    >>> from etl.session import get_spark
    >>> spark = get_spark("my-notebook")   # doctest: +SKIP
"""
from __future__ import annotations

import glob
import os
import subprocess
from pathlib import Path
from typing import Mapping, Optional

from pyspark.sql import SparkSession

from etl.jars import REPO_ROOT, has_delta, jars_dir, missing_delta_message, spark_jars

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"


class SparkSetupError(RuntimeError):
    """Spark cannot start the way grec needs (no Java 17, no Delta JARs, no Delta extension)."""


def local_jars() -> list[str]:
    """grec-jvm.jar (an installed wheel's own, else .grec/jars') and the JAR folder's others
    (etl.jars); raises if the Delta JARs are missing (run `make setup`)."""
    jars = spark_jars()
    if not has_delta(jars):
        raise SparkSetupError(missing_delta_message())
    return [str(j) for j in jars]


def has_graphframes_jar() -> bool:
    return any(Path(j).name.startswith("graphframes-") for j in glob.glob(str(jars_dir() / "*.jar")))


def _ship_wheels_to_executors(spark: SparkSession) -> None:
    """Put `--py-files` wheels on the executors' Python path, as Spark does for .zip and .egg.

    spark-submit ships every --py-files file and puts a .whl on the driver's PYTHONPATH, but
    pyspark adds only .zip/.egg/.jar names to the list its Python workers import from
    (SparkContext.PACKAGE_EXTENSIONS), so without this executors could not import grec from the
    wheel. A pure-Python wheel is a zip that zipimport reads as it is.
    """
    sc = spark.sparkContext
    includes = getattr(sc, "_python_includes", None)  # pyspark's list since 0.7; absent on Spark Connect
    if includes is None:
        return
    for path in (sc.getConf().get("spark.submit.pyFiles", "") or "").split(","):
        name = os.path.basename(path)
        if name.lower().endswith(".whl") and name not in includes:
            includes.append(name)


def _ensure_java17() -> None:
    """pyspark 4.1 on Java 25 fails Parquet writes; pin JAVA_HOME to a 17 when none is set."""
    home = os.environ.get("JAVA_HOME")
    candidates = [home] if home else sorted(glob.glob("/usr/lib/jvm/*17*"))
    for c in candidates:
        java = Path(c) / "bin" / "java"
        if not java.exists():
            continue
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True).stderr
        if 'version "17.' in out:
            os.environ["JAVA_HOME"] = c
            return
    raise SparkSetupError(
        f"Java 17 is required (JAVA_HOME={home or 'unset'}): pyspark 4.1 on newer Java fails Parquet writes. "
        "Run `make setup` or `source .grec/env.sh`.")


def local_defaults(cores: Optional[int] = None) -> dict[str, str]:
    """Configuration for an embedded local[*] Spark: few shuffle partitions, UTC, no Arrow paths."""
    n = cores or os.cpu_count() or 2
    settings = {
        "spark.sql.shuffle.partitions": str(max(4, 2 * n)),
        "spark.default.parallelism": str(max(4, 2 * n)),
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.memory": os.environ.get("GREC_DRIVER_MEMORY", "4g"),
        "spark.ui.enabled": "false" if os.environ.get("GREC_SPARK_UI", "1") == "0" else "true",
        "spark.ui.showConsoleProgress": "false",
        # pyarrow is pinned to 14 for petastorm; Spark's Arrow paths want >= 15, so they stay off.
        "spark.sql.execution.arrow.pyspark.enabled": "false",
        "spark.databricks.delta.snapshotPartitions": str(max(2, n)),
        "spark.sql.adaptive.enabled": "true",
    }
    # A checkout's quiet log4j configuration; an installed wheel has none and keeps Spark's default.
    log4j = REPO_ROOT / "scripts" / "log4j2.properties"
    if log4j.is_file():
        settings["spark.driver.extraJavaOptions"] = "-Dlog4j2.configurationFile=" + str(log4j)
    return settings


def get_spark(app_name: str = "grec", master: Optional[str] = None,
              conf: Optional[Mapping[str, str]] = None) -> SparkSession:
    """Return the active SparkSession (spark-submit, notebook) or build a local Delta-enabled one.

    Args:
        app_name: Spark application name.
        master: Spark master URL; default `$GREC_SPARK_MASTER` or `local[*]`. Ignored when a
            session already runs (spark-submit decides the master then).
        conf: extra Spark settings, applied over grec's local defaults.
    """
    active = SparkSession.getActiveSession()
    if active is None and _launched_by_spark_submit():
        active = SparkSession.builder.appName(app_name).getOrCreate()
    if active is not None:
        _check_delta(active)
        _ship_wheels_to_executors(active)
        # Dates are UTC dates (e.g. bronze.interactions' partition column); a session spark-submit
        # built starts in the driver JVM's zone, which on a cluster is the driver machine's.
        active.conf.set("spark.sql.session.timeZone", "UTC")
        for k, v in (conf or {}).items():
            if k.startswith("spark.sql."):
                active.conf.set(k, v)
        return active
    _ensure_java17()
    master = master or os.environ.get("GREC_SPARK_MASTER", "local[*]")
    settings = {**local_defaults(), **(conf or {}),
                "spark.jars": ",".join(local_jars()),
                "spark.sql.extensions": DELTA_EXTENSION,
                "spark.sql.catalog.spark_catalog": DELTA_CATALOG}
    builder = SparkSession.builder.appName(app_name).master(master)
    for k, v in settings.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    _check_delta(spark)
    return spark


def _launched_by_spark_submit() -> bool:
    # spark-submit starts the JVM first and hands pyspark its gateway through these variables.
    return "PYSPARK_GATEWAY_PORT" in os.environ


def _check_delta(spark: SparkSession) -> None:
    if os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        return  # Databricks Runtime builds Delta in and does not list the open-source extension
    ext = spark.conf.get("spark.sql.extensions", "") or ""
    if DELTA_EXTENSION not in ext:
        raise SparkSetupError(
            "the running Spark session has no Delta Lake extension: submit with SPARK_CONF_DIR=.grec/conf "
            "(source .grec/env.sh) or pass --jars and --conf spark.sql.extensions=" + DELTA_EXTENSION)
