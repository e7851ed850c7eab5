"""Neighbors stage: gold.nodes + gold.edges -> gold.neighbors, k neighbours per node drawn without
replacement with p ∝ w^beta (docs/method.md §Neighbours).

    spark-submit etl/jobs/neighbors.py --lake lake [--run-id R] [--k 100] [--beta 0.5] [--seed 0]
"""
from __future__ import annotations

import argparse

from pyspark.sql import SparkSession

from etl.checks.graph_rules import must_be_empty, neighbor_rules, neighbor_violations
from etl.jobs._graph_props import edge_type_codes_of
from etl.jobs._main import InputError, add_common_arguments, job_main
from etl.lake import Lake, StageRecord
from etl.session import get_spark
from etl.stage import Stage
from etl.transforms.neighbors import NeighborParams, sample_neighbors
from schemas.tables import EDGES, NEIGHBORS, NODES

STAGE = "neighbors"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--k", type=int, default=NeighborParams.k, help="neighbours per node (default 100)")
    parser.add_argument("--beta", type=float, default=NeighborParams.beta,
                        help="sampling exponent: p ∝ weight^beta (default 0.5)")
    parser.add_argument("--seed", type=int, default=NeighborParams.seed, help="sampling seed (default 0)")


def neighbors_stage(spark: SparkSession, lake: Lake, run_id: str, params: NeighborParams) -> StageRecord:
    codes = edge_type_codes_of(spark, lake, run_id)
    config = {"k": params.k, "beta": params.beta, "seed": params.seed, "edge_types": list(codes)}
    with Stage(spark, lake, run_id, STAGE, config) as st:
        nodes, edges = st.read(NODES), st.read(EDGES)
        lists = st.check(sample_neighbors(edges, nodes, codes, params), neighbor_rules(params.k, len(codes)),
                         NEIGHBORS)
        for rule, bad in neighbor_violations(lists, nodes, edges, codes).items():
            st.check(bad, must_be_empty(rule), f"{NEIGHBORS.name}: {rule}")
        st.commit(lists, NEIGHBORS, {"grec.k": str(params.k), "grec.beta": repr(params.beta),
                                     "grec.seed": str(params.seed), "grec.edge_types": ",".join(codes)})
    return st.record


def run(args: argparse.Namespace) -> int:
    spark = get_spark("grec-neighbors")
    try:
        params = NeighborParams(k=args.k, beta=args.beta, seed=args.seed)
    except ValueError as e:
        raise InputError(f"neighbors: {e}") from None
    neighbors_stage(spark, Lake(args.lake), args.run_id, params)
    return 0


if __name__ == "__main__":
    raise SystemExit(job_main(add_arguments, run, description=__doc__))
