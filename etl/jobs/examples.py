"""Examples stage: bronze interactions + gold.nodes + gold.neighbors -> gold.examples, one row per
impression (docs/method.md §Examples).

    spark-submit etl/jobs/examples.py --lake lake [--run-id R] [--k 100] [--labels like,love]
                                      [--neighbor-arrays]

Rows are slim by default: node ids, day, split, domain and labels; the trainer gathers features and
neighbour lists (cut to the recorded k) from the gold.nodes and gold.neighbors versions this stage
read. --neighbor-arrays also copies both nodes' features and lists, padded to k, into every row.
The table property grec.neighbor_arrays ("true"/"false") records the layout.

The train/val/eval split uses the graph's cutoffs (gold.edges' grec.cutoff and grec.eval_cutoff),
so examples and graph always agree on which days trained the graph, validate and evaluate. The table is written in Parquet row groups of
--row-group-mb MiB (Petastorm reads one row group at a time).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Optional

from pyspark.sql import SparkSession

from etl.checks.examples import example_rules, example_violations
from etl.jobs.shell import InputError, job_main
from etl.jobs.stage_inputs import INTERACTIONS, graph_cutoffs, join_list, neighbors_k, prop
from etl.jobs.stage_job import params_job
from etl.lake import Lake, StageRecord
from etl.stage import Stage
from etl.transforms.examples import ExampleParams, ParquetLayout, build_examples, domain_vocabulary
from schemas import contract
from schemas.params import check_bounds, param
from schemas.tables import EDGES, ITEMS, NEIGHBORS, NODES, examples

STAGE = "examples"


@dataclass(frozen=True)
class ExamplesConfig:
    """The examples stage's parameters (the list length and the Parquet layout of gold.examples)."""

    k: Optional[int] = param(None, "neighbour list length (None: the k gold.neighbors was sampled with, "
                                   "also the maximum)", at_least=1)
    row_group_mb: int = param(ParquetLayout.row_group_bytes // 2 ** 20, "Parquet row-group size in MiB",
                              at_least=1)
    max_records_per_file: int = param(ParquetLayout.max_records_per_file, "rows per Parquet file at most",
                                      at_least=1)
    neighbor_arrays: bool = param(False, "also copy both nodes' features and neighbour lists (padded to k) into "
                                         "every example row, for consumers that want self-contained rows (off: "
                                         "slim rows of ids, day, split, domain and labels; lists are read from "
                                         "gold.neighbors)")

    def __post_init__(self) -> None:
        check_bounds(self)

    @property
    def layout(self) -> ParquetLayout:
        return ParquetLayout(self.row_group_mb * 2 ** 20, self.max_records_per_file)


@contextmanager
def parquet_layout(spark: SparkSession, layout: ParquetLayout) -> Iterator[None]:
    """Apply `layout` to the Parquet files written inside the block, then restore the settings."""
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    saved_hadoop = {k: hadoop.get(k) for k in layout.hadoop_conf()}
    saved_sql = {k: spark.conf.get(k, None) for k in layout.sql_conf()}
    for k, v in layout.hadoop_conf().items():
        hadoop.set(k, v)
    for k, v in layout.sql_conf().items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, saved in saved_hadoop.items():
            hadoop.unset(k) if saved is None else hadoop.set(k, saved)
        for k, saved in saved_sql.items():
            spark.conf.unset(k) if saved is None else spark.conf.set(k, saved)


def examples_stage(spark: SparkSession, lake: Lake, run_id: str, labels: list[str],
                   config: ExamplesConfig = ExamplesConfig()) -> StageRecord:
    """Build, check and commit gold.examples. `config.k` (default: gold.neighbors' k) is the list
    length: the arrays' length with neighbor_arrays, else the length the trainer cuts gold.neighbors to."""
    cutoffs, sampled_k = graph_cutoffs(spark, lake, run_id), neighbors_k(spark, lake, run_id)
    k = sampled_k if config.k is None else config.k
    layout, neighbor_arrays = config.layout, config.neighbor_arrays
    if not 1 <= k <= sampled_k:
        raise InputError(f"--k {k}: must be in 1..{sampled_k}, the k that {NEIGHBORS.name} was sampled with")
    schema = examples(labels, neighbor_arrays)
    stage_config = {"labels": labels, "k": k, "cutoff": cutoffs.val_start.isoformat(),
                    "eval_cutoff": cutoffs.eval_start.isoformat(), "neighbor_arrays": neighbor_arrays,
                    "row_group_bytes": layout.row_group_bytes, "max_records_per_file": layout.max_records_per_file}
    with parquet_layout(spark, layout), Stage(spark, lake, run_id, STAGE, stage_config) as st:
        interactions = st.read(INTERACTIONS)
        domains = domain_vocabulary(interactions, st.read(ITEMS))
        # gold.neighbors is read (and so pinned in the manifest) even for slim rows: it is what the
        # trainer gathers the lists from, at the version recorded here.
        nodes, neighbors = st.read(NODES), st.read(NEIGHBORS)
        ex = build_examples(interactions, nodes, neighbors,
                            ExampleParams(labels, cutoffs, domains, k=k, neighbor_arrays=neighbor_arrays))
        ex = st.check(ex, example_rules(labels, k, cutoffs, len(domains), n_impressions=interactions.count(),
                                        neighbor_arrays=neighbor_arrays), schema)
        st.check_empty(example_violations(ex, nodes), schema)
        st.commit(ex, schema, {contract.LABELS.key: join_list(labels, "labels"), **cutoffs.to_properties(),
                               contract.DOMAINS.key: join_list(domains, "domains"), contract.K.key: str(k),
                               contract.NEIGHBOR_ARRAYS.key: str(neighbor_arrays).lower(),
                               contract.EDGE_TYPES.key: prop(spark, lake, EDGES.name, contract.EDGE_TYPES.key, run_id)})
    return st.record


JOB = params_job("grec-examples", "examples", ExamplesConfig, examples_stage)
add_arguments, run = JOB.add_arguments, JOB.run


if __name__ == "__main__":
    raise SystemExit(job_main(add_arguments, run, description=__doc__))
