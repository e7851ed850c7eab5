"""Build grec's wheel: etl/, training/, schemas/ and the compiled grec-jvm.jar as package data.

    make wheel                                   # = source .grec/env.sh && python scripts/build_wheel.py
    python scripts/build_wheel.py --out dist     # -> dist/grec-0.1.0-py3-none-any.whl

The packages are copied into a fresh staging folder together with `.grec/jars/grec-jvm.jar`
(compiled from etl/jvm by `make setup`), placed at etl/jvm/grec-jvm.jar, and the wheel is built
there by pip with the environment's setuptools (`--no-build-isolation`: no download). Building from
a copy keeps the checkout clean (no jar, build/ or egg-info in it) and leaves no stale build/lib
files from an earlier build to slip into the wheel. Delta's JARs stay out of the wheel: Databricks
ships Delta, and `grec jars` names the JAR folder's copies for spark-submit.
"""
from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional, Sequence

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from etl.jars import GREC_JAR_NAME, jars_dir  # noqa: E402  (standard library only, no pyspark)

log = logging.getLogger("build_wheel")
PACKAGES = ("grec", "etl", "training", "schemas")
# What pyproject.toml needs besides the packages (its readme).
PROJECT_FILES = ("pyproject.toml", "README.md")
# The jar's place in the package: pyproject.toml's [tool.setuptools.package-data] names it.
JAR_IN_PACKAGE = Path("etl") / "jvm" / GREC_JAR_NAME


class BuildError(RuntimeError):
    """The wheel cannot be built; the message says what is missing."""


def build_wheel(out_dir: Path, jar: Optional[Path] = None) -> Path:
    """Build the wheel into out_dir and return its path.

    Args:
        out_dir: folder for the .whl (created; an older grec wheel of the same name is replaced).
        jar: the grec-jvm.jar to package; default the JAR folder's (.grec/jars or $GREC_JARS_DIR).

    Raises:
        BuildError: no grec-jvm.jar (run `make setup`), or pip failed (its output is quoted).
    """
    jar = jar or jars_dir() / GREC_JAR_NAME
    if not jar.is_file():
        raise BuildError(f"{jar} not found: run `make setup` first (it compiles etl/jvm into grec-jvm.jar)")
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="grec-wheel-") as tmp:
        stage = Path(tmp) / "src"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", GREC_JAR_NAME)
        for pkg in PACKAGES:
            shutil.copytree(REPO_ROOT / pkg, stage / pkg, ignore=ignore)
        for name in PROJECT_FILES:
            shutil.copy2(REPO_ROOT / name, stage / name)
        shutil.copy2(jar, stage / JAR_IN_PACKAGE)
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-cache-dir",
               "--disable-pip-version-check", "--quiet", "--wheel-dir", str(Path(tmp) / "dist"), str(stage)]
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
        if r.returncode != 0:
            raise BuildError(f"pip wheel failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
        wheels = list((Path(tmp) / "dist").glob("grec-*.whl"))
        if len(wheels) != 1:
            raise BuildError(f"expected one grec wheel, pip wrote {[w.name for w in wheels]}")
        dest = out_dir / wheels[0].name
        shutil.copy2(wheels[0], dest)
    log.info("built %s (%d kB) with %s", dest, dest.stat().st_size // 1024, jar)
    return dest


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(REPO_ROOT / "dist"), help="folder for the wheel (default: dist/)")
    p.add_argument("--jar", default=None, help="grec-jvm.jar to package (default: .grec/jars' or $GREC_JARS_DIR's)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[wheel] %(message)s", stream=sys.stderr)
    try:
        wheel = build_wheel(Path(args.out), Path(args.jar) if args.jar else None)
    except BuildError as e:
        log.error("%s", e)
        return 1
    print(wheel)  # the wheel's path is the command's output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
