"""`grec jars`: the JVM JARs a Spark application running grec needs, for `spark-submit --jars`.

    spark-submit --jars "$(grec jars --sep ,)" --py-files grec-0.1.0-py3-none-any.whl job.py ...

Two kinds of JAR:
  grec-jvm.jar   grec's own JVM code (etl/jvm: Swing's per-user pair UDF). A wheel carries it as
                 package data (etl/jvm/grec-jvm.jar, put there by `make wheel`); a checkout has it in
                 .grec/jars, compiled by `make setup`.
  Delta Lake     never in the wheel: `make setup` fetches them from Maven Central into .grec/jars
                 (or any folder named by GREC_JARS_DIR); on Databricks the runtime ships Delta.

This module imports nothing beyond the standard library (no pyspark, no JVM), so `grec jars`
works in an environment that holds only the wheel.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
GREC_JAR_NAME = "grec-jvm.jar"
# Where a wheel carries grec-jvm.jar: next to the Java sources it is compiled from. Only built
# wheels hold it (scripts/build_wheel.py stages it); a checkout never does, so there the
# freshly compiled .grec/jars copy is used.
PACKAGED_GREC_JAR = PACKAGE_DIR / "jvm" / GREC_JAR_NAME
# The Delta artifact jars/pom.xml names (tests/test_wheel.py keeps the two in step), for
# `--packages` or a Maven cluster library where no JAR folder exists.
DELTA_MAVEN_COORDINATES = "io.delta:delta-spark_4.1_2.13:4.4.0"


def jars_dir() -> Path:
    """The folder of cached JARs: $GREC_JARS_DIR, else the checkout's .grec/jars."""
    return Path(os.environ.get("GREC_JARS_DIR", REPO_ROOT / ".grec" / "jars"))


def grec_jar() -> Optional[Path]:
    """grec-jvm.jar: the installed package's own copy first (it matches the installed Python code),
    else the one `make setup` compiled into the JAR folder; None when neither exists."""
    for candidate in (PACKAGED_GREC_JAR, jars_dir() / GREC_JAR_NAME):
        if candidate.is_file():
            return candidate
    return None


def folder_jars() -> list[Path]:
    """Every JAR of the JAR folder except grec-jvm.jar (Delta's, GraphFrames' when fetched)."""
    d = jars_dir()
    return sorted(p for p in d.glob("*.jar") if p.name != GREC_JAR_NAME) if d.is_dir() else []


def has_delta(jars: Sequence[Path]) -> bool:
    return any(p.name.startswith("delta-spark_") for p in jars)


def spark_jars() -> list[Path]:
    """grec-jvm.jar (when found) followed by the JAR folder's other JARs: what `spark.jars` needs."""
    grec = grec_jar()
    return ([grec] if grec else []) + folder_jars()


def missing_delta_message() -> str:
    where = (f"in {jars_dir()}" if "GREC_JARS_DIR" in os.environ or jars_dir().is_dir()
             else "(GREC_JARS_DIR is unset and this is no grec checkout with .grec/jars)")
    return (f"no Delta Lake JARs {where}: run `make setup` in a grec checkout (it fetches them from "
            f"Maven Central into .grec/jars) and set GREC_JARS_DIR to that folder, or let Spark resolve them "
            f"with `--packages {DELTA_MAVEN_COORDINATES}`; on Databricks the runtime ships Delta")


def missing_grec_message() -> str:
    return (f"no {GREC_JAR_NAME}: neither the package ({PACKAGED_GREC_JAR}) nor {jars_dir()} holds it; "
            "run `make setup` (compiles etl/jvm) or install a wheel built by `make wheel`")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Print the JAR paths; exit 1 when grec-jvm.jar is missing (Swing cannot run without it).

    Missing Delta JARs only warn (stderr): Databricks and `--packages` supply Delta another way.
    """
    p = argparse.ArgumentParser(prog="grec jars", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sep", default="\n",
                   help="separator between paths (default: one per line; `--sep ,` for spark-submit --jars)")
    p.add_argument("--grec-only", action="store_true",
                   help="only grec-jvm.jar (e.g. a cluster library on Databricks, whose runtime ships Delta)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="grec jars: %(message)s", stream=sys.stderr)
    grec = grec_jar()
    others = [] if args.grec_only else folder_jars()
    if grec is None:
        log.error(missing_grec_message())
    if not args.grec_only and not has_delta(others):
        log.warning(missing_delta_message())
    paths = [str(j) for j in ([grec] if grec else []) + others]
    if paths:
        # The paths are this command's output (stdout); everything else went to stderr.
        sys.stdout.write(args.sep.join(paths) + "\n")
    return 0 if grec is not None else 1


if __name__ == "__main__":
    raise SystemExit(main())
