"""Run the grec pipeline on a Spark standalone cluster on 127.0.0.1 and compare it with local[2].

Starts a standalone master and `--workers` workers with pyspark's own launcher (`bin/spark-class
org.apache.spark.deploy.master.Master` / `...worker.Worker`), each bound to 127.0.0.1 on free
ports with its logs, work and scratch dirs under `--workdir`; submits `etl/jobs/pipeline.py` to
`spark://127.0.0.1:PORT` with the Delta JARs (`--jars`, which the driver serves to the executors)
and grec's code as a zip built on the fly (`--py-files`), as a cluster of separate machines needs
it; stops the cluster (also on errors and signals; the daemons die with this process); then runs
the same pipeline arguments in-process on local[2] and compares every table both runs wrote, row
for row: exactly, except that floating-point values may differ in their last bits (relative
1e-12), since Spark sums doubles in shuffle order and the two runs partition differently.

    source .grec/env.sh
    python scripts/standalone_cluster.py --workdir /tmp/grec_cluster -- \\
        --source synthetic --rows 5000 --users 300 --items 120 --k 10 --clusters 4

Everything after `--` goes to the pipeline (`grec etl run` flags) except `--lake` and `--run-id`,
which the script sets: `<workdir>/lake-cluster` and `<workdir>/lake-local`, run id `--run-id`.
Exit codes: 0 every table matches, 1 the cluster or a pipeline run failed, 3 some table differs.
With `--cluster-only` the reference run and the comparison are skipped.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Optional, Sequence

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from pyspark.sql import Column, DataFrame, SparkSession, Window  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402
from pyspark.sql import types as T  # noqa: E402

from etl.session import DELTA_CATALOG, DELTA_EXTENSION, local_jars  # noqa: E402

HOST = "127.0.0.1"
CODE_PACKAGES = ("etl", "schemas")  # what the pipeline imports; training/ is not needed by the ETL
PIPELINE_JOB = REPO_ROOT / "etl" / "jobs" / "pipeline.py"
# Tables the pipeline writes whose contents depend only on the input and the configuration, so a
# run on any cluster must reproduce them exactly (the manifest and reports hold timings and paths).
COMPARED_TABLES = ("bronze.interactions", "bronze.users", "bronze.items", "quarantine.interactions",
                   "silver.swing_i2i", "gold.nodes", "gold.edges", "gold.graph_stats", "gold.neighbors",
                   "gold.examples", "gold.macro")
# gold.macro's user clusters come from Spark ML's KMeans, whose k-means|| initialisation samples
# each partition: another partitioning can find other clusters, so only which rows it holds is compared.
PARTITION_DEPENDENT = {"gold.macro": ("node_id", "node_type")}
# Spark sums doubles in the order rows arrive from a shuffle, so a sum (a Swing score, and every
# weight scaled by the largest one) can differ in its last bits between two partitionings.
FLOAT_REL_TOL = 1e-12
EXIT_OK, EXIT_FAILED, EXIT_DIFFERENT = 0, 1, 3


class ClusterError(RuntimeError):
    """The standalone cluster did not come up, or a daemon died; the message quotes its log."""


@dataclass(frozen=True)
class ClusterConfig:
    """Sizes of the standalone cluster and of the application submitted to it.

    Args:
        workers: worker daemons (one executor each).
        worker_cores / worker_memory: what each worker offers to executors.
        executor_memory: heap of each executor (must fit in worker_memory).
        daemon_memory: heap of the master and worker daemons themselves.
        driver_memory: heap of the spark-submit driver.
        start_timeout_s: how long to wait for every worker to register with the master.
    """

    workers: int = 2
    worker_cores: int = 1
    worker_memory: str = "1536m"
    executor_memory: str = "1g"
    daemon_memory: str = "256m"
    driver_memory: str = "2g"
    start_timeout_s: float = 120.0


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    # Linux: the daemon gets SIGTERM when this process dies, even by SIGKILL, so no JVM is orphaned.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def spark_env(workdir: Path) -> dict[str, str]:
    """Environment of the daemons and spark-submit: this one's (JAVA_HOME: source .grec/env.sh),
    bound to the loopback, with Spark's scratch space in workdir."""
    env = dict(os.environ)
    env.update({"SPARK_HOME": str(spark_home()), "SPARK_LOCAL_IP": HOST,
                "SPARK_LOCAL_DIRS": str(workdir / "scratch"), "PYSPARK_PYTHON": sys.executable})
    env.pop("PYSPARK_GATEWAY_PORT", None)  # never hand a child this process's gateway
    return env


