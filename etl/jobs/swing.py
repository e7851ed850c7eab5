"""Swing stage: positive interactions -> item–item weights (docs/method.md §Swing), in two modes, one code path.

Pipeline stage (bronze training positives, before the validation start -> silver.swing_i2i, behind checks):

    spark-submit etl/jobs/swing.py --lake lake [--run-id R] [--positive-label like] [--cutoff 1998-04-09]

Standalone, on any file a data engineer has (ids keep the input's type):

    grec swing --input logs.parquet --user-col uid --item-col iid [--where "event = 'buy'"] \\
               --output swing_out [--output-format delta|parquet] [--preset flink] [--top-k 50]
"""
from __future__ import annotations

import argparse
from datetime import date
from typing import Optional

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.utils import AnalysisException

from etl.checks.report import ExpectationOutcome
from etl.checks.swing import swing_rules, swing_violations
from etl.jobs.shell import InputError, add_common_arguments, job_main
from etl.jobs.stage_inputs import (INTERACTIONS, add_split_arguments, resolve_split, split_policy_from_args,
                                   table_properties)
from etl.lake import Lake, RunManifest, StageRecord
from etl.session import get_spark
from etl.stage import Stage, log
from etl.transforms.swing import SwingParams, SwingPreset, explain_empty, swing, swing_partitions
from schemas import contract
from schemas.params import ConfigError, ParamError, add_param_arguments, given_params, params_from_args
from schemas.tables import ITEMS, SWING_I2I

STAGE = "swing"


def positives(interactions: DataFrame, positive_label: str, cutoff: Optional[date]) -> DataFrame:
    if positive_label not in interactions.columns:
        raise InputError(f"{INTERACTIONS} has no label column {positive_label!r}; columns: {interactions.columns}")
    pos = interactions.where(F.col(positive_label) == 1)
    return pos.where(F.col("date") < F.lit(cutoff)) if cutoff else pos


def label_rows(positive_label: str) -> str:
    return f"positives ({positive_label} = 1) of {INTERACTIONS}"


def heavy_stage_partitions(spark: SparkSession, pos: DataFrame, given: Optional[int]) -> int:
    """--swing-partitions when given, else sized from the positives' row count (one count)."""
    if given is not None:
        return given
    n = swing_partitions(spark, pos.count())
    log(f"swing: {n} partitions for the user-pair stage")
    return n


def swing_stage(spark: SparkSession, lake: Lake, run_id: str, params: SwingParams, *, positive_label: str,
                cutoff: Optional[date], partitions: Optional[int] = None) -> StageRecord:
    """bronze.interactions positives (date < cutoff) -> silver.swing_i2i."""
    config = {**params.as_dict(), "positive_label": positive_label, "cutoff": cutoff.isoformat() if cutoff else None}
    with Stage(spark, lake, run_id, STAGE, config) as st:
        pos = positives(st.read(INTERACTIONS), positive_label, cutoff)
        out = st.check(swing(pos, params, partitions=heavy_stage_partitions(spark, pos, partitions)),
                       swing_rules(params), SWING_I2I)
        if out.isEmpty():
            before = f" before the cutoff {cutoff.isoformat()}" if cutoff else ""
            st.add_outcome(ExpectationOutcome(
                table=SWING_I2I.name, expectation="Swing scores at least one item pair", success=False, observed=0,
                error=f"no item pair from the {label_rows(positive_label)}{before}: {explain_empty(pos, params)}"))
        st.check_empty(swing_violations(out, st.read(ITEMS), params), SWING_I2I)
        st.commit(out, SWING_I2I, {contract.POSITIVE_LABEL.key: positive_label,
                                   contract.CUTOFF.key: cutoff.isoformat() if cutoff else "",
                                   contract.SWING.key: ",".join(f"{k}={v}" for k, v in params.as_dict().items())})
    return st.record


# ---- flags --------------------------------------------------------------------------------------
def add_swing_param_arguments(parser: argparse.ArgumentParser) -> None:
    """Swing parameters (grec's defaults, docs/method.md §Swing; a --preset replaces them, explicit flags override it)."""
    g = parser.add_argument_group("swing")
    g.add_argument("--preset", choices=[p.value for p in SwingPreset], default=None,
                   help="parameter set of a public implementation (flink, alink, paper); default: grec's (docs/method.md §Swing)")
    add_param_arguments(g, SwingParams)
    g.add_argument("--swing-partitions", type=int, default=None,
                   help="partitions of the user-pair stage (default: one per 40,000 positives, at least "
                        "spark.sql.shuffle.partitions)")


