"""The shell of a lake stage job: its flags and its `run(args)`, declared once per stage.

Every stage after Swing runs the same way from the command line: the common flags (`--lake`,
`--run-id`), `--labels` where the stage is per task, the stage's own options; then the options are
parsed and validated before Spark starts, the labels resolved against the lake, and the stage
function called. A stage module declares that as a `StageJob` and exports its two methods as the
module-level `add_arguments` and `run` that `grec etl <stage>` and `spark-submit` use.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

from etl.jobs.shell import add_common_arguments
from etl.jobs.stage_inputs import add_labels_argument, resolve_labels
from etl.lake import Lake, StageRecord
from etl.session import get_spark
from schemas.params import add_param_arguments, params_from_args

Options = TypeVar("Options")


@dataclass(frozen=True)
class StageJob(Generic[Options]):
    """Args:
        app_name: the Spark application name.
        add_options: adds the stage's own flags to the parser.
        options: builds (and validates) the stage's options from the parsed flags.
        stage: `stage(spark, lake, run_id, [labels,] options) -> StageRecord`.
        labels: whether the stage takes the task labels (`--labels`, default: the lake's).
    """
    app_name: str
    add_options: Callable[[argparse.ArgumentParser], None]
    options: Callable[[argparse.Namespace], Options]
    stage: Callable[..., StageRecord]
    labels: bool = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_common_arguments(parser)
        if self.labels:
            add_labels_argument(parser)
        self.add_options(parser)

    def run(self, args: argparse.Namespace) -> int:
        options = self.options(args)  # a bad value fails here, before Spark starts
        spark = get_spark(self.app_name)
        lake = Lake(args.lake)
        labels: list[Any] = [resolve_labels(spark, lake, args.labels, args.run_id)] if self.labels else []
        self.stage(spark, lake, args.run_id, *labels, options)
        return 0


def params_job(app_name: str, group: str, params_type: type[Options], stage: Callable[..., StageRecord],
               labels: bool = True) -> StageJob[Options]:
    """A `StageJob` whose options are one `schemas.params` dataclass, its flags under `group` in --help."""
    return StageJob(app_name,
                    lambda parser: add_param_arguments(parser.add_argument_group(group), params_type),
                    lambda args: params_from_args(params_type, args), stage, labels)
