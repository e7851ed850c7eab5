"""Neighbors stage: gold.nodes + gold.edges -> gold.neighbors, k neighbours per node drawn without
replacement with p ∝ w^beta (docs/method.md §Neighbours).

    spark-submit etl/jobs/neighbors.py --lake lake [--run-id R] [--k 100] [--beta 0.5] [--seed 0]
"""
from __future__ import annotations

from pyspark.sql import SparkSession

from etl.checks.neighbors import neighbor_rules, neighbor_violations, proven_neighbor_rules
from etl.jobs.shell import job_main
from etl.jobs.stage_inputs import edge_type_codes_of
from etl.jobs.stage_job import params_job
from etl.lake import Lake, StageRecord
from etl.stage import Stage
from etl.transforms.neighbors import NeighborParams, sample_neighbors
from schemas import contract
from schemas.tables import EDGES, NEIGHBORS, NODES

STAGE = "neighbors"


def neighbors_stage(spark: SparkSession, lake: Lake, run_id: str, params: NeighborParams) -> StageRecord:
    codes = edge_type_codes_of(spark, lake, run_id)
    config = {"k": params.k, "beta": params.beta, "seed": params.seed, "edge_types": list(codes)}
    with Stage(spark, lake, run_id, STAGE, config) as st:
        # nodes are small and read three times: by the sampler, the join rules and the proof
        nodes, edges = st.persist(st.read(NODES)), st.read(EDGES)
        lists = st.check(sample_neighbors(edges, nodes, codes, params), neighbor_rules(params.k, len(codes)),
                         NEIGHBORS)
        st.check_empty(lambda: neighbor_violations(lists, nodes, edges, codes), NEIGHBORS,
                       proven=lambda: proven_neighbor_rules(lists, nodes, edges, codes, params))
        st.commit(lists, NEIGHBORS, {contract.K.key: str(params.k), contract.BETA.key: repr(params.beta),
                                     contract.SEED.key: str(params.seed), contract.EDGE_TYPES.key: ",".join(codes)})
    return st.record


JOB = params_job("grec-neighbors", "sampling", NeighborParams, neighbors_stage, labels=False)
add_arguments, run = JOB.add_arguments, JOB.run


if __name__ == "__main__":
    raise SystemExit(job_main(add_arguments, run, description=__doc__))