def swing_params_from_args(args: argparse.Namespace) -> SwingParams:
    if not args.preset:
        return params_from_args(SwingParams, args)
    given = given_params(SwingParams, args)
    try:
        return SwingParams.preset(args.preset, **given)
    except ParamError as e:
        raise ConfigError(str(e)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, lake_required=False)
    stage = parser.add_argument_group("pipeline stage (--lake)")
    stage.add_argument("--positive-label", default=None,
                       help="label defining a positive (default: bronze.interactions' grec.positive_label)")
    stage.add_argument("--cutoff", type=date.fromisoformat, default=None,
                       help="only positives before this date (YYYY-MM-DD); default: the validation start "
                            "the split flags give, so no held-out label leaks into the item-item edges")
    add_split_arguments(parser)
    alone = parser.add_argument_group("standalone (--input ... --output ...)")
    alone.add_argument("--input", help="input file or folder (CSV, Parquet or a Delta table)")
    alone.add_argument("--format", choices=["csv", "parquet", "delta"], default="parquet", help="input format")
    alone.add_argument("--user-col", default="user_id", help="user id column of the input")
    alone.add_argument("--item-col", default="item_id", help="item id column of the input")
    alone.add_argument("--where", default=None, help="SQL filter selecting the positive rows")
    alone.add_argument("--output", help="output folder")
    alone.add_argument("--output-format", choices=["delta", "parquet"], default="delta")
    add_swing_param_arguments(parser)


def run_standalone(spark: SparkSession, args: argparse.Namespace, params: SwingParams) -> int:
    reader = spark.read.format(args.format)
    if args.format == "csv":
        reader = reader.option("header", "true").option("inferSchema", "true")
    try:
        df = reader.load(args.input)
    except AnalysisException as e:
        raise InputError(f"--input {args.input}: cannot read it as {args.format}: {str(e).splitlines()[0]}") from None
    missing = [c for c in (args.user_col, args.item_col) if c not in df.columns]
    if missing:
        raise InputError(f"--input {args.input}: no column(s) {missing}; columns found: {df.columns}")
    if args.where:
        try:
            df = df.where(args.where)
            df.schema  # analyses the filter now, so a bad --where fails here with its message
        except AnalysisException as e:
            raise InputError(f"--where {args.where!r}: {str(e).splitlines()[0]}") from None
    out = swing(df, params, user_col=args.user_col, item_col=args.item_col,
                partitions=heavy_stage_partitions(spark, df, args.swing_partitions))
    out.write.format(args.output_format).mode("overwrite").save(args.output)
    log(f"swing: wrote {spark.read.format(args.output_format).load(args.output).count():,} rows to {args.output} "
        f"({args.output_format})")
    return 0


def run(args: argparse.Namespace) -> int:
    params = swing_params_from_args(args)
    policy = split_policy_from_args(args)
    if args.input or args.output:
        if not (args.input and args.output):
            raise InputError("standalone mode needs both --input and --output")
        return run_standalone(get_spark("grec-swing"), args, params)
    if not args.lake:
        raise InputError("give --lake (pipeline stage) or --input and --output (standalone)")
    spark = get_spark("grec-swing")
    lake = Lake(args.lake)
    label = args.positive_label or table_properties(spark, lake, INTERACTIONS, args.run_id).get(
        contract.POSITIVE_LABEL.key)
    if not label:
        raise InputError(f"no --positive-label and {INTERACTIONS} has no grec.positive_label property")
    # the version the stage will read: this run's own when it ingested one
    own = RunManifest(lake).own_version(spark, args.run_id, INTERACTIONS)
    cutoff = args.cutoff or resolve_split(lake.read(spark, INTERACTIONS, version=own), policy).val_start
    swing_stage(spark, lake, args.run_id, params, positive_label=label, cutoff=cutoff,
                partitions=args.swing_partitions)
    return 0


if __name__ == "__main__":
    raise SystemExit(job_main(add_arguments, run, description=__doc__))
