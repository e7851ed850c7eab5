"""Pipeline benchmark: per-stage wall time, rows in/out and rows/s of a whole `grec etl run`, and
the neighbour-sampling rate in nodes/s.

Prints figures (not a test). Runs the pipeline through the same entry point as `grec etl run`
(etl.jobs.pipeline) on `--master` (default local[2]) into `--lake` (default: a new temporary
folder, deleted afterwards unless --keep), then reads every figure from the run's `_runs`
manifest rows: duration_s per stage, the table versions each stage read and wrote and their row
counts. Every flag it does not know goes to the pipeline.

    source .grec/env.sh
    python bench/pipeline.py --source movielens-100k
    python bench/pipeline.py --source synthetic --rows 1000000
    python bench/pipeline.py --report-only --lake lake --run-id ml1    # figures of an existing run

Columns: seconds = the stage's wall time from the manifest (checks and commits included);
rows in = the rows of every table version the stage read (ingest: rows read from the source);
rows out = the rows of every table version it wrote; in rows/s = rows in / seconds. nodes/s (the
neighbors stage) = neighbour lists written / seconds. checks = the seconds of the stage's
validation (its check report's check_seconds: the frames it validates are computed first and
count as the stage's work), share = checks / seconds. Then each table the run wrote: its files and
their size at the version the run wrote. The machine's load average (1/5/15 min) is
printed at the start and the end, and the mean 1-min load sampled during the run, since a shared
machine slows every figure.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from etl.jobs import pipeline  # noqa: E402
from etl.hadoop import filesystem  # noqa: E402
from etl.jobs.shell import job_main  # noqa: E402
from etl.lake import Lake, RunManifest, TableVersion  # noqa: E402
from etl.session import get_spark  # noqa: E402
from schemas.contract import EXIT_OK  # noqa: E402
from schemas.tables import NEIGHBORS  # noqa: E402


@dataclass(frozen=True)
class StageFigures:
    stage: str
    status: str
    seconds: float
    inputs: list[TableVersion]
    outputs: list[TableVersion]
    check_seconds: Optional[float] = None  # validation alone, from the stage's check report

    @property
    def check_share(self) -> Optional[float]:
        return self.check_seconds / self.seconds if self.check_seconds is not None and self.seconds > 0 else None

    @property
    def rows_in(self) -> int:
        return sum(t.rows or 0 for t in self.inputs)

    @property
    def rows_out(self) -> int:
        return sum(t.rows or 0 for t in self.outputs)

    def rows_of(self, table: str) -> Optional[int]:
        return next((t.rows for t in self.outputs if t.table == table), None)


@dataclass
class LoadSampler:
    """Samples the 1-minute load average every `every_s` seconds in a daemon thread."""

    every_s: float = 15.0
    samples: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> "LoadSampler":
        def loop() -> None:
            while not self._stop.wait(self.every_s):
                self.samples.append(os.getloadavg()[0])
        threading.Thread(target=loop, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()

    @property
    def mean(self) -> Optional[float]:
        return sum(self.samples) / len(self.samples) if self.samples else None


def _load_line(label: str) -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {label}: {one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min, {os.cpu_count()} cores)"


def _report(spark: SparkSession, report_md: Optional[str]) -> dict:
    """The stage's JSON check report (beside its Markdown one), {} when it has none."""
    if not report_md:
        return {}
    text = spark.read.text(report_md.removesuffix(".md") + ".json", wholetext=True).first()[0]
    return json.loads(text)


@dataclass(frozen=True)
class TableFiles:
    table: str
    version: int
    files: int
    bytes: int


def table_files(spark: SparkSession, lake: Lake, t: TableVersion) -> TableFiles:
    """The Parquet files of one table version (from Delta's snapshot of it) and their total size."""
    uris = lake.read(spark, t.table, version=t.version).inputFiles()
    size = 0
    for uri in uris:
        fs, path = filesystem(spark, uri)
        size += fs.getFileStatus(path).getLen()
    return TableFiles(t.table, t.version, len(uris), size)


def stage_figures(spark: SparkSession, lake: Lake, run_id: str) -> list[StageFigures]:
    """The run's stages in execution order, with row counts for every table version read or written.

    A version's rows come from the manifest row of the stage that wrote it (any run of the lake);
    a version no manifest row describes is counted from Delta."""
    manifest = RunManifest(lake)
    written: dict[tuple[str, int], int] = {}
    for r in manifest.records(spark).select("outputs").collect():
        for t in json.loads(r["outputs"]):
            if t.get("rows") is not None:
                written[(t["table"], t["version"])] = t["rows"]

    def with_rows(t: dict) -> TableVersion:
        rows = written.get((t["table"], t["version"]))
        if rows is None:
            rows = lake.read(spark, t["table"], version=t["version"]).count()
        return TableVersion(t["table"], t["version"], rows)

    out = []
    for r in manifest.records(spark, run_id).orderBy(F.col("started_at")).collect():
        inputs = [with_rows(t) for t in json.loads(r["inputs"])]
        report = _report(spark, r["report"])
        if r["stage"] == "ingest":
            inputs = [TableVersion("source", -1, report.get("notes", {}).get("rows_read"))]
        out.append(StageFigures(r["stage"], r["status"], r["duration_s"] or 0.0, inputs,
                                [with_rows(t) for t in json.loads(r["outputs"])], report.get("check_seconds")))
    if not out:
        raise SystemExit(f"run {run_id!r} has no stage in {lake.path('_runs')}")
    return out


