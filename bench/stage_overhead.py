"""Fixed cost of a stage: wall time of stages with an empty body (claim, close, reports), which
every stage of a run pays whatever its data. Prints figures (not a test).

Runs `--stages` empty stages, in `--runs` run ids, against a new temporary lake on local[2] and
prints each one's seconds and their median. The first stage also creates the manifest table and
warms the JVM, so it is left out of the median; every tenth commit of `_runs` writes a Delta
checkpoint, which shows as a slower stage.

    source .grec/env.sh
    python bench/stage_overhead.py          # 2 runs x 7 stages
    # an older checkout in the same session (the script imports the checkout it sits in):
    git worktree add /tmp/old c58e002 && cp bench/stage_overhead.py /tmp/old/bench/
    python /tmp/old/bench/stage_overhead.py
"""
from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from etl.lake import Lake  # noqa: E402
from etl.session import get_spark  # noqa: E402
from etl.stage import Stage  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2, help="run ids (default 2)")
    parser.add_argument("--stages", type=int, default=7, help="empty stages per run (default 7)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    spark = get_spark("grec-bench-stage-overhead", master="local[2]")
    root = tempfile.mkdtemp(prefix="grec_bench_stage_")
    try:
        lake, seconds = Lake(root), []
        for i in range(args.runs * args.stages):
            t0 = time.perf_counter()
            with Stage(spark, lake, f"r{i // args.stages}", f"s{i % args.stages}"):
                pass
            seconds.append(time.perf_counter() - t0)
        print("seconds per empty stage:", " ".join(f"{s:.2f}" for s in seconds))
        print(f"median (first left out): {statistics.median(seconds[1:]):.2f} s")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
