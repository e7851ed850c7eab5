"""The cross-domain graph (docs/method.md §Graph) on a hand-built log, dense ids, components against
union-find, and gold.graph_stats."""
from __future__ import annotations

import math
import random
from datetime import date, datetime

import pytest

from etl.transforms.graph import GraphParams, build_graph, dense_index, edge_type_codes, index_nodes
from etl.transforms.graph_algos import ComponentParams, connected_components, graph_stats
from schemas.tables import EDGES, ITEMS, NODES, SWING_I2I, USERS, interactions

LABELS = ["like", "love"]
D1, D2, D3 = date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)


def _log(spark, rows):
    """rows: (user, item, date, domain, like, love)."""
    full = [(u, i, datetime(d.year, d.month, d.day, 12), d, dom, lk, lv) for u, i, d, dom, lk, lv in rows]
    return spark.createDataFrame(full, interactions(LABELS).spark_schema())


@pytest.fixture(scope="module")
def hand(spark):
    log = _log(spark, [
        ("u1", "i1", D1, "A", 1, 0),
        ("u1", "i1", D2, "A", 1, 1),
        ("u1", "i2", D1, "B", 0, 0),
        ("u2", "i1", D1, "A", 1, 0),
        ("u2", "i3", D1, "C", 1, 1),
        ("u2", "i3", D2, "C", 0, 0),
        ("u1", "i3", D2, "D", 0, 0),
        ("u1", "i2", D3, "B", 1, 1),   # held-out day (val or eval): must build no edge
        ("u4", "i2", D3, "B", 1, 0),   # a user seen only on the held-out day
    ])
    users = spark.createDataFrame([("u1", [1.0, 2.0]), ("u2", [3.0, 4.0]), ("u3", [5.0, 6.0])],
                                  USERS.spark_schema())
    items = spark.createDataFrame([("i1", "A", [1.0]), ("i2", "B", [2.0]), ("i4", "E", [4.0])],
                                  ITEMS.spark_schema())
    swing = spark.createDataFrame([("i1", "i3", 2.0, 2, 1), ("i1", "i2", 1.0, 2, 2), ("i3", "i1", 2.0, 2, 1)],
                                  SWING_I2I.spark_schema())
    cutoff = D3  # the first non-training day (etl.transforms.split gives it in the jobs)
    g = build_graph(log, users, items, swing, GraphParams(labels=LABELS, cutoff=cutoff))
    return cutoff, g.nodes.cache(), g.edges.cache()


def test_nodes_dense_typed_with_features_and_domains(hand):
    _, nodes, _ = hand
    got = {r["raw_id"]: r for r in nodes.collect()}
    expected = {  # raw -> (node_id, type, domain, features, degree)
        "u1": (0, "user", None, [1.0, 2.0], 2), "u2": (1, "user", None, [3.0, 4.0], 3),
        "u3": (2, "user", None, [5.0, 6.0], 0), "u4": (3, "user", None, [0.0, 0.0], 0),
        "i1": (4, "item", "A", [1.0], 5), "i2": (5, "item", "B", [2.0], 0),
        "i3": (6, "item", "C", [0.0], 3), "i4": (7, "item", "E", [4.0], 0),
    }
    assert set(got) == set(expected)
    for raw, (nid, typ, dom, feats, deg) in expected.items():
        r = got[raw]
        assert (r["node_id"], r["node_type"], r["domain"], list(r["features"]), r["degree"]) == \
               (nid, typ, dom, feats, deg), raw
    assert nodes.columns == NODES.names
    want = {f.name: f.dataType for f in NODES.spark_schema().fields}
    assert all(f.dataType == want[f.name] for f in nodes.schema.fields)


def test_edges_exact_and_cutoff_respected(hand):
    _, nodes, edges = hand
    ids = {r["raw_id"]: r["node_id"] for r in nodes.collect()}
    got = {(r["src"], r["dst"], r["edge_type"]): r["weight"] for r in edges.collect()}
    undirected = {("u1", "i1", "like"): math.log1p(2), ("u1", "i1", "love"): math.log1p(1),
                  ("u2", "i1", "like"): math.log1p(1), ("u2", "i3", "like"): math.log1p(1),
                  ("u2", "i3", "love"): math.log1p(1)}
    expected = {}
    for (u, i, t), w in undirected.items():
        expected[(ids[u], ids[i], t)] = w
        expected[(ids[i], ids[u], t)] = w
    expected.update({(ids["i1"], ids["i3"], "swing"): 1.0, (ids["i1"], ids["i2"], "swing"): 0.5,
                     (ids["i3"], ids["i1"], "swing"): 1.0})
    assert set(got) == set(expected)
    for key, w in expected.items():
        assert got[key] == pytest.approx(w, rel=1e-12), key
    assert edges.columns == EDGES.names


