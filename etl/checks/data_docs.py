"""Great Expectations Data Docs for a stage's checks: GX's own static HTML site, beside the Markdown
and JSON reports, at `<lake>/_reports/<run>/data_docs/<stage>/index.html`, one validation page per
`Stage.check` (its suite is named `<stage>.<table>`).

The pages render the validation results the checks already computed (`SuiteRun.gx_result`): nothing
is validated again. GX writes a site to a local directory only, so it is built in a temporary one
and copied into the lake through Hadoop's FileSystem, like the other reports (any lake scheme).
"""
from __future__ import annotations

import logging
import re
import tempfile
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from pyspark.sql import SparkSession

from etl.checks.runner import gx_context
from etl.lake import Lake

logger = logging.getLogger(__name__)

# The site builder renders every suite and result in the context's stores, and the process has one
# context (runner.gx_context): builds take turns, each removing its suites and results when done.
_store_lock = threading.Lock()

# GX's static assets that no page uses once the "how to" buttons are off: two animated GIFs of its
# tutorials, 3.4 MB of the 4 MB that would otherwise be copied into the lake for every stage.
_UNUSED_ASSETS = ("glossary_scroller.gif", "validation_failed_unexpected_values.gif")


def site_uri(lake: Lake, run_id: str, stage: str) -> str:
    """Where stage `stage` of run `run_id` writes its Data Docs site (the folder of index.html)."""
    return f"{lake.root}/_reports/{run_id}/data_docs/{stage}"


def suite_name(stage: str, table: str) -> str:
    """The GX suite name of a stage's checks of `table`. GX makes each dot-separated part a folder
    of the page's path, so other characters are replaced ("gold.edges: no self loops" is a label,
    not only a table name)."""
    parts = (re.sub(r"[^A-Za-z0-9_-]+", "_", p).strip("_") for p in f"{stage}.{table}".split("."))
    return ".".join(p for p in parts if p)


def build(spark: SparkSession, lake: Lake, run_id: str, stage: str, results: Sequence[Any]) -> str:
    """Render `results` (GX suite validation results) as the stage's site in the lake, replacing
    the one an earlier attempt of the same run and stage wrote; returns the index page's URI."""
    uri = site_uri(lake, run_id, stage)
    with tempfile.TemporaryDirectory(prefix="grec-data-docs-") as tmp:
        render(results, run_id, Path(tmp))
        lake.put_dir(spark, tmp, uri)
    return f"{uri}/index.html"


def render(results: Sequence[Any], run_name: str, out: Path) -> None:
    """Write a Data Docs site of `results` into the local folder `out` (`out/index.html` and pages).

    The site has a page per result and one per suite (the index links both), each suite holding
    the expectations of the results that name it."""
    from great_expectations import ExpectationSuite
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (ExpectationSuiteIdentifier,
                                                                            ValidationResultIdentifier)
    from great_expectations.render.renderer.site_builder import SiteBuilder

    ctx, _ = gx_context()
    run_id = RunIdentifier(run_name=run_name, run_time=datetime.now(timezone.utc))
    # The check's ordinal tells apart two checks that got the same suite name.
    keys = [ValidationResultIdentifier(ExpectationSuiteIdentifier(r.suite_name), run_id, f"check-{i}")
            for i, r in enumerate(results, 1)]
    suites: dict[str, list] = {}
    for r in results:
        suites.setdefault(r.suite_name, []).extend(e.expectation_config.to_domain_obj() for e in r.results)
    store = ctx.validation_results_store
    with _store_lock:
        try:
            for name, expectations in suites.items():
                ctx.suites.add_or_update(ExpectationSuite(name=name, expectations=expectations))
            for key, result in zip(keys, results):
                result.meta["run_id"] = run_id  # the page's header shows it
                store.set(key, result)
            site = SiteBuilder(data_context=ctx, site_name="grec", show_how_to_buttons=False,
                               store_backend={"class_name": "TupleFilesystemStoreBackend",
                                              "base_directory": str(out)},
                               site_section_builders={"profiling": "None"})
            site.build()
        finally:
            for key in keys:
                if store.has_key(key):
                    store.remove_key(key)
            for suite in ctx.suites.all():
                if suite.name in suites:
                    ctx.suites.delete(suite.name)
    for name in _UNUSED_ASSETS:
        for f in out.glob(f"static/**/{name}"):
            f.unlink()
    logger.debug("Data Docs of %d checks rendered into %s", len(results), out)
