"""`grec train`: train a model on a pinned snapshot, write its metrics, plot and checkpoint, and log it
to MLflow (training.tracking; --no-tracking to skip).

    grec train --lake lake --run r1 --model e2e_grec --epochs 2 --device cuda --out out/e2e
    torchrun --nproc-per-node 4 -m training.cli --lake lake --run-id r1 --out out/ddp
    grec train --launcher spark --num-processes 4 --lake lake --run r1 --out out/ddp

Every config field is a flag (see `--help`); dotted forms (`--model.id_dim 64`) always work.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Optional, Sequence

from etl.logs import configure_logging
from schemas.contract import EXIT_INPUT
from training.config import ConfigError, Launcher, TrainConfig, add_config_arguments, config_from_args
from training.data.arrow_columns import ColumnError
from training.data.snapshot import SnapshotError
from training.distributed import exit_rank, launched_by_torchrun
from training.launch import LaunchError, launch_on_spark
from training.metrics import to_markdown


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    try:
        cfg = config_from_args(args)
        if cfg.run.launcher is Launcher.SPARK:
            return launch_on_spark(cfg)
    except (ConfigError, LaunchError) as e:
        return _input_error(e)
    return train(cfg)


def train(cfg: TrainConfig) -> int:
    """Fit `cfg` in this process, as one rank when torchrun or TorchDistributor started it; rank 0
    prints the metrics. Both launchers' ranks enter here, so they run the same code."""
    from training.tracking import TrackingError
    from training.train import TrainingError, fit

    try:
        result = fit(cfg)
    except (ConfigError, SnapshotError, ColumnError, TrainingError, TrackingError) as e:
        return _input_error(e)
    if not result.metrics.empty:
        print(to_markdown(result.metrics))
        print(f"{result.examples_per_s:,.0f} examples/s over {result.train_seconds:.1f} s on {result.device}; "
              f"results in {result.out_dir}")
    return 0


def _input_error(e: Exception) -> int:
    print(f"grec train: error: {e}", file=sys.stderr)
    return EXIT_INPUT


def command_main(prog: str, description: Optional[str], add: Callable[[argparse.ArgumentParser], None],
                 run_args: Callable[[argparse.Namespace], int], argv: Optional[Sequence[str]] = None) -> int:
    """A training command's entry point: logging set up, flags from `add`, work by `run_args`."""
    configure_logging()
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add(parser)
    return run_args(parser.parse_args(argv))


def main(argv: Optional[Sequence[str]] = None) -> int:
    return command_main("grec train", __doc__, add_arguments, run, argv)


if __name__ == "__main__":
    code = main()
    if launched_by_torchrun():
        exit_rank(code)
    raise SystemExit(code)
