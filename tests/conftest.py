"""One SparkSession for the whole test session (local[2], UI off, few shuffle partitions); grec's logging
set up as the commands set it up."""
from __future__ import annotations

import os

import pytest

from etl.logs import configure_logging

os.environ.setdefault("GREC_SPARK_UI", "0")
os.environ.setdefault("GREC_DRIVER_MEMORY", "3g")
# as the commands do, so tests that call a stage directly see its progress lines on stderr
configure_logging()


@pytest.fixture(scope="session")
def spark():
    from etl.session import get_spark

    s = get_spark("grec-tests", master="local[2]", conf={"spark.sql.shuffle.partitions": "4",
                                                         "spark.default.parallelism": "4"})
    yield s
    s.stop()


@pytest.fixture(scope="session", autouse=True)
def mlflow_store(tmp_path_factory):
    """Training runs log to MLflow by default (./mlruns, or a server the shell names): the tests'
    runs go to one throwaway file store instead, subprocesses included."""
    with pytest.MonkeyPatch.context() as mp:
        store = tmp_path_factory.mktemp("mlruns")
        mp.setenv("MLFLOW_TRACKING_URI", store.as_uri())
        yield store


@pytest.fixture()
def lake(tmp_path):
    from etl.lake import Lake

    return Lake(str(tmp_path / "lake"))
