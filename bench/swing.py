"""Swing benchmark: grec's transform against a straightforward self-join, and a plain-Python floor.

Prints a table of figures (not a test). Positives come from the synthetic source (etl.sources.synthetic:
Zipf item popularity, Pareto user activity), every generated row taken as a positive, with
users = rows / 50 and items = rows / 200 (the source's default ratios), ids as longs; they are written
to Parquet first so generation is not timed.

    source .grec/env.sh
    python bench/swing.py --sizes 1e5,1e6,1e7 --check

Per run: wall time (computing every column of the whole result once), task CPU time of all its stages (the
robust figure on a shared machine: wall and task run times stretch with the load of other
processes), T1 = Σ_i C(|S_i|, 2) (user pair, common item) triples after the caps and T1 per wall
second, and the heaviest stage's slowest / median task run time (Spark REST API, stages of the
run's job group). Scaling exponents are least-squares slopes of log(wall) and log(CPU) on
log(rows). The baseline is the textbook plan, with the same definition: self-join the sampled
positives on the item, group by user pair, explode every ordered common-item pair, sum. It runs up
to --baseline-max rows and is cancelled after --baseline-timeout seconds; a size it does not finish
is reported as such, with the time its fitted exponent projects. The Python floor is a
single-process, pair-centric dict implementation (at 10^5 only; excludes the collect). Each row also
carries the machine's 1-minute load average before and after it: on a shared machine a load above
the 2 cores of local[2] stretches wall times.
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyspark.sql import DataFrame, Observation, SparkSession, Window  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from etl.session import get_spark  # noqa: E402
from etl.sources.synthetic import SyntheticOptions, interactions_table  # noqa: E402
from etl.transforms.swing import ROWS_PER_PARTITION, SwingParams, sample_key, swing  # noqa: E402


@dataclass
class Figures:
    impl: str
    rows: int
    wall_s: float
    cpu_s: float
    t1: int
    out_rows: int
    n_tasks: int = 0
    task_median_s: float = 0.0
    task_max_s: float = 0.0
    cpu_skew: float = float("nan")
    load_before: float = float("nan")
    load_after: float = float("nan")

    @property
    def triples_per_s(self) -> float:
        return self.t1 / self.wall_s if self.wall_s else 0.0

    @property
    def skew(self) -> float:
        return self.task_max_s / self.task_median_s if self.task_median_s else float("nan")


# ---- data ------------------------------------------------------------------------------------------

def write_positives(spark: SparkSession, rows: int, seed: int, path: str) -> None:
    opts = SyntheticOptions(rows=rows, users=max(1, rows // 50), items=max(4, rows // 200), seed=seed)
    (interactions_table(spark, opts)
     .select(F.col("user_id").cast("long").alias("user_id"), F.col("item_id").cast("long").alias("item_id"))
     .write.mode("overwrite").parquet(path))


def pair_item_triples(pos: DataFrame, p: SwingParams) -> int:
    """T1 = Σ_i C(|S_i|, 2): the (user pair, common item) triples any exact method must touch."""
    distinct = pos.select("user_id", "item_id").distinct()
    n_items = distinct.groupBy("user_id").agg(F.count("*").alias("n"))
    kept = distinct.join(n_items.where(F.col("n").between(p.min_user_items, p.max_user_items or 1 << 62)),
                         "user_id")
    per_item = kept.groupBy("item_id").agg(F.count("*").alias("n"))
    m = F.least(F.col("n"), F.lit(p.max_users_per_item or 1 << 62))
    return int(per_item.agg(F.sum(m * (m - 1) / 2)).first()[0] or 0)


# ---- the baseline: a straightforward self-join ------------------------------------------------------

def naive_swing(pos: DataFrame, p: SwingParams) -> DataFrame:
    """Textbook plan with the same definition (sample by the same key, |C_uv| after the sample)."""
    d = pos.select("user_id", "item_id").distinct()
    n_items = d.groupBy("user_id").agg(F.count("*").alias("n"))
    n_items = n_items.where(F.col("n").between(p.min_user_items, p.max_user_items or 1 << 62))
    w = n_items.select("user_id", F.pow(F.lit(p.alpha1) + F.col("n"), F.lit(-p.beta_user)).alias("w"))
    d = d.join(n_items.select("user_id"), "user_id")
    if p.max_users_per_item is not None:
        order = Window.partitionBy("item_id").orderBy(sample_key(p.seed, "item_id", "user_id"), "user_id")
        d = d.withColumn("r", F.row_number().over(order)).where(F.col("r") <= p.max_users_per_item).drop("r")
    a, b = d.alias("a"), d.alias("b")
    pairs = a.join(b, (F.col("a.item_id") == F.col("b.item_id")) & (F.col("a.user_id") < F.col("b.user_id"))) \
        .select(F.col("a.user_id").alias("u"), F.col("b.user_id").alias("v"), F.col("a.item_id").alias("i"))
    common = pairs.groupBy("u", "v").agg(F.collect_list("i").alias("items"))
    common = (common.join(w.select(F.col("user_id").alias("u"), F.col("w").alias("wu")), "u")
              .join(w.select(F.col("user_id").alias("v"), F.col("w").alias("wv")), "v")
              .withColumn("c", F.col("wu") * F.col("wv") / (F.lit(p.alpha2) + F.size("items"))))
    contrib = (common.select("c", "items", F.explode("items").alias("i"))
               .select("c", "i", F.explode("items").alias("j")).where(F.col("i") != F.col("j")))
    scores = contrib.groupBy("i", "j").agg(F.sum("c").alias("score"), F.count("*").alias("m"))
    rank = F.row_number().over(Window.partitionBy("i").orderBy(F.desc("score"), "j"))
    out = scores.withColumn("rank", rank)
    return out.where(F.col("rank") <= p.top_k) if p.top_k else out


# ---- the floor: plain Python, pair-centric ----------------------------------------------------------

def python_swing(rows: list[tuple[int, int, int]], p: SwingParams) -> dict[tuple[int, int], float]:
    """rows: (user, item, sample key). All item pairs' scores (no top_k), same definition."""
    items_of: dict[int, dict[int, int]] = defaultdict(dict)
    for u, i, h in rows:
        items_of[u][i] = h
    lo, hi = p.min_user_items, p.max_user_items or math.inf
    kept = {u: its for u, its in items_of.items() if lo <= len(its) <= hi}
    w = {u: (p.alpha1 + len(its)) ** (-p.beta_user) for u, its in kept.items()}
    members: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for u, its in kept.items():
        for i, h in its.items():
            members[i].append((h, u))
    common: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, m in members.items():
        sample = sorted(u for _, u in sorted(m)[:p.max_users_per_item or None])
        for u, v in itertools.combinations(sample, 2):
            common[(u, v)].append(i)
    score: dict[tuple[int, int], float] = defaultdict(float)
    for (u, v), its in common.items():
        if len(its) >= 2:
            c = w[u] * w[v] / (p.alpha2 + len(its))
            for i, j in itertools.combinations(sorted(its), 2):
                score[(i, j)] += c
    return score


