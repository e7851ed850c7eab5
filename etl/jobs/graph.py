"""Graph stage: bronze interactions + side tables + silver.swing_i2i -> gold.nodes, gold.edges,
gold.graph_stats (SPEC §3).

    spark-submit etl/jobs/graph.py --lake lake [--run-id R] [--labels like,love] [--eval-days 14]

Only interactions before the cutoff (the first of the last --eval-days days) build edges; the
cutoff is recorded as gold.edges' property grec.cutoff for the later stages. silver.swing_i2i must
itself come from pre-cutoff positives (the swing stage's job) or evaluation labels leak through
the item–item edges.
"""
from __future__ import annotations

import argparse

from pyspark.sql import SparkSession

from etl.checks.graph_rules import edge_rules, edge_violations, graph_stats_rules, must_be_empty, node_rules
from etl.jobs._graph_props import (INTERACTIONS, add_labels_argument, comma_list, resolve_eval_days,
                                   resolve_labels)
from etl.jobs._main import InputError, add_common_arguments, job_main
from etl.lake import Lake, StageRecord
from etl.session import get_spark, has_graphframes_jar
from etl.stage import Stage
from etl.transforms.graph import GraphParams, build_graph, edge_type_codes, eval_cutoff
from etl.transforms.graph_algos import graph_stats
from schemas.tables import EDGES, GRAPH_STATS, ITEMS, NODES, SWING_I2I, USERS

STAGE = "graph"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    add_labels_argument(parser)
    parser.add_argument("--eval-days", type=int, default=None,
                        help="evaluated days at the end of the log; earlier days build the graph "
                             "(default: bronze.interactions' grec.eval_days, else 7)")


def graph_stage(spark: SparkSession, lake: Lake, run_id: str, labels: list[str], eval_days: int) -> StageRecord:
    try:
        codes = edge_type_codes(labels)
    except ValueError as e:
        raise InputError(f"graph: {e}") from None
    if has_graphframes_jar() and not spark.sparkContext.getCheckpointDir():
        spark.sparkContext.setCheckpointDir(f"{lake.root}/_checkpoints/{run_id}")
    with Stage(spark, lake, run_id, STAGE, {"labels": labels, "eval_days": eval_days}) as st:
        interactions = st.read(INTERACTIONS)
        try:
            cutoff = eval_cutoff(interactions, eval_days)
        except ValueError as e:
            raise InputError(f"{INTERACTIONS}: {e}") from None
        st.note("cutoff", cutoff.isoformat())
        g = build_graph(interactions, st.read(USERS), st.read(ITEMS), st.read(SWING_I2I),
                        GraphParams(labels=labels, cutoff=cutoff))
        nodes = st.check(g.nodes, node_rules(), NODES)
        edges = st.check(g.edges, edge_rules(labels), EDGES)
        for rule, bad in edge_violations(edges, nodes, interactions, labels, cutoff).items():
            st.check(bad, must_be_empty(rule), f"{EDGES.name}: {rule}")
        stats = st.check(graph_stats(nodes, edges), graph_stats_rules(), GRAPH_STATS)
        props = {"grec.labels": comma_list(labels, "labels"), "grec.cutoff": cutoff.isoformat(),
                 "grec.eval_days": str(eval_days), "grec.edge_types": ",".join(codes)}
        st.commit(nodes, NODES, props)
        st.commit(edges, EDGES, props)
        st.commit(stats, GRAPH_STATS, props)
    return st.record


def run(args: argparse.Namespace) -> int:
    spark = get_spark("grec-graph")
    lake = Lake(args.lake)
    graph_stage(spark, lake, args.run_id, resolve_labels(spark, lake, args.labels),
                resolve_eval_days(spark, lake, args.eval_days))
    return 0


if __name__ == "__main__":
    raise SystemExit(job_main(add_arguments, run, description=__doc__))