class StandaloneCluster:
    """A master and `config.workers` workers on 127.0.0.1, stopped when the `with` block ends.

        with StandaloneCluster(Path("/tmp/c"), ClusterConfig()) as cluster:
            submit(cluster.master_url, ...)
    """

    def __init__(self, workdir: Path, config: ClusterConfig = ClusterConfig()):
        self.workdir, self.config = workdir, config
        self.master_port, self.master_ui_port = free_port(), free_port()
        self._procs: list[tuple[str, subprocess.Popen, Path]] = []

    @property
    def master_url(self) -> str:
        return f"spark://{HOST}:{self.master_port}"

    def worker_dir(self, n: int) -> Path:
        return self.workdir / f"worker-{n}"

    def __enter__(self) -> "StandaloneCluster":
        try:
            self._start("master", "org.apache.spark.deploy.master.Master",
                        ["--host", HOST, "--port", str(self.master_port), "--webui-port", str(self.master_ui_port)])
            for n in range(self.config.workers):
                self.worker_dir(n).mkdir(parents=True, exist_ok=True)
                self._start(f"worker-{n}", "org.apache.spark.deploy.worker.Worker",
                            [self.master_url, "--host", HOST, "--port", str(free_port()),
                             "--webui-port", str(free_port()), "--cores", str(self.config.worker_cores),
                             "--memory", self.config.worker_memory, "--work-dir", str(self.worker_dir(n))])
            self._wait_for_workers()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _start(self, name: str, main_class: str, args: list[str]) -> None:
        log_path = self.workdir / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = spark_env(self.workdir)
        env["SPARK_DAEMON_MEMORY"] = self.config.daemon_memory
        with open(log_path, "ab") as out:
            proc = subprocess.Popen([str(spark_home() / "bin" / "spark-class"), main_class, *args],
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                    preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        self._procs.append((name, proc, log_path))

    def master_state(self) -> dict:
        """The master's JSON status page (workers, running and completed applications)."""
        with urllib.request.urlopen(f"http://{HOST}:{self.master_ui_port}/json/", timeout=5) as r:
            return json.load(r)

    def _wait_for_workers(self) -> None:
        deadline = time.monotonic() + self.config.start_timeout_s
        alive = 0
        while time.monotonic() < deadline:
            for name, proc, log_path in self._procs:
                if proc.poll() is not None:
                    raise ClusterError(f"{name} exited with code {proc.returncode} while starting; "
                                       f"{log_path}:\n{_tail(log_path)}")
            try:
                alive = self.master_state().get("aliveworkers", 0)
            except OSError:  # the master's web UI is not up yet
                alive = 0
            if alive >= self.config.workers:
                return
            time.sleep(1.0)
        raise ClusterError(f"{alive} of {self.config.workers} workers registered with {self.master_url} within "
                           f"{self.config.start_timeout_s:.0f} s; logs in {self.workdir / 'logs'}")

    def stop(self) -> None:
        """Workers first (they end their executors), then the master; SIGKILL whatever lingers."""
        for _, proc, _ in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
        for _, proc, _ in reversed(self._procs):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs.clear()


def _tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError as e:
        return f"(unreadable: {e})"


def build_code_zip(dest: Path, packages: Sequence[str] = CODE_PACKAGES) -> Path:
    """grec's Python packages as one zip for `--py-files` (sources only, no caches)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
        for pkg in packages:
            for f in sorted((REPO_ROOT / pkg).rglob("*.py")):
                z.write(f, f.relative_to(REPO_ROOT).as_posix())
    return dest


def submit_command(master: str, code_zip: Path, pipeline_args: Sequence[str],
                   config: ClusterConfig = ClusterConfig()) -> list[str]:
    """spark-submit of the pipeline job with everything a remote executor needs passed explicitly
    (not through .grec/conf), so the same command works against any standalone master."""
    cores = config.workers * config.worker_cores
    conf = {"spark.sql.extensions": DELTA_EXTENSION, "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
            "spark.pyspark.python": sys.executable, "spark.pyspark.driver.python": sys.executable,
            "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": str(2 * cores), "spark.default.parallelism": str(2 * cores)}
    cmd = [str(spark_home() / "bin" / "spark-submit"), "--master", master, "--deploy-mode", "client",
           "--name", "grec-pipeline-standalone", "--jars", ",".join(local_jars()), "--py-files", str(code_zip),
           "--driver-memory", config.driver_memory, "--executor-memory", config.executor_memory,
           "--executor-cores", str(config.worker_cores), "--total-executor-cores", str(cores)]
    for k, v in conf.items():
        cmd += ["--conf", f"{k}={v}"]
    return cmd + [str(PIPELINE_JOB), *pipeline_args]


def run_on_cluster(workdir: Path, pipeline_args: Sequence[str], config: ClusterConfig = ClusterConfig()) -> int:
    """Start the cluster, submit the pipeline (its output goes to <workdir>/logs/driver.log), stop it.
    Returns spark-submit's exit code."""
    code_zip = build_code_zip(workdir / "grec-code.zip")
    with StandaloneCluster(workdir, config) as cluster:
        print(f"cluster: {cluster.master_url}, {config.workers} workers x {config.worker_cores} core(s), "
              f"master UI http://{HOST}:{cluster.master_ui_port}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        driver_log = workdir / "logs" / "driver.log"
        with open(driver_log, "ab") as out:
            rc = subprocess.run(submit_command(cluster.master_url, code_zip, pipeline_args, config),
                                stdout=out, stderr=subprocess.STDOUT, env=spark_env(workdir),
                                cwd=workdir).returncode
        print(f"cluster run: exit code {rc} after {time.perf_counter() - t0:.1f} s; driver log {driver_log}",
              file=sys.stderr, flush=True)
        try:
            apps = [a.get("id") for a in cluster.master_state().get("completedapps", [])]
            print(f"completed applications on the master: {apps}", file=sys.stderr, flush=True)
        except OSError as e:  # only a confirmation; the run's outcome is rc
            print(f"master status unavailable: {e}", file=sys.stderr, flush=True)
    return rc


@dataclass(frozen=True)
class TableDiff:
    """How a table of lake a (the cluster's) compares with lake b's (local[2]'s).

    only_a / only_b: rows with no matching row on the other side; inexact: matched rows whose
    floating-point columns differ, within the tolerance, in their last bits.
    """

    table: str
    rows_a: Optional[int]
    rows_b: Optional[int]
    only_a: int = 0
    only_b: int = 0
    inexact: int = 0
    columns: Optional[tuple[str, ...]] = None  # the columns compared, when not all

    @property
    def same(self) -> bool:
        return self.rows_a == self.rows_b and self.only_a == 0 and self.only_b == 0

    def line(self) -> str:
        if self.rows_a is None or self.rows_b is None:
            return f"{self.table:<24} {'missing in ' + ('cluster' if self.rows_a is None else 'local'):>20}"
        if not self.same:
            verdict = f"DIFFERENT: {self.only_a} rows only in cluster, {self.only_b} only in local"
        elif self.inexact:
            verdict = f"same; {self.inexact} rows differ in the last bits of a float (relative <= {FLOAT_REL_TOL:g})"
        else:
            verdict = "identical"
        if self.columns:
            verdict += f" in {', '.join(self.columns)} (the other columns depend on the partitioning)"
        return f"{self.table:<24} {self.rows_a:>10,} {self.rows_b:>10,}  {verdict}"


def _is_floating(t: T.DataType) -> bool:
    return isinstance(t, (T.DoubleType, T.FloatType)) or (isinstance(t, T.ArrayType) and _is_floating(t.elementType))


def _close(x: Column, y: Column, rel_tol: float) -> Column:
    return x.eqNullSafe(y) | (F.abs(x - y) <= F.lit(rel_tol) * F.greatest(F.abs(x), F.abs(y)))


def _column_close(x: Column, y: Column, dtype: T.DataType, rel_tol: float) -> Column:
    if isinstance(dtype, T.ArrayType):
        pairs = F.zip_with(x, y, lambda p, q: _close(p, q, rel_tol))
        return x.eqNullSafe(y) | ((F.size(x) == F.size(y)) & F.forall(pairs, lambda ok: ok))
    return _close(x, y, rel_tol)


def diff_frames(a: DataFrame, b: DataFrame, rel_tol: float = FLOAT_REL_TOL) -> tuple[int, int, int]:
    """(rows only in a, rows only in b, matched rows with floats not bit-identical).

    Rows pair up by their non-floating columns (equal ones in the order of their floats) and match
    when every floating column (or array element) agrees within `rel_tol`; tables without floating
    columns are compared exactly (exceptAll both ways)."""
    b = b.select(*a.columns)
    floats = [f for f in a.schema.fields if _is_floating(f.dataType)]
    if not floats:
        return a.exceptAll(b).count(), b.exceptAll(a).count(), 0
    names = {f.name for f in floats}
    exact = [c for c in a.columns if c not in names]
    order = Window.partitionBy(*exact).orderBy(*names)
    na, nb = (df.withColumn("_n", F.row_number().over(order)) for df in (a, b))
    j = na.alias("a").join(nb.alias("b"), [F.col(f"a.{c}").eqNullSafe(F.col(f"b.{c}")) for c in [*exact, "_n"]],
                           "full_outer")
    in_a, in_b = F.col("a._n").isNotNull(), F.col("b._n").isNotNull()
    close = reduce(lambda p, q: p & q, [_column_close(F.col(f"a.{f.name}"), F.col(f"b.{f.name}"), f.dataType, rel_tol)
                                        for f in floats])
    identical = reduce(lambda p, q: p & q, [F.col(f"a.{f.name}").eqNullSafe(F.col(f"b.{f.name}")) for f in floats])
    count = lambda cond: F.sum(F.when(cond, 1).otherwise(0))  # noqa: E731
    r = j.agg(count(in_a & ~(in_b & close)).alias("a"), count(in_b & ~(in_a & close)).alias("b"),
              count(in_a & in_b & close & ~identical).alias("x")).first()
    return int(r["a"] or 0), int(r["b"] or 0), int(r["x"] or 0)


def compare_lakes(spark: SparkSession, lake_a, lake_b, tables: Sequence[str] = COMPARED_TABLES) -> list[TableDiff]:
    """`diff_frames` of every table either lake holds (of PARTITION_DEPENDENT tables, the columns named there)."""
    out = []
    for t in tables:
        has_a, has_b = lake_a.exists(spark, t), lake_b.exists(spark, t)
        if not (has_a or has_b):
            continue
        if not (has_a and has_b):
            out.append(TableDiff(t, lake_a.read(spark, t).count() if has_a else None,
                                 lake_b.read(spark, t).count() if has_b else None))
            continue
        a, b = lake_a.read(spark, t), lake_b.read(spark, t)
        columns = PARTITION_DEPENDENT.get(t)
        if columns:
            a, b = a.select(*columns), b.select(*columns)
        out.append(TableDiff(t, a.count(), b.count(), *diff_frames(a, b), columns=columns))
    return out


def run_reference(lake_uri: str, run_id: str, pipeline_args: Sequence[str]) -> int:
    """The same pipeline arguments in this process on local[2] (the `grec etl run` code path)."""
    from etl.jobs import pipeline
    from etl.jobs.shell import job_main
    from etl.session import get_spark

    get_spark("grec-reference", master="local[2]")
    return job_main(pipeline.add_arguments, pipeline.run, [*pipeline_args, "--lake", lake_uri, "--run-id", run_id])


def _raise_exit(signum, _frame) -> None:
    raise SystemExit(128 + signum)  # so the `with` blocks stop the daemons


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pipeline_args = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    d = ClusterConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", default=None,
                   help="folder for the lakes, logs and work dirs (default: a new /tmp/grec_cluster_*)")
    p.add_argument("--run-id", default="cluster", help="run id of both runs (default: cluster)")
    p.add_argument("--workers", type=int, default=d.workers)
    p.add_argument("--worker-cores", type=int, default=d.worker_cores)
    p.add_argument("--worker-memory", default=d.worker_memory)
    p.add_argument("--executor-memory", default=d.executor_memory)
    p.add_argument("--driver-memory", default=d.driver_memory)
    p.add_argument("--cluster-only", action="store_true", help="skip the local[2] reference run and the comparison")
    args = p.parse_args(own)
    clash = [a for a in pipeline_args if a.split("=")[0] in ("--lake", "--run-id")]
    if clash:
        p.error(f"{clash}: the script sets --lake and --run-id of the pipeline runs itself")
    if not pipeline_args:
        p.error("no pipeline arguments: pass them after `--`, e.g. -- --source synthetic --rows 5000")
    config = ClusterConfig(workers=args.workers, worker_cores=args.worker_cores, worker_memory=args.worker_memory,
                           executor_memory=args.executor_memory, driver_memory=args.driver_memory)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="grec_cluster_")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _raise_exit)

    from etl.lake import Lake

    cluster_lake, local_lake = Lake(str(workdir / "lake-cluster")), Lake(str(workdir / "lake-local"))
    rc = run_on_cluster(workdir, [*pipeline_args, "--lake", cluster_lake.root, "--run-id", args.run_id], config)
    if rc != 0:
        print(f"the cluster run failed (exit code {rc}); last lines of {workdir / 'logs' / 'driver.log'}:\n"
              + _tail(workdir / "logs" / "driver.log"), file=sys.stderr)
        return EXIT_FAILED
    if args.cluster_only:
        return EXIT_OK
    rc = run_reference(local_lake.root, args.run_id, pipeline_args)
    if rc != 0:
        print(f"the local[2] reference run failed (exit code {rc})", file=sys.stderr)
        return EXIT_FAILED
    from etl.session import get_spark

    diffs = compare_lakes(get_spark("grec-reference"), cluster_lake, local_lake)
    print(f"{'table':<24} {'cluster':>10} {'local[2]':>10}")
    print("\n".join(d.line() for d in diffs))
    return EXIT_OK if diffs and all(d.same for d in diffs) else EXIT_DIFFERENT


if __name__ == "__main__":
    raise SystemExit(main())
