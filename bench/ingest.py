"""Ingest benchmark: rows/s of the ingest stage on synthetic data and the share spent in GX checks.

Prints figures (not a test). Each size runs the whole stage (flag rows, quarantine split, GX suites
on interactions/users/items, Delta commits, manifest) into a fresh temporary lake on local[2].

    source .grec/env.sh
    python bench/ingest.py --rows 1000000 10000000
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from etl.jobs.ingest import ingest  # noqa: E402
from etl.lake import Lake  # noqa: E402
from etl.session import get_spark  # noqa: E402
from etl.sources import load_source  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=float, nargs="+", default=[1e6], help="synthetic rows per run")
    p.add_argument("--master", default="local[2]")
    args = p.parse_args()
    spark = get_spark("grec-bench-ingest", master=args.master)
    print(f"{'rows':>12} {'stage s':>9} {'rows/s':>10} {'GX s':>7} {'GX share':>9}")
    for n in (int(r) for r in args.rows):
        src = load_source(spark, "synthetic", rows=n, users=max(1000, n // 50), items=max(500, n // 200), seed=1)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            lake = Lake(tmp)
            ingest(spark, lake, "bench", src)
            secs = time.perf_counter() - t0
            report = Path(lake.report_path("bench", "ingest").removeprefix("file://") + ".json")
            gx = json.loads(report.read_text())["check_seconds"]
        print(f"{n:>12,} {secs:>9.1f} {n / secs:>10,.0f} {gx:>7.1f} {100 * gx / secs:>8.1f}%", flush=True)


if __name__ == "__main__":
    main()