# ---- measuring --------------------------------------------------------------------------------------

def _get(url: str):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.load(r)


def stage_figures(spark: SparkSession, group: str) -> tuple[float, int, float, float, float]:
    """Task CPU s of all the group's stages; its heaviest stage's tasks, median and max task run
    time s, and max / median task CPU time.

    Task CPU time is the robust figure on a shared machine: wall and run times stretch with load.
    """
    base = spark.sparkContext.uiWebUrl
    if not base:
        return 0.0, 0, 0.0, 0.0, float("nan")
    app = f"{base}/api/v1/applications/{spark.sparkContext.applicationId}"
    stage_ids = {s for j in _get(f"{app}/jobs") if j.get("jobGroup") == group for s in j["stageIds"]}
    done = [a for sid in stage_ids for a in _get(f"{app}/stages/{sid}") if a["status"] == "COMPLETE"]
    if not done:
        return 0.0, 0, 0.0, 0.0, float("nan")
    cpu = sum(a["executorCpuTime"] for a in done) / 1e9
    best = max(done, key=lambda a: a["executorRunTime"])
    q = _get(f"{app}/stages/{best['stageId']}/{best['attemptId']}/taskSummary?quantiles=0.5,1.0")
    med, mx = q["executorRunTime"]
    cpu_med, cpu_max = q["executorCpuTime"]
    return cpu, best["numTasks"], med / 1000, mx / 1000, cpu_max / cpu_med if cpu_med else float("nan")


