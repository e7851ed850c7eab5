"""Graph stage: bronze interactions + side tables + silver.swing_i2i -> gold.nodes, gold.edges,
gold.graph_stats (docs/method.md §Graph).

    spark-submit etl/jobs/graph.py --lake lake [--run-id R] [--labels like,love] [--eval-fraction 0.1]

The interactions are split by time into train, val and eval (default: the last 10% of rows are
evaluated, the 10% before validated; see etl.transforms.split). Only training rows (before the
validation start) build edges, so validation and evaluation rows are equally unseen by the graph.
The cutoffs are recorded as gold.edges' properties grec.cutoff (validation start = graph window
end) and grec.eval_cutoff for the later stages. silver.swing_i2i must itself come from training
positives (the swing stage's job) or held-out labels leak through the item–item edges.
"""
from __future__ import annotations

from pyspark.sql import SparkSession

from etl.checks.graph import edge_rules, edge_violations, graph_stats_rules, node_rules, proven_edge_rules
from etl.jobs.shell import InputError, job_main
from etl.jobs.stage_inputs import INTERACTIONS, SPLIT_FLAGS_GROUP, join_list, resolve_split
from etl.jobs.stage_job import params_job
from etl.lake import Lake, StageRecord
from etl.session import has_graphframes_jar
from etl.stage import Stage, log
from etl.transforms.graph import GraphParams, build_graph, edge_type_codes
from etl.transforms.graph_algos import graph_stats
from etl.transforms.split import SplitPolicy, split_sizes
from schemas import contract
from schemas.split import EVAL, MIN_EVAL_ROWS, MIN_EVAL_USERS, SPLITS
from schemas.tables import EDGES, GRAPH_STATS, ITEMS, NODES, SWING_I2I, USERS

STAGE = "graph"


def warn_if_eval_too_small(sizes: dict[str, dict[str, int]], policy: SplitPolicy) -> None:
    """A loud warning when the evaluation is too small to trust (schemas.split)."""
    rows, users = sizes[EVAL]["rows"], sizes[EVAL]["users"]
    if rows < MIN_EVAL_ROWS or users < MIN_EVAL_USERS:
        log(f"WARNING: the evaluation split is too small to trust: {rows:,} rows (want >= {MIN_EVAL_ROWS:,}) "
            f"from {users:,} users (want >= {MIN_EVAL_USERS}) with {policy.describe()}; "
            "give a larger --eval-fraction")


def graph_stage(spark: SparkSession, lake: Lake, run_id: str, labels: list[str],
                policy: SplitPolicy = SplitPolicy()) -> StageRecord:
    try:
        codes = edge_type_codes(labels)
    except ValueError as e:
        raise InputError(f"graph: {e}") from None
    if has_graphframes_jar() and not spark.sparkContext.getCheckpointDir():
        spark.sparkContext.setCheckpointDir(f"{lake.root}/_checkpoints/{run_id}")
    with Stage(spark, lake, run_id, STAGE, {"labels": labels, "split": policy.describe()}) as st:
        interactions = st.read(INTERACTIONS)
        cutoffs = resolve_split(interactions, policy)
        cutoff = cutoffs.val_start  # the graph sees training rows only
        st.note("cutoff", cutoff.isoformat())
        st.note("eval_cutoff", cutoffs.eval_start.isoformat())
        sizes = split_sizes(interactions, cutoffs)
        for split in SPLITS:
            st.note(f"{split}_rows", sizes[split]["rows"])
            st.note(f"{split}_users", sizes[split]["users"])
        warn_if_eval_too_small(sizes, policy)
        swing = st.read(SWING_I2I)
        g = build_graph(interactions, st.read(USERS), st.read(ITEMS), swing, GraphParams(labels=labels, cutoff=cutoff))
        # cached before the edges are computed, so that they are built from the cache, which the
        # checks then compare them with instead of grouping the interactions again
        positive = st.persist(g.positive)
        # edges first: the nodes' degrees are counted from them, so once they are cached the
        # nodes are computed from the cache rather than building every edge a second time
        edges = st.check(g.edges, edge_rules(labels), EDGES)
        nodes = st.check(g.nodes, node_rules(), NODES)
        st.check_empty(edge_violations(edges, nodes, positive, swing), EDGES,
                       proven=lambda: proven_edge_rules(edges, nodes, positive, swing))
        stats = st.check(graph_stats(nodes, edges), graph_stats_rules(), GRAPH_STATS)
        props = {contract.LABELS.key: join_list(labels, "labels"), **cutoffs.to_properties(),
                 contract.SPLIT.key: policy.describe(), contract.EDGE_TYPES.key: ",".join(codes)}
        st.commit(nodes, NODES, props)
        st.commit(edges, EDGES, props)
        st.commit(stats, GRAPH_STATS, props)
    return st.record


JOB = params_job("grec-graph", SPLIT_FLAGS_GROUP, SplitPolicy, graph_stage)
add_arguments, run = JOB.add_arguments, JOB.run


if __name__ == "__main__":
    raise SystemExit(job_main(add_arguments, run, description=__doc__))
