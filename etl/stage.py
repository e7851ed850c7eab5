"""A stage of a run: read inputs, check results, and commit outputs only when every check passed.

    with Stage(spark, lake, run_id="r1", name="swing", config={"top_k": 100}) as st:
        pos = st.read("bronze.interactions")
        out = st.check(swing(pos), expectations, table=tables.SWING_I2I)
        st.commit(out, tables.SWING_I2I)

On a failed check nothing is written (every target table keeps its previous version), the report
(JSON + Markdown, naming each failed expectation with sample bad values or rows) goes to
`<lake>/_reports/<run>/<stage>.*` and GX's Data Docs of the checks to
`<lake>/_reports/<run>/data_docs/<stage>/index.html`, the manifest row says `failed`, and
`StageFailed` is raised.
Any other exception inside the block is recorded the same way and re-raised.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Collection, Literal, Mapping, Optional, Sequence

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from etl.checks import data_docs
from etl.checks.report import CheckReport, ExpectationOutcome
from etl.checks.rules import must_be_empty
from etl.checks.runner import validate_suite
from etl.checks.screen import count_rows
from etl.lake import Lake, LakeError, RunManifest, StageRecord, TableVersion
from schemas import Expectation, TableSchema

logger = logging.getLogger(__name__)


def read_report(spark: SparkSession, lake: Lake, run_id: str, stage: str) -> CheckReport:
    """The check report that stage `stage` of run `run_id` wrote (raises LakeError when there is none)."""
    uri = lake.report_path(run_id, stage) + ".json"
    try:
        return CheckReport.from_json(lake.read_text(spark, uri))
    except ValueError as e:
        raise LakeError(f"{uri}: {e}") from None


class StageFailed(RuntimeError):
    """A stage's quality checks failed; nothing was committed."""

    def __init__(self, report: CheckReport, report_path: str):
        self.report = report
        self.report_path = report_path
        super().__init__(f"stage {report.stage} of run {report.run_id} failed its checks; "
                         f"report: {report_path}.md\n{report.summary()}")


@dataclass
class _PendingWrite:
    df: DataFrame
    schema: TableSchema
    properties: dict[str, str] = field(default_factory=dict)
    replace_where: Optional[str] = None


def log(msg: str) -> None:
    """A progress line of a stage or job (etl.logs.configure_logging prints it on stderr)."""
    logger.info(msg)


