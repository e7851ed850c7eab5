"""The analyst notebooks (notebooks/*.ipynb) run headless, as a person would run them, against a lake
the test builds (tests/notebook_lake.py) and a comparison it trains: every cell must execute, each
notebook must render its figures, and what it prints must match what the test works out itself."""
from __future__ import annotations

import base64
import math
import os
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import torch
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from etl.sources.base import shared_dir
from tests.notebook_lake import K, MOVIELENS, write_notebook_lake
from tests.test_training_compare import TINY
from tests.training_lake import write_planted_lake

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NAMES = ("01_lake_tour", "02_swing_neighbours", "03_graph", "04_model_comparison")
# figures each notebook draws (one image/png output per plotting cell)
FIGURES = {"01_lake_tour": 3, "02_swing_neighbours": 4, "03_graph": 4, "04_model_comparison": 2}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

torch.set_num_threads(1)


def execute(name: str, env: dict[str, str] | None = None, **params) -> nbformat.NotebookNode:
    """Run a notebook with `params` set in a cell after its `parameters` cell (papermill's way).

    Raises nbclient's CellExecutionError, with the cell's traceback, when any cell fails.
    """
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in params.items())))
    # The kernel runs this interpreter (the venv's) whatever kernelspecs the machine has installed.
    km = KernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))
    client = NotebookClient(nb, km=km, timeout=900, resources={"metadata": {"path": str(NOTEBOOKS)}})
    # One small Spark driver per kernel, next to the test session's.
    client.execute(env={**os.environ, "GREC_DRIVER_MEMORY": "1g", "GREC_SPARK_UI": "0", **(env or {})})
    return nb


def outputs(nb: nbformat.NotebookNode) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def figures(nb: nbformat.NotebookNode) -> int:
    pngs = [base64.b64decode(o["data"]["image/png"]) for o in outputs(nb) if "image/png" in o.get("data", {})]
    assert all(p.startswith(PNG_MAGIC) and len(p) > 2000 for p in pngs), "an image output is not a drawn PNG"
    return len(pngs)


def text(nb: nbformat.NotebookNode) -> str:
    return "\n".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs(nb))


@pytest.fixture(scope="module")
def built(spark, tmp_path_factory):
    if not (shared_dir() / "data" / MOVIELENS / "u.item").is_file():
        pytest.skip(f"MovieLens-100K not found under {shared_dir() / 'data'} (set GREC_SHARED)")
    base = tmp_path_factory.mktemp("notebooks")
    return write_notebook_lake(spark, base / "lake", base / "shared")


@pytest.fixture(scope="module")
def comparison(spark, tmp_path_factory):
    base = tmp_path_factory.mktemp("notebook_compare")
    planted = write_planted_lake(spark, str(base / "lake"), n_users=60)  # days of over 50 users count
    from training import compare

    out = base / "cmp"
    assert compare.main(["--lake", planted.root, "--run", planted.run_id, "--models", "ltr,e2e_grec",
                         "--seeds", "2", "--epochs", "1", "--grid", "lr=0.01", "--out", str(out), *TINY]) == 0
    return out


def test_notebooks_are_stored_clean_with_a_parameters_cell_first():
    for name in NAMES:
        nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert "parameters" in code[0].metadata.get("tags", []), name
        assert [c for c in code if c.get("outputs") or c.get("execution_count")] == [], f"{name} has outputs"
        assert nb.cells[0].cell_type == "markdown", f"{name} opens without its story"
        if name != "04_model_comparison":
            assert 'LAKE = os.environ.get("GREC_LAKE", "lake")' in code[0].source, name


def test_check_report_json_round_trip():
    from etl.checks.report import CheckReport, ExpectationOutcome

    report = CheckReport("r9", "swing", [
        ExpectationOutcome("silver.swing_i2i", "score > 0", True, observed=0.0),
        ExpectationOutcome("silver.swing_i2i", "no self pairs", False, unexpected_count=2, unexpected_percent=1.5,
                           sample=[["i1", "i1"]], error=None)], notes={"rows": 10}, seconds=1.25)
    back = CheckReport.from_json(report.to_json())
    assert back == report and not back.success and [o.expectation for o in back.failures] == ["no self pairs"]
    with pytest.raises(ValueError, match=r"keys \['outcomes'\] missing"):
        CheckReport.from_json('{"run_id": "r", "stage": "s"}')


