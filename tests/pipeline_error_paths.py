"""Run the pipeline's error paths in one process, as a user would meet them (tests/test_concurrency.py).

    python tests/pipeline_error_paths.py LAKE_DIR

Each path goes through the job shell (`job_main`, what `grec etl run` calls) and prints
`EXIT <path> <code>` on stdout; anything a path lets escape the shell ends this process with a
traceback on stderr, which the test looks for.
"""
from __future__ import annotations

import socket
import subprocess
import sys

from etl.jobs import pipeline
from etl.jobs.shell import job_main
from etl.lake import Lake, RunManifest, StageRecord
from etl.session import get_spark

# rows == users: every user gets exactly one row, so no user has the two positives Swing needs
ONE_ROW_EACH = ["--source", "synthetic", "--rows", "200", "--users", "200", "--items", "40", "--days", "5",
                "--eval-days", "2"]


def main(root: str) -> None:
    lake = Lake(root + "/lake")
    paths = {
        "swing-empty": ["--run-id", "thin", *ONE_ROW_EACH, "--stages", "ingest,swing"],
        "no-source": ["--run-id", "x", "--stages", "ingest"],
        "missing-table": ["--lake", root + "/empty", "--run-id", "x", "--stages", "graph"],
        "bad-synthetic": ["--run-id", "x", "--source", "synthetic", "--rows", "10", "--users", "20"],
        "run-held": ["--run-id", "held", "--stages", "swing", "--eval-days", "2"],
    }
    sleeper = subprocess.Popen(["sleep", "600"])  # a live process that holds run "held"
    try:
        for name, argv in paths.items():
            if name == "run-held":
                RunManifest(lake).append(get_spark("grec-pipeline"), StageRecord(
                    run_id="held", stage="ingest", status="running",
                    message=f"running in process {sleeper.pid} on {socket.gethostname()} (0123456789ab)"))
            if "--lake" not in argv:
                argv = ["--lake", lake.root, *argv]
            code = job_main(pipeline.add_arguments, pipeline.run, argv)
            print(f"EXIT {name} {code}", flush=True)
    finally:
        sleeper.kill()


if __name__ == "__main__":
    main(sys.argv[1])
