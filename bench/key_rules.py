"""Key-rule benchmark: what each join rule of gold.edges and gold.neighbors costs on a kept lake.

Prints figures (not a test). Reads the tables a run wrote (nodes and edges cached and counted
first, as the stages hold them), then times: each rule's frame of violating rows counted alone,
all of a table's frames counted together (`screen.count_rows`, as `Stage.check_empty` counts
them), and the queries that prove rules instead of their joins (`proven_edge_rules`,
`proven_neighbor_rules`). The positive groups are cached first, as the graph stage holds them.

    source .grec/env.sh
    python bench/pipeline.py --source synthetic --rows 10000000 --users 200000 --items 50000 \\
        --seed 7 --k 20 --lake /tmp/lake10m --run-id r10m --keep
    GREC_DRIVER_MEMORY=8g python bench/key_rules.py --lake /tmp/lake10m --run-id r10m
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from etl.checks import graph as graph_rules  # noqa: E402
from etl.checks import neighbors as neighbor_rules  # noqa: E402
from etl.checks.screen import count_rows  # noqa: E402
from etl.jobs.stage_inputs import (INTERACTIONS, edge_type_codes_of, graph_cutoffs, resolve_labels,  # noqa: E402
                                   table_properties)
from etl.lake import Lake, RunManifest  # noqa: E402
from etl.session import get_spark  # noqa: E402
from etl.transforms.graph import positive_events  # noqa: E402
from etl.transforms.neighbors import NeighborParams  # noqa: E402
from schemas import contract  # noqa: E402
from schemas.tables import EDGES, NEIGHBORS, NODES, SWING_I2I  # noqa: E402


def timed(label: str, fn: Callable[[], Any]) -> Any:
    t0 = time.perf_counter()
    out = fn()
    print(f"  {label:<90} {time.perf_counter() - t0:7.1f} s  -> {out}", flush=True)
    return out


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lake", required=True, help="lake root of a finished run")
    p.add_argument("--run-id", required=True, help="the run whose tables are read")
    p.add_argument("--master", default="local[2]", help="Spark master (default local[2])")
    args = p.parse_args(argv)
    spark = get_spark("grec-bench-key-rules", master=args.master)
    lake = Lake(args.lake)
    out = RunManifest(lake).outputs_of(spark, args.run_id)

    def read(table: str):
        return lake.read(spark, table, version=out[table].version)

    labels = resolve_labels(spark, lake, None, args.run_id)
    cutoff = graph_cutoffs(spark, lake, args.run_id).val_start
    nodes, edges = read(NODES.name).cache(), read(EDGES.name).cache()
    positive = positive_events(read(INTERACTIONS), labels, cutoff).cache()
    swing = read(SWING_I2I.name)
    print(f"{nodes.count():,} nodes, {edges.count():,} edges, {positive.count():,} positive groups (cached); "
          f"{args.run_id} in {lake.root}")

    print("gold.edges")
    frames = graph_rules.edge_violations(edges, nodes, positive, swing)
    for rule, frame in frames.items():
        timed(rule, frame.count)
    timed(f"all {len(frames)} counted together", lambda: count_rows(list(frames.values())))
    proven = timed("one query proving rules", lambda: graph_rules.proven_edge_rules(edges, nodes, positive, swing))
    rest = [f for rule, f in frames.items() if rule not in proven]
    timed(f"the other {len(rest)} counted together", lambda: count_rows(rest))

    print("gold.neighbors")
    neighbors = read(NEIGHBORS.name).cache()
    timed("neighbour lists cached", neighbors.count)
    codes = edge_type_codes_of(spark, lake, args.run_id)
    frames = neighbor_rules.neighbor_violations(neighbors, nodes, edges, codes)
    for rule, frame in frames.items():
        timed(rule, frame.count)
    timed(f"all {len(frames)} counted together", lambda: count_rows(list(frames.values())))
    props = table_properties(spark, lake, NEIGHBORS.name, args.run_id)
    params = NeighborParams(k=int(props[contract.K.key]), beta=float(props[contract.BETA.key]),
                            seed=int(props[contract.SEED.key]))
    timed("one query proving rules", lambda: neighbor_rules.proven_neighbor_rules(neighbors, nodes, edges, codes, params))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