def load_average() -> float:
    return os.getloadavg()[0]


def timed(spark: SparkSession, impl: str, rows: int, t1: int, build: Callable[[], DataFrame],
          timeout_s: Optional[float] = None) -> Optional[Figures]:
    """Compute every column of the whole result once, timed: written to Spark's `noop` sink (no
    column can be pruned away, nothing is kept), rows counted on the way by an Observation.

    None when it ran past `timeout_s`: its jobs are cancelled then.
    """
    sc = spark.sparkContext
    group = f"{impl}-{rows}"
    timer = threading.Timer(timeout_s, sc.cancelJobGroup, args=(group,)) if timeout_s else None
    load_before = load_average()
    sc.setJobGroup(group, group)
    t0 = time.perf_counter()
    counted = Observation(f"rows-{group}")
    out = build().observe(counted, F.count(F.lit(1)).alias("rows"))
    try:
        if timer:
            timer.start()
        out.write.format("noop").mode("overwrite").save()
        wall = time.perf_counter() - t0
        n_out = counted.get["rows"]
    except Exception:
        if timer and timer.finished.is_set():
            return None
        raise
    finally:
        if timer:
            timer.cancel()
        sc.setJobGroup("other", "other")
    cpu, tasks, med, mx, cpu_skew = stage_figures(spark, group)
    return Figures(impl, rows, wall, cpu, t1, n_out, tasks, med, mx, cpu_skew, load_before, load_average())


def slope(xs: list[float], ys: list[float]) -> float:
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    den = sum((a - mx) ** 2 for a in lx)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / den if den else float("nan")


