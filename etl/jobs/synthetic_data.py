"""Write the synthetic generator's data as contract files (interactions, users, items).

    spark-submit etl/jobs/synthetic_data.py --rows 1000000 --out data/synthetic
    grec data synthetic --rows 1000000 --out data/synthetic --format csv

It prints the `--source contract ...` flags that ingest the files back.
"""
from __future__ import annotations

import argparse
import shlex
import time
from dataclasses import asdict

from etl.session import get_spark
from etl.sources import SOURCES, add_option_arguments, options_from_args
from etl.sources.contract import FileFormat
from etl.sources.synthetic import NAME, write_synthetic


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True,
                        help="output folder (any Hadoop URI); gets interactions/, users/, items/")
    parser.add_argument("--format", dest="out_format", choices=[f.value for f in FileFormat],
                        default=FileFormat.PARQUET.value, help="file format (default parquet)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files under --out")
    add_option_arguments(parser.add_argument_group("generator"), SOURCES[NAME])


def run(args: argparse.Namespace) -> int:
    options = options_from_args(SOURCES[NAME], args)
    spark = get_spark("grec-synthetic-data")
    started = time.perf_counter()
    files = write_synthetic(spark, args.out, args.out_format, mode="overwrite" if args.overwrite else "error",
                            **asdict(options))
    seconds = time.perf_counter() - started
    print(f"wrote {options.rows:,} synthetic rows to {args.out} in {seconds:.1f} s "
          f"({options.rows / seconds:,.0f} rows/s)")
    print("ingest them with: grec etl ingest --lake LAKE " + shlex.join(files.ingest_args()))
    return 0


if __name__ == "__main__":
    from etl.jobs.shell import job_main

    raise SystemExit(job_main(add_arguments, run, description=__doc__))
