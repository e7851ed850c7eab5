"""`--launcher spark`: DDP ranks started by pyspark's TorchDistributor on the Spark driver.

TorchDistributor in local mode runs torchrun on the driver, so every rank joins its process group
through training.distributed and trains through `training.cli.train`, exactly as the ranks of
`torchrun -m training.cli` do. A running SparkSession (a notebook's, spark-submit's) is used as it
is; from a shell a local one is started for the launch only, so plain `grec train` never starts a JVM.
"""
from __future__ import annotations

import logging
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, cast

import torch

from training.config import TrainConfig
from training.distributed import launched_by_torchrun

log = logging.getLogger(__name__)

# The folder holding the `training` package: the ranks must import the code this driver runs.
CODE_ROOT = Path(__file__).resolve().parents[1]


class LaunchError(RuntimeError):
    """The ranks cannot be started (no pyspark, too few GPUs, no Spark); the message says what to change."""


def launch_on_spark(cfg: TrainConfig) -> int:
    """Train `cfg` in `cfg.run.num_processes` DDP ranks started by TorchDistributor; their exit code."""
    from training.cli import train  # imported by name so the ranks unpickle it by reference, even under -m
    from training.train import resolve_device

    if launched_by_torchrun():
        raise LaunchError("--launcher spark starts its own ranks: run it without torchrun")
    try:
        from pyspark.ml.torch.distributor import TorchDistributor
    except ImportError as e:
        raise LaunchError(f"--launcher spark needs pyspark >= 3.5 ({e}); or start the ranks with "
                          "torchrun --nproc-per-node N -m training.cli") from e
    n = cfg.run.num_processes
    use_gpu = resolve_device(cfg.run.device).type == "cuda"
    gpus = torch.cuda.device_count() if use_gpu else 0
    if use_gpu and gpus < n:
        raise LaunchError(f"--num-processes {n} needs one GPU per rank and {gpus} are visible: lower "
                          "--num-processes or give --device cpu")
    with _driver_session(gpus), _ranks_import_this_checkout():
        try:
            distributor = TorchDistributor(num_processes=n, local_mode=True, use_gpu=use_gpu)
        except RuntimeError as e:  # the session's conf: GPUs undeclared on the driver, TLS on
            raise LaunchError(f"--launcher spark: TorchDistributor refused this Spark session ({e}); on GPUs the "
                              "session must declare the driver's (spark.driver.resource.gpu.amount and "
                              ".discoveryScript)") from e
        log.info("TorchDistributor: %d rank(s) on the driver, %s", n, "one GPU each" if use_gpu else "CPU (gloo)")
        # In local mode every rank writes its return value to one file; the ranks refuse bad input together.
        return cast(int, distributor.run(train, cfg))


@contextmanager
def _driver_session(gpus: int) -> Iterator[None]:
    """The active SparkSession, or a local one for the duration (TorchDistributor reads its conf).

    TorchDistributor with use_gpu picks the ranks' GPUs from the driver's Spark resources, so a
    session started here declares the visible GPUs through a discovery script. A running session's
    resources are its cluster's to declare (Databricks does on GPU clusters).
    """
    from pyspark.errors import PySparkRuntimeError
    from pyspark.sql import SparkSession

    try:
        SparkSession.active()  # the session TorchDistributor will read
        running = True
    except PySparkRuntimeError:
        running = False
    if running:
        yield
        return
    from etl.session import SparkSetupError, get_spark

    with tempfile.TemporaryDirectory(prefix="grec-launch-") as tmp:
        conf = {}
        if gpus:
            # Addresses index CUDA_VISIBLE_DEVICES when it is set (pyspark's _get_gpus_owned), so 0..n-1.
            script = Path(tmp) / "gpus.sh"
            addresses = ",".join(f'"{i}"' for i in range(gpus))
            script.write_text(f"#!/bin/sh\necho '{{\"name\": \"gpu\", \"addresses\": [{addresses}]}}'\n")
            script.chmod(0o755)
            conf = {"spark.driver.resource.gpu.amount": str(gpus),
                    "spark.driver.resource.gpu.discoveryScript": str(script)}
        try:
            # One core: the ranks are torchrun's processes, not Spark tasks.
            spark = get_spark("grec-train", master="local[1]", conf=conf)
        except SparkSetupError as e:
            raise LaunchError(f"--launcher spark could not start Spark: {e}") from e
        try:
            yield
        finally:
            spark.stop()


@contextmanager
def _ranks_import_this_checkout() -> Iterator[None]:
    """Put CODE_ROOT first on the ranks' PYTHONPATH for the launch.

    The ranks are fresh interpreters (TorchDistributor passes them this process's environment) that
    import `training` to unpickle the entry point; a notebook's sys.path entries do not reach them,
    and an installed copy of grec elsewhere must not shadow this one.
    """
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(CODE_ROOT), *([old] if old else [])])
    try:
        yield
    finally:
        if old is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = old
