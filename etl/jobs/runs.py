"""List a lake's run manifest: per run and stage, status, timings and the table versions written.

    grec runs --lake lake [--run R]
"""
from __future__ import annotations

import argparse
import json

from pyspark.sql import functions as F

from etl.lake import Lake, RunManifest
from etl.session import get_spark


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lake", required=True, help="lake root")
    parser.add_argument("--run", "--run-id", dest="run", default=None, help="only this run id")


def run(args: argparse.Namespace) -> int:
    spark = get_spark("grec-runs")
    rows = (RunManifest(Lake(args.lake)).records(spark, args.run)
            .orderBy(F.col("started_at").desc()).collect())
    for r in rows:
        outs = ", ".join(f"{o['table']}@v{o['version']}" for o in json.loads(r["outputs"]))
        dur = f"{r['duration_s']:.1f}s" if r["duration_s"] is not None else "-"
        print(f"{r['run_id']:<24} {r['stage']:<10} {r['status']:<9} {dur:>8}  {outs or r['message'] or ''}")
    return 0
