"""The deployable wheel (`make wheel`, scripts/build_wheel.py): it carries etl/, training/, schemas/
and grec-jvm.jar; installed into a fresh virtual environment with no source tree, `grec --help` and
`grec jars` work; and spark-submit runs the pipeline on local[2] from the wheel as `--py-files`,
driver and executors importing grec from the wheel, not from the checkout."""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from etl import jars as grec_jars
from etl.session import DELTA_CATALOG, DELTA_EXTENSION

REPO_ROOT = Path(__file__).resolve().parents[1]
# The cluster test's small synthetic source (tests/test_cluster.py), through the stages that touch
# each kind of code the wheel carries: Python checks (ingest), grec-jvm.jar's UDF (swing) and the
# first gold tables (graph). The later stages add minutes and nothing the wheel could lack.
PIPELINE_ARGS = ["--source", "synthetic", "--rows", "2000", "--users", "150", "--items", "60", "--seed", "3",
                 "--stages", "ingest,swing,graph"]
GOLD_TABLES = ("gold.nodes", "gold.edges", "gold.graph_stats")


def _build_script():
    if "build_wheel" not in sys.modules:
        spec = importlib.util.spec_from_file_location("build_wheel", REPO_ROOT / "scripts" / "build_wheel.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
    return sys.modules["build_wheel"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return _build_script().build_wheel(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def installed(tmp_path_factory, wheel) -> Path:
    """A fresh venv (no pyspark, no grec checkout on its path) holding only the wheel; its bin/."""
    venv = tmp_path_factory.mktemp("wheel-venv") / "venv"
    # --without-pip and this environment's pip installing into it: seconds faster than ensurepip.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet",
                    "--no-deps", "--no-cache-dir", "--disable-pip-version-check", str(wheel)], check=True)
    return venv / "bin"


def _purelib(python: Path) -> str:
    """site-packages of the environment of `python`."""
    return subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()


def _clean_env(**extra: str) -> dict[str, str]:
    """This environment without anything that would make the checkout importable or join a gateway."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYSPARK_GATEWAY_PORT", "GREC_JARS_DIR")}
    env.update(extra)
    return env


def test_wheel_carries_the_packages_and_the_jvm_jar(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"grec/cli.py", "etl/jars.py", "etl/jobs/pipeline.py", "training/cli.py", "schemas/tables.py",
            "etl/jvm/grec-jvm.jar"} <= names
    assert "grec = grec.cli:main" in zipfile.ZipFile(wheel).read("grec-0.1.0.dist-info/entry_points.txt").decode()
    assert not any(n.startswith("delta-") or "/delta-" in n for n in names), "Delta's JARs must not ride in the wheel"
    assert not any("__pycache__" in n or n.endswith(".java") for n in names)
    # The checkout is left as it was: the jar was staged in a copy only.
    assert not (REPO_ROOT / _build_script().JAR_IN_PACKAGE).exists()


def test_installed_wheel_runs_grec_help_and_jars_without_the_checkout(installed, tmp_path):
    site = Path(_purelib(installed / "python"))
    env = _clean_env()
    # No pyspark in the fresh venv, and grec comes from its site-packages.
    probe = subprocess.run([str(installed / "python"), "-c",
                            "import importlib.util as u, etl; print(etl.__file__, u.find_spec('pyspark'))"],
                           capture_output=True, text=True, cwd=tmp_path, env=env, check=True).stdout
    assert probe.startswith(str(site / "etl")) and probe.rstrip().endswith("None"), probe

    help_ = subprocess.run([str(installed / "grec"), "--help"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert help_.returncode == 0, help_.stderr
    for command in ("grec etl run", "grec jars", "grec train", "grec demo"):
        assert command in help_.stdout

    # No JAR folder: grec's own jar from the package, and a warning naming Delta's Maven coordinates.
    alone = subprocess.run([str(installed / "grec"), "jars"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert alone.returncode == 0, alone.stderr
    assert alone.stdout.splitlines() == [str(site / "etl" / "jvm" / "grec-jvm.jar")]
    assert Path(alone.stdout.strip()).is_file()
    assert grec_jars.DELTA_MAVEN_COORDINATES in alone.stderr and "make setup" in alone.stderr

    # With the checkout's JAR folder: its Delta JARs, but still the package's grec-jvm.jar (one only).
    with_dir = subprocess.run([str(installed / "grec"), "jars", "--sep", ","], capture_output=True, text=True,
                              cwd=tmp_path, env=_clean_env(GREC_JARS_DIR=str(grec_jars.jars_dir())))
    assert with_dir.returncode == 0 and with_dir.stderr == "", with_dir.stderr
    paths = with_dir.stdout.strip().split(",")
    assert paths[0] == str(site / "etl" / "jvm" / "grec-jvm.jar")
    assert [p for p in paths if p.endswith("grec-jvm.jar")] == paths[:1]
    assert any(Path(p).name.startswith("delta-spark_") for p in paths) and all(Path(p).is_file() for p in paths)


def test_grec_jars_in_the_checkout_names_the_compiled_jar_and_delta(capsys):
    assert grec_jars.main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == str(grec_jars.jars_dir() / "grec-jvm.jar")
    assert any(Path(p).name.startswith("delta-spark_") for p in lines)


def test_grec_jars_fails_without_grec_jvm_jar(tmp_path, monkeypatch, capsys, caplog):
    monkeypatch.setenv("GREC_JARS_DIR", str(tmp_path))
    monkeypatch.setattr(grec_jars, "PACKAGED_GREC_JAR", tmp_path / "absent.jar")
    assert grec_jars.main(["--sep", ","]) == 1
    assert capsys.readouterr().out == ""
    assert "no grec-jvm.jar" in caplog.text and "make setup" in caplog.text
    assert grec_jars.DELTA_MAVEN_COORDINATES in caplog.text


def test_delta_coordinates_match_jars_pom():
    pom = (REPO_ROOT / "jars" / "pom.xml").read_text()
    version = re.search(r"<delta\.version>([^<]+)</delta\.version>", pom).group(1)
    artifact = re.search(r"<groupId>io\.delta</groupId>\s*<artifactId>([^<]+)</artifactId>", pom).group(1)
    assert grec_jars.DELTA_MAVEN_COORDINATES == f"io.delta:{artifact}:{version}"


# The spark-submit driver: prints where the driver and the executors import etl from, then runs
# `grec etl run` through the CLI.
DRIVER = '''
import sys
import etl
from etl.session import get_spark

spark = get_spark("grec-wheel-test")
print("GREC_DRIVER_ETL=" + etl.__file__, flush=True)
seen = spark.sparkContext.parallelize(range(4), 2).map(lambda _: __import__("etl").__file__).collect()
print("GREC_EXECUTOR_ETL=" + "|".join(sorted(set(seen))), flush=True)
from grec.cli import main
sys.exit(main(["etl", "run", *sys.argv[1:]]))
'''


@pytest.mark.slow
def test_spark_submit_runs_the_pipeline_from_the_wheel(wheel, installed, tmp_path):
    # The Python of driver and executors: a venv that sees the pinned packages (pyspark, delta, ...)
    # of this one through a .pth line, but not grec (the .pth files that make the checkout
    # importable are not run for a folder added that way): grec can come only from --py-files.
    runtime = tmp_path / "runtime"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(runtime)], check=True)
    py = runtime / "bin" / "python"
    (Path(_purelib(py)) / "grec-test-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    no_grec = subprocess.run([str(py), "-c", "import pyspark, etl"], capture_output=True, text=True,
                             cwd=tmp_path, env=_clean_env())
    assert no_grec.returncode != 0 and "No module named 'etl'" in no_grec.stderr, no_grec.stderr

    jars = subprocess.run([str(installed / "grec"), "jars", "--sep", ","], capture_output=True, text=True, check=True,
                          cwd=tmp_path, env=_clean_env(GREC_JARS_DIR=str(grec_jars.jars_dir()))).stdout.strip()
    conf_dir = tmp_path / "conf"  # not .grec/conf: everything the application needs is on the command line
    conf_dir.mkdir()
    shutil.copy2(REPO_ROOT / "scripts" / "log4j2.properties", conf_dir / "log4j2.properties")
    (tmp_path / "driver.py").write_text(DRIVER)
    import pyspark

    lake = tmp_path / "lake"
    cmd = [str(Path(pyspark.__file__).parent / "bin" / "spark-submit"), "--master", "local[2]",
           "--jars", jars, "--py-files", str(wheel), "--driver-memory", "2g",
           "--conf", f"spark.sql.extensions={DELTA_EXTENSION}",
           "--conf", f"spark.sql.catalog.spark_catalog={DELTA_CATALOG}",
           "--conf", "spark.ui.enabled=false", "--conf", "spark.sql.shuffle.partitions=4",
           "--conf", "spark.default.parallelism=4", "--conf", "spark.sql.session.timeZone=UTC",
           str(tmp_path / "driver.py"), "--lake", str(lake), "--run-id", "wheel", *PIPELINE_ARGS]
    env = _clean_env(SPARK_CONF_DIR=str(conf_dir), PYSPARK_PYTHON=str(py), PYSPARK_DRIVER_PYTHON=str(py))
    with open(tmp_path / "driver.log", "w+") as log:  # a file, so a timed-out run can still be read
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env=env, timeout=2400).returncode
        log.seek(0)
        out = log.read()
    assert rc == 0, out[-6000:]

    # Driver and executors imported grec from the wheel (the driver from the --py-files path, the
    # executors from the copy Spark shipped them), never from the checkout.
    driver = re.search(r"^GREC_DRIVER_ETL=(.*)$", out, re.M).group(1)
    executors = re.search(r"^GREC_EXECUTOR_ETL=(.*)$", out, re.M).group(1).split("|")
    assert driver.startswith(str(wheel) + os.sep), driver
    assert executors and all(f".whl{os.sep}etl{os.sep}" in e and not e.startswith(str(REPO_ROOT)) for e in executors), \
        executors
    # The JVM side came from the jars it was given: the package's grec-jvm.jar ran Swing.
    assert jars.split(",")[0].startswith(str(installed.parent))
    for table in ("silver.swing_i2i", *GOLD_TABLES):
        delta_log = lake / table.replace(".", "/") / "_delta_log"
        assert any(delta_log.glob("*.json")), f"{table} was not written; driver output:\n{out[-3000:]}"
