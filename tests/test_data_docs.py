"""GX Data Docs: a stage whose checks fail still writes its site, and the validation page names the
suite and marks the injected failure (parsed here; opened in headless Chromium by the slow case)."""
from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from etl.checks.data_docs import site_uri
from etl.checks.rules import rows_rule
from etl.lake import Lake
from etl.stage import Stage, StageFailed
from schemas import Col, Kind, TableSchema

TOY = TableSchema("silver.toy", [Col("k", Kind.LONG, "key"), Col("v", Kind.DOUBLE, "value", min_value=0.0)],
                  key=("k",), unique_key=True)
SUITE = "toy.silver.toy"  # data_docs.suite_name("toy", "silver.toy")
# The injected failure as GX renders it: the column's section, then the failed mark, the rule, the count.
FAILED_MIN = re.compile(r"\bv Status Expectation Observed Value (?:(?!Observed Value).)*"
                        r"✗ values must be greater than or equal to 0\.0 \. 1 unexpected values found")


class _Text(HTMLParser):
    """A page's visible text, with ✗ / ✓ where GX draws its failed / passed icon."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._hidden += 1
        cls = dict(attrs).get("class") or ""
        if "fa-times" in cls:
            self.parts.append("✗")
        elif "fa-check-circle" in cls:
            self.parts.append("✓")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def page_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


@pytest.fixture(scope="module")
def failed_stage(spark, tmp_path_factory) -> tuple[Lake, StageFailed]:
    """Stage "toy" of run r1 with two checks: the schema's rules on rows holding an injected
    negative value and a duplicated key, and a row rule (an UnexpectedRowsExpectation) that fails."""
    lake = Lake(str(tmp_path_factory.mktemp("docs") / "lake"))
    df = spark.createDataFrame([(1, 1.0), (2, -5.0), (2, 3.0)], TOY.spark_schema())
    with pytest.raises(StageFailed) as err:
        with Stage(spark, lake, "r1", "toy") as st:
            df = st.check(df, TOY.expectations(), TOY)
            st.check(df, [rows_rule("no negative values", "v < 0")], "silver.toy: row rules")
    return lake, err.value


def site(lake: Lake) -> Path:
    return Path(site_uri(lake, "r1", "toy").removeprefix("file://"))


def validation_page(lake: Lake) -> Path:
    """The page of the schema rules' check, found through the site's index (its table's links)."""
    index = site(lake) / "index.html"
    links = sorted(set(re.findall(r"validations/[^'\"]+\.html", index.read_text())))
    assert len(links) == 2, links
    page = [link for link in links if link.startswith(f"validations/{SUITE.replace('.', '/')}/r1/")]
    assert len(page) == 1, links
    return index.parent / page[0]


def test_failed_stage_writes_data_docs_naming_the_suite_and_the_failure(failed_stage):
    lake, err = failed_stage
    assert err.report.notes["data_docs"] == site_uri(lake, "r1", "toy") + "/index.html"
    md = Path(err.report_path.removeprefix("file://") + ".md").read_text()
    assert "data_docs" in md and "/data_docs/toy/index.html" in md
    text = page_text(validation_page(lake).read_text())
    assert f"Expectation Suite: {SUITE}" in text and "Status: ✗ Failed" in text
    assert FAILED_MIN.search(text), text
    assert "-5.0" in text.split("values must be greater than or equal to")[1]  # the sample bad value
    assert "✗ values must be unique" in text
    # the suite page the index links holds the rules themselves
    suite_page = site(lake) / "expectations" / "toy" / "silver" / "toy.html"
    assert "expectations/toy/silver/toy.html" in (site(lake) / "index.html").read_text()
    assert "values must be greater than or equal to" in page_text(suite_page.read_text())


BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.skipif(BROWSER is None, reason="Chromium is not installed: `apt-get install -y chromium` on Debian "
                                            "(docs/etl.md, Data Docs)")
def test_data_docs_page_in_headless_chromium(failed_stage, tmp_path):
    page = validation_page(failed_stage[0])
    # --no-sandbox: Chromium refuses to run as root (containers, CI) with its sandbox on.
    dom = subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path}",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=True).stdout
    text = page_text(dom)
    assert f"Expectation Suite: {SUITE}" in text and "Status: ✗ Failed" in text
    assert FAILED_MIN.search(text), text
