"""Shared job shell: common flags, error handling and exit codes for every stage entry point.

Exit codes (schemas.contract): 0 success, 1 bad input or setup (message names what is wrong), 2 a quality check
failed (report path printed), 3 another writer conflicts with the run (the same run id in another
process, or conflicts that outlasted the retries; the message says what to do), 130 interrupted.
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from typing import Callable, Optional, Sequence

from etl.conflicts import CONFLICTS, ConcurrentRunError, delta_conflict_or_none
from etl.lake import LakeError
from etl.logs import configure_logging
from etl.session import SparkSetupError
from etl.sources.base import SourceError
from etl.stage import StageFailed
from schemas.contract import EXIT_CHECKS, EXIT_CONFLICT, EXIT_INPUT, EXIT_INTERRUPTED
from schemas.layout import SnapshotError
from schemas.params import ConfigError


class InputError(ValueError):
    """Input the user gave cannot be used as it is; the message says which file/column/row and why."""


def new_run_id() -> str:
    return "run-" + datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def add_common_arguments(parser: argparse.ArgumentParser, lake_required: bool = True) -> None:
    parser.add_argument("--lake", required=lake_required,
                        help="lake root: a local folder or any Hadoop URI (file:, s3a:, abfss:)")
    # --run-id everywhere; --run is its alias (as in grec train, grec compare and grec runs)
    parser.add_argument("--run-id", "--run", dest="run_id", default=None,
                        help="run id recorded in the _runs manifest (default: run-<UTC timestamp>); "
                             "re-running the same id replaces that run's outputs, never duplicates them")


def run_guarded(fn: Callable[[], int]) -> int:
    """Run a job body and map grec's errors to exit codes with one clear message each."""
    try:
        return fn()
    except StageFailed as e:
        print(f"\nerror: {e}", file=sys.stderr)
        return EXIT_CHECKS
    except (InputError, ConfigError, SourceError, LakeError, SnapshotError, SparkSetupError, FileNotFoundError) as e:
        print(f"\nerror: {e}", file=sys.stderr)
        return EXIT_INPUT
    except ConcurrentRunError as e:
        print(f"\nerror: {e}", file=sys.stderr)
        return EXIT_CONFLICT
    except CONFLICTS as e:  # a Delta conflict on a write grec does not retry (none known; named if met)
        print(f"\nerror: {delta_conflict_or_none(e)}", file=sys.stderr)
        return EXIT_CONFLICT
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def job_main(add_arguments: Callable[[argparse.ArgumentParser], None],
             run: Callable[[argparse.Namespace], int], argv: Optional[Sequence[str]] = None,
             description: Optional[str] = None, prog: Optional[str] = None) -> int:
    """`if __name__ == "__main__": raise SystemExit(job_main(add_arguments, run))`."""
    configure_logging()
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    if getattr(args, "run_id", "unset") is None:
        args.run_id = new_run_id()
    return run_guarded(lambda: run(args))
