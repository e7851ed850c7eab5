"""The graph, neighbors, examples and macro job shells on a tiny lake: checks pass on good data,
properties chain the stages, the manifest records them, and bad flags fail with exit code 1."""
from __future__ import annotations

import json
from datetime import date, datetime

import pytest

from etl.jobs import examples as examples_job
from etl.jobs import graph as graph_job
from etl.jobs import macro as macro_job
from etl.jobs import neighbors as neighbors_job
from etl.jobs.shell import job_main
from etl.lake import RunManifest
from etl.stage import read_report
from schemas.contract import EXIT_INPUT, EXIT_OK
from schemas.tables import EDGES, ITEMS, NEIGHBORS, NODES, PAD_NODE, PAD_TYPE, SWING_I2I, USERS, examples, interactions

LABELS = ["like", "love"]


def _bronze(spark, lake):
    days = [date(2024, 1, d) for d in (1, 2, 3, 4)]
    rows = []
    for n, (u, i) in enumerate([(u, i) for u in range(6) for i in range(5) if (u + i) % 3 != 0]):
        d = days[n % 4]
        dom = "A" if i < 3 else "B"
        rows.append((f"u{u}", f"i{i}", datetime(d.year, d.month, d.day, 9), d, dom, int((u * i) % 2 == 0), int(u == i)))
    schema = interactions(LABELS)
    lake.write(spark.createDataFrame(rows, schema.spark_schema()), schema, run_id="seed", stage="ingest",
               properties={"grec.labels": "like,love"})
    lake.write(spark.createDataFrame([(f"u{u}", [float(u)]) for u in range(7)], USERS.spark_schema()),
               USERS, run_id="seed", stage="ingest")
    lake.write(spark.createDataFrame([(f"i{i}", "A" if i < 3 else "B", [1.0, float(i)]) for i in range(5)],
                                     ITEMS.spark_schema()), ITEMS, run_id="seed", stage="ingest")
    swing = [("i1", "i2", 0.5, 2, 1), ("i2", "i1", 0.5, 2, 1), ("i2", "i4", 0.25, 2, 2)]
    lake.write(spark.createDataFrame(swing, SWING_I2I.spark_schema()), SWING_I2I, run_id="seed", stage="swing")
    return rows