def render(figures: list[StageFigures], files: list[TableFiles]) -> str:
    lines = [f"{'stage':<10} {'status':<9} {'seconds':>8} {'checks':>7} {'share':>6} {'rows in':>12} {'rows out':>12} "
             f"{'in rows/s':>10}  notes"]
    for f in figures:
        rate = f"{f.rows_in / f.seconds:>10,.0f}" if f.seconds > 0 else f"{'-':>10}"
        checks = f"{f.check_seconds:>7.1f}" if f.check_seconds is not None else f"{'-':>7}"
        share = f"{f.check_share:>6.0%}" if f.check_share is not None else f"{'-':>6}"
        note = ""
        lists = f.rows_of(NEIGHBORS.name)
        if lists is not None and f.seconds > 0:
            note = f"{lists / f.seconds:,.0f} nodes/s ({lists:,} neighbour lists)"
        lines.append(f"{f.stage:<10} {f.status:<9} {f.seconds:>8.1f} {checks} {share} {f.rows_in:>12,} {f.rows_out:>12,} "
                     f"{rate}  {note}")
    total = sum(f.seconds for f in figures)
    checked = sum(f.check_seconds or 0.0 for f in figures)
    lines.append(f"{'all':<10} {'':<9} {total:>8.1f} {checked:>7.1f} {checked / total if total else 0:>6.0%}")
    lines += ["", "checks = seconds of the stage's validation (the frames it checks are computed before, as stage "
                  "work); share = checks / seconds", "", "tables read -> written (rows):"]
    for f in figures:
        ins = ", ".join(f"{t.table} {t.rows:,}" if t.rows is not None else t.table for t in f.inputs)
        outs = ", ".join(f"{t.table}@v{t.version} {t.rows:,}" for t in f.outputs)
        lines.append(f"  {f.stage:<10} {ins} -> {outs}")
    lines += ["", f"{'table':<26} {'version':>7} {'files':>6} {'MB':>9} {'MB/file':>8}"]
    for t in files:
        mb = t.bytes / 2 ** 20
        lines.append(f"{t.table:<26} {t.version:>7} {t.files:>6} {mb:>9.2f} {mb / max(t.files, 1):>8.2f}")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                allow_abbrev=False)  # --k is the pipeline's, not a prefix of --keep
    p.add_argument("--master", default="local[2]", help="Spark master of the run (default local[2])")
    p.add_argument("--lake", default=None, help="lake root (default: a new temporary folder)")
    p.add_argument("--run-id", default="bench", help="run id (default bench)")
    p.add_argument("--keep", action="store_true", help="keep the temporary lake")
    p.add_argument("--report-only", action="store_true", help="only print the figures of --run-id in --lake")
    args, pipeline_args = p.parse_known_args(argv)
    if args.report_only and not args.lake:
        p.error("--report-only needs --lake")
    tmp = None if args.lake else tempfile.mkdtemp(prefix="grec_bench_pipeline_")
    lake = Lake(args.lake or tmp)
    spark = get_spark("grec-bench-pipeline", master=args.master)
    try:
        if not args.report_only:
            print(_load_line("at start"), flush=True)
            t0 = time.perf_counter()
            with LoadSampler() as load:
                rc = job_main(pipeline.add_arguments, pipeline.run,
                              [*pipeline_args, "--lake", lake.root, "--run-id", args.run_id])
            print(f"pipeline exit code {rc}, {time.perf_counter() - t0:.1f} s end to end "
                  f"(master {spark.sparkContext.master}, pipeline flags: {' '.join(pipeline_args)})")
            print(_load_line("at end") + (f"; mean 1-min load during the run {load.mean:.2f}"
                                           if load.mean is not None else ""), flush=True)
            if rc != EXIT_OK:
                return rc
        figures = stage_figures(spark, lake, args.run_id)
        written = {t.table: t for f in figures for t in f.outputs}  # the run's last version of each
        print(render(figures, [table_files(spark, lake, t) for t in written.values()]))
    finally:
        if tmp and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp:
            print(f"lake kept at {lake.root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