def test_dense_index_matches_sorted_order_across_partitions(spark):
    rng = random.Random(7)
    keys = [f"k{rng.randrange(10**6)}" for _ in range(3000)]
    df = spark.createDataFrame([(k,) for k in keys], "key string").repartition(5)
    ids = dense_index(df, ["key"], "id", start=10)
    expected = {k: 10 + j for j, k in enumerate(sorted(set(keys)))}
    assert {r["key"]: r["id"] for r in ids.collect()} == expected


def test_index_rejects_ragged_features(spark):
    log = _log(spark, [("u1", "i1", D1, "A", 1, 0)])
    users = spark.createDataFrame([("u1", [1.0]), ("u2", [1.0, 2.0])], USERS.spark_schema())
    items = spark.createDataFrame([("i1", "A", [1.0])], ITEMS.spark_schema())
    with pytest.raises(ValueError, match="bronze.users.features must have one length"):
        index_nodes(log, users, items)


def test_edge_type_codes():
    assert edge_type_codes(["click", "like"]) == {"click": 0, "like": 1, "swing": 2}
    with pytest.raises(ValueError):
        edge_type_codes(["like", "swing"])


# ---- connected components -------------------------------------------------------------------------
def _union_find(n, pairs):
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return [find(x) for x in range(n)]


def _partition(labels):
    groups = {}
    for node, lab in labels.items():
        groups.setdefault(lab, set()).add(node)
    return {frozenset(g) for g in groups.values()}


@pytest.mark.parametrize("params", [ComponentParams(), ComponentParams(propagation_rounds=1),
                                    ComponentParams(propagation_max_nodes=0)],
                         ids=["propagated", "one-round", "stars-only"])
def test_components_match_union_find(spark, params):
    # Several random graphs of different densities, a long path and a long cycle (large diameter,
    # shuffled ids) as one disjoint union, so one run covers them all.
    rng = random.Random(3)
    pairs, n = [], 0
    for size, m in [(40, 10), (40, 30), (40, 60), (30, 200)]:
        pairs += [(n + rng.randrange(size), n + rng.randrange(size)) for _ in range(m)]
        n += size
    for closed in (False, True):
        order = list(range(n, n + 50))
        rng.shuffle(order)
        pairs += list(zip(order, order[1:])) + ([(order[-1], order[0])] if closed else [])
        n += 50
    directed = [(a, b) for a, b in pairs if rng.random() < 0.5] + [(b, a) for a, b in pairs]
    nodes = spark.createDataFrame([(i,) for i in range(n)], "node_id long")
    edges = spark.createDataFrame(directed, "src long, dst long")
    got = {r["node_id"]: r["component"] for r in connected_components(nodes, edges, params).collect()}
    ref = _union_find(n, pairs)
    assert set(got) == set(range(n))
    assert _partition(got) == _partition(dict(enumerate(ref)))
    assert all(got[v] == ref[v] for v in range(n))  # labels are each component's smallest id


def test_graph_stats_on_hand_graph(hand):
    _, nodes, edges = hand
    rows = {(r["metric"], r["dimension"], r["group"]): r["value"] for r in graph_stats(nodes, edges).collect()}
    degrees = [2, 3, 0, 0, 5, 0, 3, 0]   # u1..u4, i1..i4 (see test_nodes_dense...)
    assert rows[("nodes", "all", "all")] == 8
    assert rows[("nodes", "node_type", "user")] == 4
    assert rows[("nodes", "domain", "C")] == 1
    assert rows[("isolated_nodes", "all", "all")] == 4
    assert rows[("isolated_nodes", "node_type", "item")] == 2
    assert rows[("degree_mean", "all", "all")] == pytest.approx(sum(degrees) / 8)
    assert rows[("degree_max", "node_type", "user")] == 3
    assert rows[("degree_min", "node_type", "item")] == 0
    assert rows[("degree_p50", "node_type", "user")] in (0, 2)
    assert rows[("edges", "all", "all")] == 13
    assert rows[("edges", "edge_type", "like")] == 6
    assert rows[("edges", "edge_type", "swing")] == 3
    assert rows[("edges", "domain", "A")] == 5          # out-edges of i1
    assert rows[("nodes", "edge_type", "love")] == 4     # u1, u2, i1, i3 have a love edge
    assert rows[("degree_max", "edge_type", "like")] == 2
    # components: {u1, u2, i1, i2, i3} and the isolated u3, u4, i4
    assert rows[("components", "all", "all")] == 4
    assert rows[("largest_component_size", "all", "all")] == 5
    assert rows[("singleton_components", "all", "all")] == 3
