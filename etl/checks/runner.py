"""Run a list of `schemas.Expectation`s on a Spark DataFrame with Great Expectations 1.x.

One ephemeral GX context per process (creating one costs seconds); the DataFrame should be cached
by the caller: the screen scans it once, and GX again for every rule that fails.
"""
from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame

from etl.checks.report import ExpectationOutcome
from etl.checks.screen import batch_view, screen
from schemas import Expectation

_ids = itertools.count()
SAMPLE_SIZE = 10


@lru_cache(maxsize=1)
def gx_context():
    """The process's GX context and its batch definition for whole Spark DataFrames."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    for name in ("great_expectations", "great_expectations._docs_decorators"):
        logging.getLogger(name).setLevel(logging.ERROR)
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    # persist=False: GX would cache every frame it is given and never release it. The frames a
    # stage checks are cached by the stage already; the others (a key rule's violating rows) would
    # stay registered with Spark's cache manager for the life of the process, and every later
    # query's planning compares its plan with each registered one.
    batch_def = (ctx.data_sources.add_spark(name="grec", persist=False)
                 .add_dataframe_asset(name="frame")
                 .add_batch_definition_whole_dataframe("whole"))
    return ctx, batch_def


def _build(exp: Expectation, index: int):
    import great_expectations as gx

    cls = getattr(gx.expectations, exp.kind, None)
    if cls is None:
        raise ValueError(f"unknown Great Expectations expectation {exp.kind!r} in {exp.describe()}")
    # GX returns results in its own order; the index in meta ties each back to its expectation.
    return cls(**dict(exp.kwargs), meta={"grec_index": index})


@dataclass
class SuiteRun:
    """One validation of a suite: grec's outcomes plus GX's own result, which Data Docs render."""

    outcomes: list[ExpectationOutcome]
    seconds: float
    gx_result: Any  # ExpectationSuiteValidationResult, both passes merged (see validate_suite)


def validate(df: DataFrame, expectations: Sequence[Expectation], table: str) -> tuple[list[ExpectationOutcome], float]:
    """Validate `df` against `expectations`; returns the outcomes (one per expectation) and seconds."""
    run = validate_suite(df, expectations, table)
    return run.outcomes, run.seconds


def validate_suite(df: DataFrame, expectations: Sequence[Expectation], table: str,
                   suite_name: str | None = None, verdicts: Sequence[bool | None] | None = None) -> SuiteRun:
    """Validate `df` against `expectations` as the GX suite `suite_name` (default: `table`).

    Three steps, so that a passing suite costs one scan of the frame:
    1. `screen.screen` answers the schema rules from the frame's schema and evaluates every data
       rule it knows as one aggregate query;
    2. GX validates the rules the screen left alone (shapes it does not know, such as a row rule
       with a subquery) with result_format BOOLEAN_ONLY;
    3. GX validates every rule that failed either step with SUMMARY (counts, percentages, sample
       bad values); its verdict is the one reported.
    GX's SUMMARY fetches a sample of unexpected values for every column rule, passing or not, and
    even BOOLEAN_ONLY runs jobs per rule: on 1M examples (62 rules) they took 98 and 36 Spark jobs.
    Passing rules are reported without an observed value. The GX result holds every rule (the
    screened passes as passed results of their expectations), so Data Docs show the whole suite
    and the failed rules' counts and samples without validating again.

    `verdicts`, when given, stand for step 1: the caller screened the rules itself (as
    `Stage.check_empty` counts several frames in one job).
    """
    t0 = time.perf_counter()
    verdicts = screen(df, expectations) if verdicts is None else list(verdicts)
    unscreened = [i for i, v in enumerate(verdicts) if v is None]
    first_pass, gx_results = _results(df, [expectations[i] for i in unscreened], {"result_format": "BOOLEAN_ONLY"})
    results: list[Any] = [None] * len(expectations)
    for i, r in zip(unscreened, gx_results):
        results[i] = r
    for i, v in enumerate(verdicts):
        if v:
            results[i] = _passed(expectations[i], i)
    failed = [i for i, r in enumerate(results) if r is None or not r.success]
    if failed:
        _, detailed = _results(df, [expectations[i] for i in failed],
                               {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE})
        for i, r in zip(failed, detailed):
            results[i] = r
    outcomes = [_outcome(df, table, exp, r) for exp, r in zip(expectations, results)]
    return SuiteRun(outcomes, time.perf_counter() - t0, _merged(first_pass, results, suite_name or table))


def _passed(exp: Expectation, index: int) -> Any:
    """GX's result object for a rule the screen passed, as a BOOLEAN_ONLY validation reports it."""
    from great_expectations.core.expectation_validation_result import ExpectationValidationResult

    return ExpectationValidationResult(success=True, expectation_config=_build(exp, index).configuration,
                                       result={}, exception_info={"raised_exception": False,
                                                                  "exception_message": None,
                                                                  "exception_traceback": None})


def _results(df: DataFrame, expectations: Sequence[Expectation], result_format: dict[str, Any]) -> tuple[Any, list]:
    """GX's suite result, and its expectation results in the order of `expectations`."""
    import great_expectations as gx

    _, batch_def = gx_context()
    suite = gx.ExpectationSuite(name=f"grec-{next(_ids)}", expectations=[_build(e, i) for i, e in enumerate(expectations)])
    batch = batch_def.get_batch(batch_parameters={"dataframe": df})
    result = batch.validate(suite, result_format=result_format)
    return result, sorted(result.results, key=lambda r: r.expectation_config.meta["grec_index"])


def _merged(first_pass: Any, results: list, suite_name: str) -> Any:
    """`first_pass`'s suite result (kept for its batch metadata) holding `results`, named `suite_name`."""
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult
    from great_expectations.validator.validation_statistics import calc_validation_statistics

    stats = calc_validation_statistics(results)
    return ExpectationSuiteValidationResult(
        success=stats.success, results=results, suite_name=suite_name, meta=dict(first_pass.meta),
        batch_id=first_pass.batch_id,
        statistics={k: getattr(stats, k) for k in ("evaluated_expectations", "successful_expectations",
                                                   "unsuccessful_expectations", "success_percent")})


def _outcome(df: DataFrame, table: str, exp: Expectation, r) -> ExpectationOutcome:
    res: dict[str, Any] = dict(r.result or {})
    exc = (r.exception_info or {})
    error = exc.get("exception_message") if exc.get("raised_exception") else None
    success = bool(r.success) and error is None
    sample = list(res.get("partial_unexpected_list") or [])[:SAMPLE_SIZE]
    if not success and error is None and exp.kind == "UnexpectedRowsExpectation":
        try:
            sample = unexpected_rows_sample(df, exp.kwargs["unexpected_rows_query"])
        except AnalysisException as e:  # GX fails a query Spark cannot plan without saying why
            error = str(e).splitlines()[0]
    return ExpectationOutcome(
        table=table, expectation=exp.describe(), success=success,
        observed=res.get("observed_value"), unexpected_count=res.get("unexpected_count"),
        unexpected_percent=res.get("unexpected_percent"), sample=sample, error=error)


def unexpected_rows_sample(df: DataFrame, query: str) -> list[dict[str, Any]]:
    """Up to SAMPLE_SIZE rows of a failed row rule, as dicts, for the report: GX returns the rows
    only with result_format COMPLETE, which would make every column rule list all its bad values."""
    with batch_view(df) as view:
        rows = df.sparkSession.sql(query.replace("{batch}", view)).limit(SAMPLE_SIZE).collect()
    return [r.asDict(recursive=True) for r in rows]
