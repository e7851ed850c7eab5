"""Macro stage: bronze interactions + gold.nodes -> gold.macro, MGOE's macro-graph counts (docs/method.md §Macro):
user clusters (KMeans on domain profiles), item domains, per-task 1st- and 2nd-order counts.

    spark-submit etl/jobs/macro.py --lake lake [--run-id R] [--clusters 20] [--seed 0] [--labels like,love]

Counts use training rows only: those before the graph's cutoff (gold.edges' grec.cutoff, the
validation start), so neither validation nor evaluation labels reach the macro graph.
"""
from __future__ import annotations

from pyspark.sql import SparkSession

from etl.checks.macro import macro_rules, macro_violations
from etl.jobs.shell import InputError, job_main
from etl.jobs.stage_inputs import INTERACTIONS, graph_cutoff, join_list
from etl.jobs.stage_job import params_job
from etl.lake import Lake, StageRecord
from etl.stage import Stage
from etl.transforms.examples import domain_vocabulary
from etl.transforms.macro import MacroParams, build_macro
from schemas import contract
from schemas.tables import ITEMS, NODES, macro

STAGE = "macro"


def macro_stage(spark: SparkSession, lake: Lake, run_id: str, labels: list[str],
                params: MacroParams = MacroParams()) -> StageRecord:
    cutoff = graph_cutoff(spark, lake, run_id)
    schema = macro(labels)
    config = {"labels": labels, "clusters": params.n_clusters, "seed": params.seed,
              "max_iter": params.max_iter, "cutoff": cutoff.isoformat()}
    with Stage(spark, lake, run_id, STAGE, config) as st:
        interactions = st.read(INTERACTIONS)
        domains = domain_vocabulary(interactions, st.read(ITEMS))
        nodes = st.read(NODES)
        if not domains:
            raise InputError(f"macro: {ITEMS.name} and {INTERACTIONS} name no domain")
        out = build_macro(interactions, nodes, labels, cutoff, domains, params)
        st.note("user_clusters_found", out.n_clusters)
        table = st.check(out.table, macro_rules(labels, out.n_domains, out.n_clusters), schema)
        st.check_empty(macro_violations(table, nodes), schema)
        st.commit(table, schema, {contract.LABELS.key: join_list(labels, "labels"), contract.CUTOFF.key: cutoff.isoformat(),
                                  contract.DOMAINS.key: join_list(domains, "domains"),
                                  contract.N_DOMAINS.key: str(out.n_domains), contract.N_CLUSTERS.key: str(out.n_clusters)})
    return st.record


JOB = params_job("grec-macro", "macro", MacroParams, macro_stage)
add_arguments, run = JOB.add_arguments, JOB.run


if __name__ == "__main__":
    raise SystemExit(job_main(add_arguments, run, description=__doc__))
