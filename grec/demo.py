"""`grec demo`: the main job end to end on the embedded default.

Runs the whole ETL on local Spark into a lake folder (the real MovieLens-100K from ../shared when
it is there, else the synthetic generator, and says which), then trains the ranker without a graph
(`ltr`) and E2E-GRec on the pinned snapshot of that run, the product's point: `grec compare` with
one setting (no search), early stopping on the validation period and --seeds seeds. It prints the
comparison (AUC per task and period, the lift, the paired lift with its interval) and where the
lift plot and everything else are.

    grec demo --lake lake [--source auto|movielens-100k|synthetic] [--out out/demo] [--epochs 3] [--seeds 2]
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone

from etl.jobs.shell import add_common_arguments
from etl.lake import Lake
from etl.session import get_spark
from etl.sources import load_source
from etl.sources.base import SourceError
from etl.stage import log
from schemas.contract import EXIT_INPUT

SYNTHETIC_FALLBACK = {"rows": 200_000, "users": 4_000, "items": 2_000, "days": 21, "seed": 7}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--source", default="auto", choices=["auto", "movielens-100k", "synthetic"],
                        help="auto: MovieLens-100K when ../shared/data has it, else synthetic")
    parser.add_argument("--out", default="out/demo", help="training output folder")
    parser.add_argument("--epochs", type=int, default=3, help="most training epochs per run (default 3)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per model (default 2)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto")
    parser.add_argument("--k", type=int, default=20, help="neighbours per node (default 20 keeps the demo quick)")


def run(args: argparse.Namespace) -> int:
    from etl.jobs.pipeline import PipelineConfig, run_pipeline, summary
    from etl.transforms.neighbors import NeighborParams

    for flag, value in (("--epochs", args.epochs), ("--seeds", args.seeds)):
        if value < 1:
            print(f"grec demo: error: {flag} must be >= 1, got {value}", file=sys.stderr)
            return EXIT_INPUT
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
    records = run_pipeline(spark, lake, run_id, src, PipelineConfig(neighbors=NeighborParams(k=args.k)))
    log(summary(records, lake))
    spark.stop()

    from training.compare import main as compare_main

    log(f"training ltr and e2e_grec on run {run_id} (up to {args.epochs} epoch(s), {args.seeds} seed(s), "
        f"device {args.device})")
    # The setting MovieLens-100K's grid search chooses for both models (docs/evaluation.md).
    code = compare_main(["--lake", lake.root, "--run", run_id, "--models", "ltr,e2e_grec", "--grid", "lr=0.001",
                         "--grid", "weight_decay=0.00001", "--seeds", str(args.seeds), "--epochs", str(args.epochs),
                         "--device", args.device, "--out", args.out])
    if code == 0:
        print(f"\ndemo done: data {src.description}; lake {lake.root} (run {run_id}); "
              f"reports {lake.root}/_reports/{run_id}/; comparison {args.out}/comparison.md, "
              f"lift plot {args.out}/lift_by_day.png")
    return code
