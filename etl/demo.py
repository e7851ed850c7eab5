"""`grec demo`: the main job end to end on the embedded default.

Runs the whole ETL on local Spark into a lake folder (the real MovieLens-100K from ../shared when
it is there, else the synthetic generator, and says which), then a short CPU training of E2E-GRec
on the pinned snapshot of that run, and prints the evaluation table and where everything is.

    grec demo --lake lake [--source auto|movielens-100k|synthetic] [--out out/demo] [--epochs 1]
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone

from etl.jobs._main import add_common_arguments
from etl.lake import Lake
from etl.session import get_spark
from etl.sources import load_source
from etl.sources.base import SourceError
from etl.stage import log

SYNTHETIC_FALLBACK = {"rows": 200_000, "users": 4_000, "items": 2_000, "days": 21, "seed": 7}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--source", default="auto", choices=["auto", "movielens-100k", "synthetic"],
                        help="auto: MovieLens-100K when ../shared/data has it, else synthetic")
    parser.add_argument("--out", default="out/demo", help="training output folder")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs (default 1)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto")
    parser.add_argument("--k", type=int, default=20, help="neighbours per node (default 20 keeps the demo quick)")


def run(args: argparse.Namespace) -> int:
    from etl.jobs.pipeline import PipelineConfig, run_pipeline, summary
    from etl.transforms.swing import SwingParams

    spark = get_spark("grec-demo")
    lake = Lake(args.lake)
    run_id = args.run_id or "demo-" + datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    src = None
    if args.source in ("auto", "movielens-100k"):
        try:
            src = load_source(spark, "movielens-100k")
        except SourceError as e:
            if args.source != "auto":
                raise
            log(f"MovieLens-100K not usable ({e}); falling back to synthetic data")
    if src is None:
        src = load_source(spark, "synthetic", **SYNTHETIC_FALLBACK)
    log(f"demo data: {src.description}")
    records = run_pipeline(spark, lake, run_id, src, SwingParams(), PipelineConfig(k=args.k))
    print(summary(records, lake), file=sys.stderr)
    spark.stop()

    from training.cli import main as train_main

    log(f"training e2e_grec on run {run_id} ({args.epochs} epoch(s), device {args.device})")
    code = train_main(["--lake", lake.root, "--run-id", run_id, "--model", "e2e_grec", "--epochs", str(args.epochs),
                       "--device", args.device, "--out", args.out, "--loader", "petastorm"])
    if code == 0:
        print(f"\ndemo done: data {src.name}; lake {lake.root} (run {run_id}); "
              f"reports {lake.root}/_reports/{run_id}/; metrics {args.out}/metrics.md, plot {args.out}/auc_by_day.png")
    return code