@pytest.mark.slow
def test_graph_side_stages_end_to_end(spark, lake, capsys):
    rows = _bronze(spark, lake)
    n_rows = len(rows)
    common = ["--lake", lake.root, "--run-id", "r1"]
    assert job_main(graph_job.add_arguments, graph_job.run, common) == EXIT_OK
    # 20 rows, 5 a day on Jan 1..4. Default split: eval 10% = 2 rows -> Jan 4 alone; val 2 rows -> Jan 3.
    notes = read_report(spark, lake, "r1", "graph").notes
    assert (notes["cutoff"], notes["eval_cutoff"]) == ("2024-01-03", "2024-01-04")
    by_split = {"train": [r for r in rows if r[3].day < 3], "val": [r for r in rows if r[3].day == 3],
                "eval": [r for r in rows if r[3].day == 4]}
    for split, part in by_split.items():
        assert (notes[f"{split}_rows"], notes[f"{split}_users"]) == (len(part), len({r[0] for r in part})), split
    err = capsys.readouterr().err
    assert "WARNING" in err and "5 rows" in err  # far below MIN_EVAL_ROWS
    assert job_main(neighbors_job.add_arguments, neighbors_job.run, common + ["--k", "3", "--seed", "4"]) == EXIT_OK
    assert job_main(examples_job.add_arguments, examples_job.run, common) == EXIT_OK
    assert job_main(macro_job.add_arguments, macro_job.run, common + ["--clusters", "2"]) == EXIT_OK

    edge_props = lake.properties(spark, EDGES)
    assert edge_props["grec.cutoff"] == "2024-01-03" and edge_props["grec.edge_types"] == "like,love,swing"
    assert edge_props["grec.eval_cutoff"] == "2024-01-04"
    assert edge_props["grec.split"] == "eval: last 10% of rows, val: the 10% before"
    assert lake.read(spark, NODES).count() == 7 + 5
    ex = lake.read(spark, "gold.examples")
    assert ex.count() == n_rows
    assert {(r["day"], r["split"]) for r in ex.select("day", "split").distinct().collect()} == {
        (19723, "train"), (19724, "train"), (19725, "val"), (19726, "eval")}   # 19723 = 2024-01-01
    ex_props = lake.properties(spark, "gold.examples")
    assert (ex_props["grec.cutoff"], ex_props["grec.eval_cutoff"]) == ("2024-01-03", "2024-01-04")
    assert (ex_props["grec.k"], ex_props["grec.domains"], ex_props["grec.labels"]) == ("3", "A,B", "like,love")
    # Slim rows by default: the impression only; the lists stay in gold.neighbors.
    assert ex.columns == ["user_node", "item_node", "day", "split", "domain_id", *LABELS]
    assert ex_props["grec.neighbor_arrays"] == "false"
    macro_props = lake.properties(spark, "gold.macro")
    assert macro_props["grec.n_domains"] == "2" and int(macro_props["grec.n_clusters"]) <= 2
    stages = {r["stage"]: r["status"] for r in RunManifest(lake).records(spark, "r1").collect()}
    assert stages == {"graph": "succeeded", "neighbors": "succeeded", "examples": "succeeded", "macro": "succeeded"}
    config = json.loads(RunManifest(lake).records(spark, "r1").where("stage = 'examples'").first()["config"])
    assert config["neighbor_arrays"] is False and config["k"] == 3

    # --neighbor-arrays: each row carries its nodes' features and gold.neighbors lists, cut to --k and padded.
    assert job_main(examples_job.add_arguments, examples_job.run,
                    ["--lake", lake.root, "--run-id", "r1-arrays", "--k", "2", "--neighbor-arrays"]) == EXIT_OK
    ex_props = lake.properties(spark, "gold.examples")
    assert (ex_props["grec.neighbor_arrays"], ex_props["grec.k"]) == ("true", "2")
    arrays = lake.read(spark, "gold.examples")
    assert arrays.columns == examples(LABELS, neighbor_arrays=True).names and arrays.count() == n_rows
    lists = {r["node_id"]: r for r in lake.read(spark, NEIGHBORS).collect()}
    features = {r["node_id"]: list(r["features"]) for r in lake.read(spark, NODES).collect()}
    for r in arrays.collect():
        for side in ("user", "item"):
            nb = lists[r[f"{side}_node"]]
            real = len(nb["nbr_ids"][:2])
            pad = 2 - real
            assert list(r[f"{side}_nbr_ids"]) == list(nb["nbr_ids"][:2]) + [PAD_NODE] * pad
            assert list(r[f"{side}_nbr_weights"]) == list(nb["nbr_weights"][:2]) + [0.0] * pad
            assert list(r[f"{side}_nbr_types"]) == list(nb["nbr_types"][:2]) + [PAD_TYPE] * pad
            assert (r[f"{side}_nbr_count"], r[f"{side}_degree"]) == (real, nb["degree"])
            assert list(r[f"{side}_features"]) == features[r[f"{side}_node"]]
    # The flag turned off again gives slim rows back.
    assert job_main(examples_job.add_arguments, examples_job.run,
                    ["--lake", lake.root, "--run-id", "r1-slim", "--no-neighbor-arrays"]) == EXIT_OK
    assert lake.read(spark, "gold.examples").columns == examples(LABELS).names
    assert lake.properties(spark, "gold.examples")["grec.neighbor_arrays"] == "false"

    # Flags the lake contradicts fail cleanly with exit code 1, and write nothing.
    versions = {t.name: lake.version(spark, t) for t in (NODES, EDGES, NEIGHBORS)}
    bad = ["--lake", lake.root, "--run-id", "r2"]
    assert job_main(examples_job.add_arguments, examples_job.run, bad + ["--k", "4"]) == EXIT_INPUT
    assert job_main(graph_job.add_arguments, graph_job.run, bad + ["--labels", "click"]) == EXIT_INPUT
    assert job_main(graph_job.add_arguments, graph_job.run, bad + ["--eval-days", "9"]) == EXIT_INPUT
    assert job_main(graph_job.add_arguments, graph_job.run, bad + ["--eval-fraction", "1.5"]) == EXIT_INPUT
    assert job_main(graph_job.add_arguments, graph_job.run, bad + ["--val-days", "-1"]) == EXIT_INPUT
    assert "--val-days" in capsys.readouterr().err
    assert job_main(neighbors_job.add_arguments, neighbors_job.run, bad + ["--k", "0"]) == EXIT_INPUT
    assert {t.name: lake.version(spark, t) for t in (NODES, EDGES, NEIGHBORS)} == versions


@pytest.mark.slow
def test_later_stages_read_properties_at_their_own_runs_versions(spark, lake):
    """Run r2 rebuilds the graph with another split and k between r1's neighbors and examples stages,
    as a concurrent run may: r1's examples and macro still take cutoffs and k from r1's own versions."""
    _bronze(spark, lake)

    def run(job, run_id: str, *flags: str) -> None:
        assert job_main(job.add_arguments, job.run, ["--lake", lake.root, "--run-id", run_id, *flags]) == EXIT_OK

    run(graph_job, "r1")                                          # default split: val Jan 3, eval Jan 4
    run(neighbors_job, "r1", "--k", "3")
    run(graph_job, "r2", "--eval-days", "2", "--val-days", "1")   # val Jan 2, eval Jan 3
    run(neighbors_job, "r2", "--k", "2")
    assert (lake.properties(spark, EDGES)["grec.cutoff"], lake.properties(spark, NEIGHBORS)["grec.k"]) \
        == ("2024-01-02", "2")                                    # the latest versions are r2's
    run(examples_job, "r1")
    run(macro_job, "r1", "--clusters", "2")

    ex_props = lake.properties(spark, "gold.examples")
    assert (ex_props["grec.cutoff"], ex_props["grec.eval_cutoff"], ex_props["grec.k"]) == \
        ("2024-01-03", "2024-01-04", "3")
    days = {r["day"]: r["split"] for r in lake.read(spark, "gold.examples").select("day", "split").distinct().collect()}
    assert days == {19723: "train", 19724: "train", 19725: "val", 19726: "eval"}   # 19723 = 2024-01-01
    assert lake.properties(spark, "gold.macro")["grec.cutoff"] == "2024-01-03"
    # and the manifest pins r1's examples to the nodes and neighbour lists r1 wrote
    pinned = RunManifest(lake).outputs_of(spark, "r1")
    read = {t["table"]: t["version"] for t in json.loads(
        RunManifest(lake).records(spark, "r1").where("stage = 'examples'").first()["inputs"])}
    assert (read[NODES.name], read[NEIGHBORS.name]) == (pinned[NODES.name].version, pinned[NEIGHBORS.name].version)