def check_agreement(grec: DataFrame, other: DataFrame) -> float:
    """Max relative score difference over the pairs both return (both with top_k off)."""
    j = grec.select(F.col("item_id").alias("i"), F.col("neighbor_id").alias("j"), F.col("score").alias("a")) \
        .join(other.select("i", "j", F.col("score").alias("b")), ["i", "j"], "full_outer")
    r = j.agg(F.max(F.abs(F.col("a") - F.col("b")) / F.col("b")).alias("rel"),
              F.sum((F.col("a").isNull() | F.col("b").isNull()).cast("long")).alias("unmatched")).first()
    if r["unmatched"]:
        raise AssertionError(f"grec and the baseline disagree on {r['unmatched']} item pairs")
    return float(r["rel"] or 0.0)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1e5,1e6", help="positive rows per run, comma separated")
    ap.add_argument("--partitions", type=int, default=None,
                    help="spark.sql.shuffle.partitions (default: max(16, rows / 40000), i.e. 250 at 10^7, "
                         "so each task's gathered tails and partial sums stay in memory)")
    ap.add_argument("--baseline-max", type=float, default=1e6, help="largest size the baseline runs at")
    ap.add_argument("--baseline-timeout", type=float, default=600.0,
                    help="seconds after which a baseline run is cancelled and reported as not finished")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--no-python", action="store_true", help="skip the Python floor (run at 1e5 only)")
    ap.add_argument("--check", action="store_true",
                    help="at sizes <= 10^5: check grec against the baseline with top_k off (max relative difference)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default=None, help="where the generated Parquet goes (default: a temp dir)")
    args = ap.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    # 4g, not more: on a shared 23 GB machine a bigger heap invites the kernel's OOM killer.
    os.environ.setdefault("GREC_DRIVER_MEMORY", "4g")
    spark = get_spark("grec-bench-swing", master="local[2]")
    params = SwingParams()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="grec-bench-swing-"))
    print(f"local[2], driver memory {os.environ['GREC_DRIVER_MEMORY']}, params {params}", flush=True)
    results: list[Figures] = []
    baseline_missing: dict[int, str] = {}
    try:
        for n in sizes:
            path = str(work / f"positives-{n}")
            write_positives(spark, n, args.seed, path)
            pos = spark.read.parquet(path)
            partitions = args.partitions or max(16, n // ROWS_PER_PARTITION)
            spark.conf.set("spark.sql.shuffle.partitions", str(partitions))
            t1 = pair_item_triples(pos, params)
            print(f"rows {n:.0e}: shuffle partitions {partitions}, T1 = {t1:,} pair-item triples", flush=True)
            runs = [("grec", lambda: swing(pos, params), None)]
            if args.no_baseline:
                baseline_missing[n] = "--no-baseline"
            elif n > args.baseline_max:
                baseline_missing[n] = f"above --baseline-max {args.baseline_max:.0e}"
            else:
                runs.append(("self-join", lambda: naive_swing(pos, params), args.baseline_timeout))
            for impl, build, timeout_s in runs:
                f = timed(spark, impl, n, t1, build, timeout_s)
                if f is None:
                    baseline_missing[n] = f"cancelled after --baseline-timeout {timeout_s:.0f} s"
                    print(f"| {impl} | {n:.0e} | not finished: {baseline_missing[n]} |", flush=True)
                    continue
                results.append(f)
                print(_row(f), flush=True)
            if n in baseline_missing:
                print(f"  self-join not run at {n:.0e}: {baseline_missing[n]}", flush=True)
            if args.check and n <= 100_000:
                off = SwingParams(top_k=None)
                diff = check_agreement(swing(pos, off), naive_swing(pos, off))
                print(f"  grec vs self-join, top_k off: max rel diff {diff:.2e}")
            if not args.no_python and n <= 100_000:
                keyed = pos.select("user_id", "item_id", sample_key(params.seed, "item_id", "user_id"))
                rows = [tuple(r) for r in keyed.collect()]
                load_before, t0 = load_average(), time.perf_counter()
                score = python_swing(rows, params)
                wall = time.perf_counter() - t0
                f = Figures("python", n, wall, wall, t1, 2 * len(score), load_before=load_before,
                            load_after=load_average())
                results.append(f)
                print(_row(f) + "  (all pairs, no top_k; excludes collect)", flush=True)
        print("\n" + _table(results, baseline_missing))
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


_HEAD = ("| impl | rows | wall s | task CPU s | T1 triples | T1/s (wall) | out rows | tasks | median task s | "
         "max task s | max/median run | max/median CPU | load before/after |")


def _row(f: Figures) -> str:
    return (f"| {f.impl} | {f.rows:.0e} | {f.wall_s:.1f} | {f.cpu_s:.1f} | {f.t1:,} | {f.triples_per_s:,.0f} | "
            f"{f.out_rows:,} | {f.n_tasks} | {f.task_median_s:.2f} | {f.task_max_s:.2f} | {f.skew:.2f} | "
            f"{f.cpu_skew:.2f} | {f.load_before:.1f} / {f.load_after:.1f} |")


def _table(results: list[Figures], baseline_missing: dict[int, str]) -> str:
    lines = [_HEAD, "|" + "---|" * 13, *(_row(f) for f in results)]
    for impl in sorted({f.impl for f in results}):
        fs = [f for f in results if f.impl == impl]
        if len(fs) >= 2:
            rows = [f.rows for f in fs]
            lines.append(f"\n{impl}: wall ~ rows^{slope(rows, [f.wall_s for f in fs]):.2f}, "
                         f"task CPU ~ rows^{slope(rows, [f.cpu_s for f in fs]):.2f}, "
                         f"T1 ~ rows^{slope(rows, [float(f.t1) for f in fs]):.2f}")
    measured = [f for f in results if f.impl == "self-join"]
    for n, why in sorted(baseline_missing.items()):
        line = f"self-join at {n:.0e}: not run ({why})"
        if len(measured) >= 2:
            line += f"; projected {_project(measured, n):,.0f} s wall from its exponent"
        lines.append(line)
    by = {(f.impl, f.rows): f for f in results}
    for (impl, n), f in sorted(by.items()):
        if impl == "self-join" and ("grec", n) in by:
            g = by[("grec", n)]
            lines.append(f"speed-up over the self-join at {n:.0e}: {f.wall_s / g.wall_s:.1f}x wall, "
                         f"{f.cpu_s / g.cpu_s:.1f}x task CPU")
    return "\n".join(lines)


def _project(fs: list[Figures], rows: int) -> float:
    """Wall time at `rows` on the least-squares line through log(wall) ~ log(rows) of `fs`."""
    b = slope([f.rows for f in fs], [f.wall_s for f in fs])
    lx = sum(math.log(f.rows) for f in fs) / len(fs)
    ly = sum(math.log(f.wall_s) for f in fs) / len(fs)
    return math.exp(ly + b * (math.log(rows) - lx))


if __name__ == "__main__":
    raise SystemExit(main())