def test_lake_readers_the_notebooks_use(built, spark):
    from etl.lake import Lake, LakeError, RunManifest
    from etl.stage import read_report

    lake = Lake(built.root)
    manifest = RunManifest(lake)
    assert manifest.latest_run(spark) == "r3"
    assert manifest.latest_run(spark, stage="swing", status="succeeded") == "r2"
    assert manifest.latest_run(spark, stage="ingest", status="succeeded") == "r1"
    with pytest.raises(LakeError, match="no run with a succeeded macro stage"):
        manifest.latest_run(spark, stage="macro", status="succeeded")

    history = [(r.version, r.run_id, r.stage, r.rows) for r in lake.history(spark, "silver.swing_i2i").collect()]
    assert history == [(1, "r2", "swing", built.swing_v1.rows), (0, "r1", "swing", built.swing_v0.rows)]

    report = read_report(spark, lake, "r3", "ingest")
    assert (report.run_id, report.stage, [o.expectation for o in report.failures]) == ("r3", "ingest", built.failed)
    assert read_report(spark, lake, "r1", "ingest").success
    with pytest.raises(LakeError, match="no file at .*_reports/r1/macro.json"):
        read_report(spark, lake, "r1", "macro")


def test_lake_tour(built):
    nb = execute("01_lake_tour", LAKE=built.root)
    assert figures(nb) == FIGURES["01_lake_tour"]
    out = text(nb)
    assert "3 run(s)" in out and "latest run: r3" in out
    assert (f"time travel: silver.swing_i2i v0 ({built.swing_v0.rows:,} rows) -> "
            f"v1 ({built.swing_v1.rows:,} rows)") in out
    assert "stages that read silver.swing_i2i v0: r1/graph" in out
    assert f"run r3: {len(built.failed)} failed expectation(s)" in out
    for expectation in built.failed:
        assert expectation in out
    assert "like" in " ".join(built.failed)


@pytest.mark.slow  # runs a notebook on a built lake (49 s on 2 cores); test_lake_tour keeps one in CI
def test_swing_neighbours(built, spark):
    from etl.lake import Lake

    titles = {}
    for line in (built.movielens_dir / "u.item").read_bytes().decode("latin-1").splitlines():
        item_id, title = line.split("|")[:2]
        titles[item_id] = title
    star_wars = next(i for i, t in titles.items() if t == "Star Wars (1977)")
    expected = (Lake(built.root).read(spark, "silver.swing_i2i", version=built.swing_v1.version)
                .where(f"item_id = '{star_wars}'").orderBy("rank").limit(3).collect())
    assert expected, "the test lake should give Star Wars Swing neighbours"

    nb = execute("02_swing_neighbours", env={"GREC_SHARED": built.shared}, LAKE=built.root,
                 ITEM_TITLE="star wars", PRESETS=["paper"])
    assert figures(nb) == FIGURES["02_swing_neighbours"]
    out = text(nb)
    assert f"run r2: silver.swing_i2i v{built.swing_v1.version}, {built.swing_v1.rows:,} pairs" in out
    assert f"item {star_wars}: Star Wars (1977) (domain action_adventure)" in out
    for r in expected:
        assert titles[r["neighbor_id"]] in out, r
    assert "paper: " in out and "of the run's top" in out


def _components(edges: list[tuple[int, int]], nodes: list[int]) -> int:
    parent = {n: n for n in nodes}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        parent[find(a)] = find(b)
    return len({find(n) for n in nodes})


@pytest.mark.slow  # runs a notebook on a built lake (47 s on 2 cores)
def test_graph(built, spark):
    from etl.lake import Lake

    lake = Lake(built.root)
    nodes = lake.read(spark, "gold.nodes").select("node_id", "node_type", "degree").collect()
    edges = [(r.src, r.dst) for r in lake.read(spark, "gold.edges").select("src", "dst").collect()]
    n_components = _components(edges, [r.node_id for r in nodes])
    hub = min((r for r in nodes if r.node_type == "item"), key=lambda r: (-r.degree, r.node_id))

    nb = execute("03_graph", LAKE=built.root)
    assert figures(nb) == FIGURES["03_graph"]
    out = text(nb)
    assert f"{n_components:,} connected components (graph_stats recorded {n_components:,})" in out
    assert (f"node {hub.node_id} (item") in out
    assert f"degree {hub.degree:,}, {min(K, hub.degree)} of {hub.degree:,} edges sampled (k = {K})" in out


def test_model_comparison(comparison):
    seeds = pd.read_parquet(comparison / "comparison_seeds.parquet")
    # over the days of 50 users or more: each seed's row-weighted mean AUC, the mean over seeds, the ratio
    counted = seeds[seeds["users"] >= 50].assign(weighted=lambda d: d["auc"] * d["n"])
    assert counted["date"].nunique() >= 1
    sums = counted.groupby(["model", "task", "seed"])[["weighted", "n"]].sum()
    per_seed = (sums["weighted"] / sums["n"]).groupby(["model", "task"]).mean()
    lift = {t: (per_seed["e2e_grec", t] / per_seed["ltr", t] - 1) * 100 for t in ("like", "love")}

    nb = execute("04_model_comparison", COMPARISON_DIR=str(comparison))
    assert figures(nb) == FIGURES["04_model_comparison"]
    out = text(nb)
    assert "models ['ltr', 'e2e_grec']; tasks ['like', 'love']" in out and "2 seed(s)" in out
    for task, value in lift.items():
        assert not math.isnan(value)
        assert f"{value:.2f}" in out, (task, value)
