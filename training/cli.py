"""`grec train`: train a model on a pinned snapshot, write its metrics, plot and checkpoint, and log it
to MLflow (training.tracking; --no-tracking to skip).

    grec train --lake lake --run r1 --model e2e_grec --epochs 2 --device cuda --out out/e2e
    torchrun --nproc-per-node 4 -m training.cli --lake lake --run-id r1 --out out/ddp

Every config field is a flag (see `--help`); dotted forms (`--model.id_dim 64`) always work.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from training.config import ConfigError, add_config_arguments, config_from_args
from training.data.arrow_columns import ColumnError
from training.data.snapshot import SnapshotError
from training.metrics import to_markdown

EXIT_INPUT = 1  # the exit code of etl/jobs/_main for input the user must fix (not imported: it needs Spark)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from training.tracking import TrackingError
    from training.train import TrainingError, fit

    try:
        cfg = config_from_args(args)
        result = fit(cfg)
    except (ConfigError, SnapshotError, ColumnError, TrainingError, TrackingError) as e:
        print(f"grec train: error: {e}", file=sys.stderr)
        return EXIT_INPUT
    if not result.metrics.empty:
        print(to_markdown(result.metrics))
        print(f"{result.examples_per_s:,.0f} examples/s over {result.train_seconds:.1f} s on {result.device}; "
              f"results in {result.out_dir}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="grec train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
