"""The whole ETL under one run id: ingest -> swing -> graph -> neighbors -> examples -> macro.

    spark-submit etl/jobs/pipeline.py --lake lake --source movielens-100k
    grec etl run --lake lake --source synthetic --rows 1000000 --eval-fraction 0.1 --val-fraction 0.1

Every stage checks its outputs before it commits them; the first stage that fails stops the run
(exit code 2, report path printed) and every table keeps its previous version. Re-running the same
run id replaces its outputs. The summary at the end lists each stage's tables, versions, row
counts, timings and report.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from typing import Callable, Optional

from pyspark.sql import SparkSession

from etl.jobs.shell import InputError, add_common_arguments, job_main
from etl.jobs.stage_inputs import INTERACTIONS, resolve_labels, resolve_split
from etl.jobs.examples import ExamplesConfig, examples_stage
from etl.jobs.graph import graph_stage
from etl.jobs.ingest import IngestConfig, ingest
from etl.jobs.macro import macro_stage
from etl.jobs.neighbors import neighbors_stage
from etl.jobs.swing import add_swing_param_arguments, swing_params_from_args, swing_stage
from etl.lake import Lake, RunManifest, StageRecord
from etl.session import get_spark
from etl.sources import SourceData, add_source_arguments, load_source_from_args
from etl.stage import log
from etl.transforms.macro import MacroParams
from etl.transforms.neighbors import NeighborParams
from etl.transforms.split import SplitPolicy
from etl.transforms.swing import SwingParams
from schemas import contract
from schemas.params import add_param_arguments, params_from_args

STAGES = ("ingest", "swing", "graph", "neighbors", "examples", "macro")


@dataclass(frozen=True)
class PipelineConfig:
    """Every stage's parameters, as the stages declare them (each stage's own defaults unless given).

    Args:
        ingest: ingest thresholds.
        split: the train/val/eval time split (default: the last 10% of rows evaluated, the 10%
            before validated, the graph built from the rest).
        swing: Swing's parameters (docs/method.md §Swing).
        swing_partitions: partitions of Swing's user-pair stage (default: sized from the positives).
        neighbors: neighbour sampling (docs/method.md §Neighbours).
        examples: gold.examples' list length and layout (the list length defaults to neighbors.k).
        macro: MGOE's user clustering. Its seed follows neighbors.seed (the pipeline's --graph-seed).
    """

    ingest: IngestConfig = IngestConfig()
    split: SplitPolicy = SplitPolicy()
    swing: SwingParams = SwingParams()
    swing_partitions: Optional[int] = None
    neighbors: NeighborParams = NeighborParams()
    examples: ExamplesConfig = ExamplesConfig()
    macro: MacroParams = MacroParams()


def run_pipeline(spark: SparkSession, lake: Lake, run_id: str, src: Optional[SourceData],
                 config: PipelineConfig = PipelineConfig(), stages: tuple[str, ...] = STAGES) -> list[StageRecord]:
    """Run `stages` in order; returns their manifest records. `src` is needed only for ingest."""
    records: list[StageRecord] = []

    def step(name: str, fn: Callable[[], StageRecord]) -> None:
        if name not in stages:
            return
        log(f"[{len(records) + 1}/{len(stages)}] {name}")
        records.append(fn())

    if "ingest" in stages:
        if src is None:
            raise InputError("the ingest stage needs a --source")
        step("ingest", lambda: ingest(spark, lake, run_id, src, config.ingest))
    # this run's own bronze version when it ingested one: a concurrent run may have replaced it since
    own = RunManifest(lake).own_version(spark, run_id, INTERACTIONS)
    labels = resolve_labels(spark, lake, None, run_id)
    positive = lake.properties(spark, INTERACTIONS, own).get(contract.POSITIVE_LABEL.key, labels[0])
    # Swing sees training positives only: the validation start is the graph window's end.
    cutoff = resolve_split(lake.read(spark, INTERACTIONS, version=own), config.split).val_start
    step("swing", lambda: swing_stage(spark, lake, run_id, config.swing, positive_label=positive, cutoff=cutoff,
                                      partitions=config.swing_partitions))
    step("graph", lambda: graph_stage(spark, lake, run_id, labels, config.split))
    step("neighbors", lambda: neighbors_stage(spark, lake, run_id, config.neighbors))
    step("examples", lambda: examples_stage(spark, lake, run_id, labels, config.examples))
    step("macro", lambda: macro_stage(spark, lake, run_id, labels, config.macro))
    # once per run rather than per stage: telling whether it is due costs a scan of the log
    RunManifest(lake).compact(spark)
    return records


def summary(records: list[StageRecord], lake: Lake) -> str:
    lines = [f"run {records[0].run_id} on {lake.root}" if records else "no stage ran",
             f"{'stage':<10} {'status':<9} {'seconds':>8}  outputs (table@version rows)"]
    for r in records:
        outs = ", ".join(f"{t.table}@v{t.version} {t.rows:,}" for t in r.outputs)
        lines.append(f"{r.stage:<10} {r.status:<9} {r.duration_s or 0:>8.1f}  {outs}")
    lines += [f"reports: {lake.root}/_reports/{records[0].run_id}/" if records else "",
              f"snapshot for training: grec train --lake {lake.root} --run {records[0].run_id}" if records else ""]
    return "\n".join(lines)


# Flags that several stages declare under one name, renamed in the pipeline: (section, field) -> flag.
# None: no flag of its own here (the examples' k follows --k; the KMeans seed follows --graph-seed).
RENAMED: dict[str, dict[str, Optional[str]]] = {"neighbors": {"seed": "graph-seed"}, "examples": {"k": None},
                                                "macro": {"seed": None}}
SECTIONS = {"ingest": IngestConfig, "split": SplitPolicy, "neighbors": NeighborParams, "examples": ExamplesConfig,
            "macro": MacroParams}


def add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stages", default=",".join(STAGES),
                        help=f"comma list of stages to run, in pipeline order (default: all: {','.join(STAGES)})")
    for section, cls in SECTIONS.items():
        add_param_arguments(parser.add_argument_group(section), cls, flags=RENAMED.get(section, {}),
                            dest_prefix=f"{section}.")
    add_swing_param_arguments(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    add_source_arguments(parser, required=False)
    add_pipeline_arguments(parser)


def config_from_args(args: argparse.Namespace) -> tuple[PipelineConfig, tuple[str, ...]]:
    """Every stage's parameters from the flags, all checked: a bad value stops the run before any write."""
    stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise InputError(f"--stages: unknown {unknown}; stages: {','.join(STAGES)}")
    stages = tuple(s for s in STAGES if s in stages)
    sections = {name: params_from_args(cls, args, flags=RENAMED.get(name, {}), dest_prefix=f"{name}.")
                for name, cls in SECTIONS.items()}
    sections["macro"] = replace(sections["macro"], seed=sections["neighbors"].seed)
    return PipelineConfig(**sections, swing=swing_params_from_args(args), swing_partitions=args.swing_partitions), stages


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    config, stages = config_from_args(args)
    spark = get_spark("grec-pipeline")
    lake = Lake(args.lake)
    if "ingest" in stages and not args.source:
        raise InputError("the ingest stage needs --source (or leave it out with --stages)")
    src = load_source_from_args(spark, args) if "ingest" in stages else None
    if src is not None:
        log(f"data: {src.description}")
    records = run_pipeline(spark, lake, args.run_id, src, config, stages)
    log(summary(records, lake))
    log(f"pipeline done in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(job_main(add_arguments, run, description=__doc__))