class Stage:
    """Validate-then-commit context for one stage of one run (see the module docstring)."""

    def __init__(self, spark: SparkSession, lake: Lake, run_id: str, name: str,
                 config: Optional[dict[str, Any]] = None):
        self.spark, self.lake, self.run_id, self.name = spark, lake, run_id, name
        self.manifest = RunManifest(lake)
        self.record = StageRecord(run_id=run_id, stage=name, status="running", config=dict(config or {}))
        self.report = CheckReport(run_id=run_id, stage=name)
        self._writes: list[_PendingWrite] = []
        self._cached: list[DataFrame] = []
        self._gx_results: list[Any] = []  # GX's result of each check, rendered as Data Docs
        self._t0 = 0.0

    # ---- inside the block -----------------------------------------------------------------
    def read(self, table: str | TableSchema, version: Optional[int] = None) -> DataFrame:
        """Read an input table (pinned, this run's own version, else the latest) and record the version."""
        name = table.name if isinstance(table, TableSchema) else table
        if version is None:
            # a table this run wrote is read at the version it wrote, not at a later one that a
            # concurrent run committed (docs/etl.md, "Concurrent runs")
            version = self.manifest.own_version(self.spark, self.run_id, name)
        v = self.lake.version(self.spark, table) if version is None else version
        df = self.lake.read(self.spark, table, version=v)
        assert v is not None  # lake.read raised LakeError if the table does not exist
        self.record.inputs.append(TableVersion(name, v))
        return df

    def check(self, df: DataFrame, expectations: Sequence[Expectation], table: str | TableSchema,
              cache: bool = True) -> DataFrame:
        """Run a GX suite on `df`; returns the frame to commit.

        With `cache` the frame is cached and computed first, so the checks and the commit read it
        from memory; computing it is the stage's work and is timed apart from the checks (the
        report's check_seconds is the validation alone)."""
        name = table.name if isinstance(table, TableSchema) else table
        computed = ""
        if cache:
            df = self.persist(df)
            t0 = time.perf_counter()
            df.count()
            computed = f"; frame computed in {time.perf_counter() - t0:.1f} s"
        self._validate(df, expectations, name, computed=computed)
        return df

    def _validate(self, df: DataFrame, expectations: Sequence[Expectation], name: str,
                  verdicts: Optional[Sequence[Optional[bool]]] = None, computed: str = "") -> None:
        run = validate_suite(df, expectations, name, suite_name=data_docs.suite_name(self.name, name),
                             verdicts=verdicts)
        outcomes, secs = run.outcomes, run.seconds
        self._gx_results.append(run.gx_result)
        self.report.outcomes.extend(outcomes)
        self.report.seconds += secs
        failed = sum(not o.success for o in outcomes)
        log(f"{self.name}: checked {name}: {len(outcomes) - failed}/{len(outcomes)} passed ({secs:.1f} s{computed})")

    def check_empty(self, violations: Mapping[str, DataFrame] | Callable[[], Mapping[str, DataFrame]],
                    table: str | TableSchema, proven: Optional[Callable[[], Collection[str]]] = None) -> None:
        """Check that each frame of violating rows (a key rule computed as a join, by rule name)
        is empty. The frames are counted together, in one Spark query (screen.count_rows); GX
        validates only a frame that has rows, fetching its count and sample rows.

        `proven`, when given, runs first and names the rules it proved empty by a cheaper query
        (e.g. etl.checks.graph.proven_edge_rules); their frames are not counted. It runs only
        while every check so far passed: a proof may rest on rules checked before it, and a
        failing stage's report should count every rule anyway.

        `violations` may be a function that builds the frames: it is then timed with the checks
        (etl.checks.neighbors.neighbor_violations runs a query to plan its join)."""
        name = table.name if isinstance(table, TableSchema) else table
        t0 = time.perf_counter()
        if callable(violations):
            violations = violations()
        done = set(proven()) if proven is not None and self.report.success else set()
        unknown = done - set(violations)
        if unknown:
            raise ValueError(f"{self.name}: proven rules {sorted(unknown)} are not rules of {name}")
        screened = f" ({len(done)} proven by a screen in {time.perf_counter() - t0:.1f} s)" if proven else ""
        rest = [rule for rule in violations if rule not in done]
        counts = dict(zip(rest, count_rows([violations[rule] for rule in rest])))
        secs = time.perf_counter() - t0
        self.report.seconds += secs
        log(f"{self.name}: counted the violations of {len(violations)} rules of {name} in {secs:.1f} s{screened}")
        for rule, bad in violations.items():
            self._validate(bad, must_be_empty(rule), f"{name}: {rule}", verdicts=[counts.get(rule, 0) == 0])

    def persist(self, df: DataFrame) -> DataFrame:
        """Cache a frame that several checks and writes reuse; released when the stage ends."""
        df = df.persist(StorageLevel.MEMORY_AND_DISK)
        self._cached.append(df)
        return df

    def add_outcome(self, outcome: ExpectationOutcome) -> None:
        """Record a rule evaluated by the stage itself (e.g. a quarantine threshold)."""
        self.report.outcomes.append(outcome)

    def note(self, key: str, value: Any) -> None:
        self.report.notes[key] = value

    def commit(self, df: DataFrame, schema: TableSchema, properties: Optional[dict[str, str]] = None,
               replace_where: Optional[str] = None) -> None:
        """Queue `df` as the next version of `schema`'s table; written at block exit if checks passed."""
        self._writes.append(_PendingWrite(df, schema, dict(properties or {}), replace_where))

    # ---- the context ------------------------------------------------------------------------
    def __enter__(self) -> "Stage":
        self._t0 = time.perf_counter()
        log(f"{self.name}: started (run {self.run_id})")
        self.manifest.claim(self.spark, self.record)
        return self

    def __exit__(self, exc_type, exc, tb) -> Literal[False]:
        # GX renders the site in Python while the commits below wait on Spark: a second core's work
        docs = threading.Thread(target=self._write_data_docs, name=f"data-docs-{self.name}", daemon=True)
        docs.start()
        try:
            if exc is None and self.report.success:
                self._write_all()
                self.record.status, self.record.message = "succeeded", None
            else:
                self.record.status = "failed"
                self.record.message = (f"{exc_type.__name__}: {exc}" if exc is not None
                                       else "; ".join(o.line() for o in self.report.failures)[:2000])
            self.record.finished_at = datetime.now(timezone.utc)
            path = self._write_report(docs)
            self.record.report = path + ".md"
            self.manifest.append(self.spark, self.record)
        finally:
            for df in self._cached:
                df.unpersist()
        secs = time.perf_counter() - self._t0
        if exc is not None:
            log(f"{self.name}: FAILED after {secs:.1f} s ({exc_type.__name__}); report {path}.md")
            return False
        if not self.report.success:
            log(f"{self.name}: FAILED its checks after {secs:.1f} s; nothing written; report {path}.md")
            raise StageFailed(self.report, path)
        log(f"{self.name}: done in {secs:.1f} s; report {path}.md")
        return False

    def _write_all(self) -> None:
        for w in self._writes:
            tv = self.lake.write(w.df, w.schema, run_id=self.run_id, stage=self.name,
                                 properties=w.properties, replace_where=w.replace_where)
            self.record.outputs.append(tv)
            log(f"{self.name}: committed {tv.table} version {tv.version} ({tv.rows:,} rows)")

    def _write_report(self, docs: threading.Thread) -> str:
        path = self.lake.report_path(self.run_id, self.name)
        self.report.notes.setdefault("outputs", [f"{t.table}@v{t.version} ({t.rows} rows)" for t in self.record.outputs])
        docs.join()  # the reports name the site
        self.lake.write_text(self.spark, path + ".json", self.report.to_json())
        self.lake.write_text(self.spark, path + ".md", self.report.to_markdown())
        return path

    def _write_data_docs(self) -> None:
        """GX's Data Docs of this stage's checks; the Markdown and JSON reports name the site.

        A rendering error is logged and noted, not raised: the site is another view of results the
        JSON report already holds, and must not turn a passing stage into a failed one, nor hide
        the check failure that a failed stage is about to report."""
        if not self._gx_results:
            return
        t0 = time.perf_counter()
        try:
            index = data_docs.build(self.spark, self.lake, self.run_id, self.name, self._gx_results)
        except Exception as e:  # noqa: BLE001 (see the docstring)
            logger.warning("%s: Data Docs not written: %s: %s", self.name, type(e).__name__, e, exc_info=True)
            self.report.notes["data_docs_error"] = f"{type(e).__name__}: {e}"
            return
        self.report.notes["data_docs"] = index
        self.report.notes["data_docs_seconds"] = round(time.perf_counter() - t0, 3)
