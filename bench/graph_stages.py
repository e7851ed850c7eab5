"""Graph-side stages benchmark: the graph, neighbors, examples and macro stages on a real or
synthetic lake, with wall times (transform alone vs the whole stage with its quality checks) and
the figures of what they built.

Prints figures (not a test). Without --lake, a lake in a temporary folder is filled first: ingest
of --source (default movielens-100k, read from <shared>/data) and Swing over the pre-cutoff
positives (SwingParams defaults).

    source .grec/env.sh
    python bench/graph_stages.py                        # MovieLens-100K
    python bench/graph_stages.py --source synthetic --k 50
    python bench/graph_stages.py --lake lake            # a lake with bronze + silver.swing_i2i
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyspark.sql import DataFrame, SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from etl.jobs.stage_inputs import INTERACTIONS, graph_cutoff, resolve_labels  # noqa: E402
from etl.jobs.examples import examples_stage  # noqa: E402
from etl.jobs.graph import graph_stage  # noqa: E402
from etl.jobs.ingest import ingest  # noqa: E402
from etl.jobs.macro import macro_stage  # noqa: E402
from etl.jobs.neighbors import neighbors_stage  # noqa: E402
from etl.lake import Lake  # noqa: E402
from etl.session import get_spark  # noqa: E402
from etl.sources import load_source  # noqa: E402
from etl.transforms.examples import ExampleParams, build_examples, domain_vocabulary  # noqa: E402
from etl.transforms.graph import GraphParams, build_graph, edge_type_codes  # noqa: E402
from etl.transforms.graph_algos import connected_components  # noqa: E402
from etl.transforms.macro import build_macro  # noqa: E402
from etl.transforms.neighbors import NeighborParams, sample_neighbors  # noqa: E402
from etl.transforms.split import SplitPolicy, split_cutoffs  # noqa: E402
from etl.transforms.swing import swing  # noqa: E402
from schemas.tables import GRAPH_STATS, ITEMS, NEIGHBORS, SWING_I2I, USERS  # noqa: E402

RUN = "bench"  # the run id of every stage here; property reads pin to its versions


def timed(label: str, fn: Callable[[], object]) -> object:
    t0 = time.perf_counter()
    out = fn()
    print(f"  {label:<46} {time.perf_counter() - t0:8.1f} s", flush=True)
    return out


def noop(df: DataFrame) -> None:
    df.write.format("noop").mode("overwrite").save()


def fill_lake(spark: SparkSession, lake: Lake, source: str) -> None:
    src = load_source(spark, source)
    ingest(spark, lake, RUN, src)
    labels = resolve_labels(spark, lake, None, RUN)
    interactions = lake.read(spark, INTERACTIONS)
    cutoff = split_cutoffs(interactions, SplitPolicy()).val_start
    positive = lake.properties(spark, INTERACTIONS).get("grec.positive_label", labels[0])
    pos = interactions.where((F.col("date") < F.lit(cutoff)) & (F.col(positive) == 1))
    lake.write(swing(pos), SWING_I2I, run_id=RUN, stage="swing")


def transforms_only(spark: SparkSession, lake: Lake, k: int) -> None:
    """The pure transforms, each forced with a noop write (no checks, no Delta writes)."""
    labels = resolve_labels(spark, lake, None, RUN)
    interactions = lake.read(spark, INTERACTIONS).cache()
    cutoffs = split_cutoffs(interactions, SplitPolicy())
    cutoff = cutoffs.val_start
    g = timed("build_graph (nodes + edges, noop)", lambda: build_graph(
        interactions, lake.read(spark, USERS), lake.read(spark, ITEMS), lake.read(spark, SWING_I2I),
        GraphParams(labels, cutoff)))
    nodes, edges = g.nodes.cache(), g.edges.cache()
    timed("  materialise nodes + edges", lambda: (noop(nodes), noop(edges)))
    timed("connected_components", lambda: noop(connected_components(nodes, edges)))
    nb = sample_neighbors(edges, nodes, edge_type_codes(labels), NeighborParams(k=k)).cache()
    timed(f"sample_neighbors (k={k})", lambda: noop(nb))
    domains = domain_vocabulary(interactions, lake.read(spark, ITEMS))
    timed("build_examples", lambda: noop(build_examples(interactions, nodes, nb,
                                                         ExampleParams(labels, cutoffs, domains, k=k))))
    timed("build_macro (KMeans k=20)", lambda: noop(build_macro(interactions, nodes, labels, cutoff,
                                                                domains).table))


def figures(spark: SparkSession, lake: Lake) -> None:
    stats = {(r["metric"], r["dimension"], r["group"]): r["value"] for r in lake.read(spark, GRAPH_STATS).collect()}
    print(f"\ncutoff {graph_cutoff(spark, lake, RUN)}; "
          + ", ".join(f"{g}: {stats[('nodes', 'node_type', g)]:.0f}" for g in ("user", "item")) + " nodes")
    for (metric, dim, group), v in sorted(stats.items()):
        if dim in ("all", "edge_type") and metric in ("edges", "degree_mean", "degree_p50", "degree_p99", "degree_max",
                                                      "isolated_nodes", "components", "largest_component_size"):
            print(f"  {metric:<24} {dim:<10} {group:<8} {v:12,.2f}")
    nb = lake.read(spark, NEIGHBORS)
    r = nb.agg(F.avg(F.size("nbr_ids")).alias("mean"), F.sum((F.col("degree") > F.size("nbr_ids")).cast("int"))
               .alias("capped")).first()
    print(f"  neighbour lists: mean length {r['mean']:.1f}, {r['capped']} nodes capped at k")
    ex = lake.read(spark, "gold.examples")
    print("  examples: " + ", ".join(f"{x['split']} {x['count']:,}" for x in ex.groupBy("split").count().collect()))
    m = lake.properties(spark, "gold.macro")
    print(f"  macro: {m['grec.n_clusters']} user clusters, {m['grec.n_domains']} domains")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lake", help="a lake holding bronze tables and silver.swing_i2i; default: a temporary one")
    p.add_argument("--source", default="movielens-100k", help="source ingested into the temporary lake")
    p.add_argument("--k", type=int, default=100, help="neighbours per node")
    args = p.parse_args()
    spark = get_spark("grec-bench-graph")
    lake = Lake(args.lake or tempfile.mkdtemp(prefix="grec-bench-graph-"))
    if not args.lake:
        timed(f"ingest {args.source} + swing (setup)", lambda: fill_lake(spark, lake, args.source))
    print("transforms alone:")
    transforms_only(spark, lake, args.k)
    print("stages (transform + checks + Delta commit):")
    labels = resolve_labels(spark, lake, None, RUN)
    timed("graph", lambda: graph_stage(spark, lake, RUN, labels))
    timed("neighbors", lambda: neighbors_stage(spark, lake, RUN, NeighborParams(k=args.k)))
    timed("examples", lambda: examples_stage(spark, lake, RUN, labels))
    timed("macro", lambda: macro_stage(spark, lake, RUN, labels))
    figures(spark, lake)
    print(f"\nlake: {lake.root}")


if __name__ == "__main__":
    main()
