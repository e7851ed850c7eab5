"""MGOE macro-graph features (docs/method.md §Macro) on a hand-built log."""
from __future__ import annotations

from datetime import date, datetime

import pytest

from etl.transforms.macro import MacroParams, build_macro
from schemas.tables import NODES, interactions, macro

LABELS = ["like", "love"]
CUTOFF = date(2024, 1, 3)
D1, D2, D3 = date(2024, 1, 1), date(2024, 1, 2), CUTOFF


@pytest.fixture(scope="module")
def built(spark):
    rows = [  # user, item, date, domain, like, love
        ("u1", "i1", D1, "A", 1, 1),
        ("u1", "i2", D1, "A", 1, 0),
        ("u1", "i1", D2, "A", 0, 0),
        ("u3", "i1", D2, "A", 1, 0),
        ("u2", "i3", D1, "B", 1, 1),
        ("u2", "i3", D2, "B", 0, 0),
        ("u2", "i1", D3, "A", 1, 1),   # evaluation day: counts nowhere
        ("u4", "i2", D3, "A", 1, 1),   # u4 has no pre-cutoff row: a zero profile
    ]
    log = spark.createDataFrame([(u, i, datetime(d.year, d.month, d.day), d, dom, lk, lv)
                                 for u, i, d, dom, lk, lv in rows], interactions(LABELS).spark_schema())
    nodes = spark.createDataFrame([
        (0, "user", "u1", None, [], 0), (1, "user", "u2", None, [], 0), (2, "user", "u3", None, [], 0),
        (3, "user", "u4", None, [], 0), (4, "item", "i1", "A", [], 0), (5, "item", "i2", "A", [], 0),
        (6, "item", "i3", "B", [], 0), (7, "item", "i4", "B", [], 0),
    ], NODES.spark_schema())
    out = build_macro(log, nodes, LABELS, CUTOFF, ["A", "B"], MacroParams(n_clusters=3, seed=1))
    return out, {r["node_id"]: r for r in out.table.collect()}


def test_users_cluster_by_domain_profile(built):
    out, rows = built
    assert out.n_clusters == 3 and out.n_domains == 2
    c = {u: rows[u]["macro_id"] for u in range(4)}
    # profiles: u1 and u3 (1, 0), u2 (0, 1), u4 (0, 0): three distinct points, three clusters
    assert c[0] == c[2] and len({c[0], c[1], c[3]}) == 3
    assert all(rows[u]["node_type"] == "user" for u in range(4))


def test_user_first_order_counts_per_domain(built):
    _, rows = built
    expected = {0: ([2, 0], [1, 0]), 1: ([0, 1], [0, 1]), 2: ([1, 0], [0, 0]), 3: ([0, 0], [0, 0])}
    for u, (like, love) in expected.items():
        assert (rows[u]["like_macro_counts"], rows[u]["love_macro_counts"]) == (like, love), u


def test_item_second_order_counts_per_user_cluster(built):
    _, rows = built
    c13, c2 = rows[0]["macro_id"], rows[1]["macro_id"]

    def vec(entries):
        v = [0.0] * 3
        for cluster, n in entries:
            v[cluster] += n
        return v

    expected = {4: (vec([(c13, 2)]), vec([(c13, 1)])), 5: (vec([(c13, 1)]), vec([])),
                6: (vec([(c2, 1)]), vec([(c2, 1)])), 7: (vec([]), vec([]))}
    for i, (like, love) in expected.items():
        assert (rows[i]["like_macro_counts"], rows[i]["love_macro_counts"]) == (like, love), i
    assert [rows[i]["macro_id"] for i in (4, 5, 6, 7)] == [0, 0, 1, 1]   # item macro node = domain code


def test_schema_matches_table(built):
    out, _ = built
    want = macro(LABELS).spark_schema()
    assert out.table.schema.fieldNames() == want.fieldNames()
    assert [f.dataType for f in out.table.schema.fields] == [f.dataType for f in want.fields]


def test_params_validated():
    with pytest.raises(ValueError, match="n_clusters"):
        MacroParams(n_clusters=1)
    with pytest.raises(ValueError, match="domain"):
        build_macro(None, None, LABELS, CUTOFF, [])
