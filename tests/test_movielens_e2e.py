"""The whole pipeline on the real MovieLens-100K (all 100,000 ratings), checked against counts computed
here straight from u.data with plain Python: row counts, the default train/val/eval split (the last
10% of ratings in whole days evaluated, the 10% before validated), no validation or evaluation row
in the graph or in Swing, every example's nodes, and neighbour lists of length min(k, degree)."""
from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from datetime import date, datetime, timezone

import pytest
from pyspark.sql import functions as F

from etl.jobs import pipeline
from etl.jobs.shell import job_main
from etl.lake import RunManifest
from etl.sources.base import shared_dir
from schemas.contract import EXIT_OK

ML_DIR = shared_dir() / "data" / "movielens-100k"
K = 20
EPOCH = date(1970, 1, 1)


class Raw:
    """u.data and u.item as plain Python: (user, item, rating, UTC date) per rating; like = rating >= 4,
    love = rating == 5 (docs/method.md §Contract)."""

    def __init__(self):
        self.rows = []
        for line in (ML_DIR / "u.data").read_text().splitlines():
            u, i, r, ts = line.split("\t")
            self.rows.append((u, i, int(r), datetime.fromtimestamp(int(ts), timezone.utc).date()))
        self.users = {r[0] for r in self.rows}
        self.items = {line.split("|")[0] for line in (ML_DIR / "u.item").read_text(encoding="latin-1").splitlines()
                      if line.strip()}
        # The default split: whole days from the end until 10% of the ratings, then 10% more before them.
        per_day = sorted(Counter(r[3] for r in self.rows).items(), reverse=True)
        self.eval_start = self._start(per_day, len(self.rows) // 10)
        self.cutoff = self._start([(d, n) for d, n in per_day if d < self.eval_start], len(self.rows) // 10)
        self.train = [r for r in self.rows if r[3] < self.cutoff]

    @staticmethod
    def _start(per_day_descending, needed: int) -> date:
        total = 0
        for d, n in per_day_descending:
            total += n
            if total >= needed:
                return d
        raise AssertionError("too few rows")

    def positives(self, label: str, rows) -> set[tuple[str, str]]:
        hit = (lambda r: r >= 4) if label == "like" else (lambda r: r == 5)
        return {(u, i) for u, i, r, _ in rows if hit(r)}

    def likers(self, rows) -> dict[str, set[str]]:
        out = defaultdict(set)
        for u, i in self.positives("like", rows):
            out[i].add(u)
        return out


@pytest.mark.skipif(not (ML_DIR / "u.data").is_file(), reason=f"MovieLens-100K not found at {ML_DIR}")
def test_movielens_100k_end_to_end(spark, lake, capsys):
    raw = Raw()
    assert (len(raw.rows), len(raw.users), len(raw.items)) == (100_000, 943, 1_682)

    t0 = time.perf_counter()
    assert job_main(pipeline.add_arguments, pipeline.run, ["--lake", lake.root, "--run-id", "ml",
                                                           "--source", "movielens-100k", "--k", str(K)]) == EXIT_OK
    with capsys.disabled():
        print(f"\nMovieLens-100K pipeline (k={K}): {time.perf_counter() - t0:.1f} s")
    stages = {r.stage: r.status for r in RunManifest(lake).records(spark, "ml").collect()}
    assert stages == {s: "succeeded" for s in pipeline.STAGES}

    # Ingest keeps every rating; nothing is quarantined.
    assert lake.read(spark, "bronze.interactions").count() == 100_000
    assert lake.read(spark, "quarantine.interactions").count() == 0
    edge_props = lake.properties(spark, "gold.edges")
    assert edge_props["grec.cutoff"] == raw.cutoff.isoformat() == "1998-03-02"
    assert edge_props["grec.eval_cutoff"] == raw.eval_start.isoformat() == "1998-03-31"

    # Nodes: every user, then every item of the catalogue.
    nodes = {r.node_id: (r.node_type, r.raw_id, r.degree) for r in lake.read(spark, "gold.nodes").collect()}
    assert sorted(nodes) == list(range(943 + 1_682))
    assert {v[1] for v in nodes.values() if v[0] == "user"} == raw.users
    assert {v[1] for v in nodes.values() if v[0] == "item"} == raw.items
    assert all(nodes[n][0] == "user" for n in range(943))

    # Behaviour edges: exactly the pre-cutoff positives, both directions, weight log1p(1) (no repeated pair).
    edges = lake.read(spark, "gold.edges")
    by_type = {r.edge_type: (r.n, r.lo, r.hi) for r in edges.groupBy("edge_type").agg(
        F.count("*").alias("n"), F.min("weight").alias("lo"), F.max("weight").alias("hi")).collect()}
    for label in ("like", "love"):
        n, lo, hi = by_type[label]
        assert n == 2 * len(raw.positives(label, raw.train)), label
        assert lo == hi == pytest.approx(math.log1p(1))
        assert len(raw.positives(label, raw.rows)) > len(raw.positives(label, raw.train))  # a leak would show
    id_of = {(v[0], v[1]): n for n, v in nodes.items()}
    user_degree = Counter()
    for label in ("like", "love"):
        user_degree.update(u for u, _ in raw.positives(label, raw.train))
    assert all(nodes[id_of[("user", u)]][2] == user_degree[u] for u in raw.users)

    # Swing: common likers counted on pre-cutoff likes only (no cap binds on MovieLens).
    before, everything = raw.likers(raw.train), raw.likers(raw.rows)
    swing = lake.read(spark, "silver.swing_i2i").select("item_id", "neighbor_id", "n_common_users").collect()
    assert len(swing) > 10_000
    assert all(r.n_common_users == len(before[r.item_id] & before[r.neighbor_id]) for r in swing)
    assert any(len(everything[r.item_id] & everything[r.neighbor_id]) > r.n_common_users for r in swing)
    assert 2 * len(swing) >= by_type["swing"][0] >= len(swing)

    # Examples: one per rating, split by the cutoffs, labels as in u.data, nodes that exist.
    ex = lake.read(spark, "gold.examples")
    val_day, eval_day = (raw.cutoff - EPOCH).days, (raw.eval_start - EPOCH).days
    by_day = (F.when(F.col("day") < val_day, "train").when(F.col("day") < eval_day, "val").otherwise("eval"))
    s = ex.agg(F.count("*").alias("n"), F.sum("like").alias("like"), F.sum("love").alias("love"),
               F.sum(F.when(F.col("split") == "eval", 1).otherwise(0)).alias("eval"),
               F.sum(F.when(F.col("split") == "val", 1).otherwise(0)).alias("val"),
               F.sum(F.when(F.col("split") != by_day, 1).otherwise(0)).alias("wrong"),
               F.min("user_node").alias("u_lo"), F.max("user_node").alias("u_hi"),
               F.min("item_node").alias("i_lo"), F.max("item_node").alias("i_hi")).first()
    assert (s.n, s.like, s.love) == (100_000, sum(r[2] >= 4 for r in raw.rows), sum(r[2] == 5 for r in raw.rows))
    assert s.eval == sum(r[3] >= raw.eval_start for r in raw.rows) >= 10_000
    assert s.val == len(raw.rows) - len(raw.train) - s.eval >= 10_000 and s.wrong == 0
    assert 0 <= s.u_lo and s.u_hi < 943 <= s.i_lo and s.i_hi < 943 + 1_682
    pairs = Counter((r.user_node, r.item_node) for r in ex.select("user_node", "item_node").collect())
    assert pairs == Counter((id_of[("user", u)], id_of[("item", i)]) for u, i, _, _ in raw.rows)

    # Slim rows by default: the lists live in gold.neighbors only.
    assert ex.columns == ["user_node", "item_node", "day", "split", "domain_id", "like", "love"]
    assert lake.properties(spark, "gold.examples")["grec.neighbor_arrays"] == "false"

    # Neighbour lists: min(k, degree) real entries.
    nb = lake.read(spark, "gold.neighbors").collect()
    assert sorted(r.node_id for r in nb) == sorted(nodes)
    assert all(r.degree == nodes[r.node_id][2] and len(r.nbr_ids) == min(K, r.degree) for r in nb)
    assert any(r.degree > K for r in nb) and any(0 < r.degree < K for r in nb)

    # The examples stage again with --neighbor-arrays: every row carries its nodes' lists, padded to k.
    assert job_main(pipeline.add_arguments, pipeline.run, ["--lake", lake.root, "--run-id", "ml-arrays",
                                                           "--stages", "examples", "--neighbor-arrays"]) == EXIT_OK
    assert lake.properties(spark, "gold.examples")["grec.neighbor_arrays"] == "true"
    lists = {r.node_id: list(r.nbr_ids) + [0] * (K - len(r.nbr_ids)) for r in nb}
    counts = {r.node_id: len(r.nbr_ids) for r in nb}
    arrays = lake.read(spark, "gold.examples").select(
        "user_node", "item_node", "user_nbr_ids", "item_nbr_ids", "user_nbr_count", "item_nbr_count").collect()
    assert len(arrays) == 100_000
    assert all(list(r.user_nbr_ids) == lists[r.user_node] and list(r.item_nbr_ids) == lists[r.item_node]
               and (r.user_nbr_count, r.item_nbr_count) == (counts[r.user_node], counts[r.item_node])
               for r in arrays)
