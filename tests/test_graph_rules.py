"""The graph stages' quality rules flag exactly the rows they describe (row rules through Great
Expectations, join rules as frames of violating rows)."""
from __future__ import annotations

from datetime import date, datetime

import pytest
from pyspark.sql import functions as F

from etl.checks.examples import example_rules
from etl.checks.graph import (DUPLICATE_EDGES, MISSING_ENDS, ORPHANED, UNBACKED, UNLISTED_SWING, WRONG_DEGREE,
                              WRONG_TYPES, edge_rules, edge_violations, node_rules, proven_edge_rules)
from etl.checks.macro import macro_rules
from etl.checks.neighbors import (DUPLICATE_ROWS, MISSING_ROWS, NOT_EDGES, UNKNOWN_ROWS, neighbor_rules,
                                 neighbor_violations, proven_neighbor_rules)
from etl.checks.runner import validate
from etl.checks.screen import count_rows
from etl.transforms.graph import positive_events
from etl.transforms.neighbors import NeighborParams, sample_neighbors
from etl.transforms.split import SplitCutoffs
from schemas.tables import EDGES, NEIGHBORS, NODES, SWING_I2I, examples, interactions, macro

LABELS = ["like"]
CUTOFF = date(2024, 1, 3)
# Examples: train before Jan 3, val on Jan 3-4, eval from Jan 5.
CUTOFFS = SplitCutoffs(val_start=CUTOFF, eval_start=date(2024, 1, 5))
DAY = (CUTOFF - date(1970, 1, 1)).days   # the first val day; DAY + 2 is the first eval day
SPLIT_RULE = f"split = train before day {DAY} (2024-01-03), val before day {DAY + 2} (2024-01-05), eval from it on"


def _custom(rules):
    """Only the rules written for these tables (the schema-derived ones are tested with schemas)."""
    return [r for r in rules if r.kind == "UnexpectedRowsExpectation"]


def _failed(df, rules, table):
    outcomes, _ = validate(df, rules, table)
    errors = [o.error for o in outcomes if o.error]
    assert not errors, errors
    return {o.expectation.split("description='")[1].split("'")[0] for o in outcomes if not o.success}


def _swing(spark, pairs):
    """silver.swing_i2i rows for (item_id, neighbor_id) pairs."""
    return spark.createDataFrame([(i, j, 1.0, 2, 1) for i, j in pairs], SWING_I2I.spark_schema())


@pytest.fixture(scope="module")
def graph(spark):
    nodes = spark.createDataFrame([
        (0, "user", "u0", None, [], 2), (1, "user", "u1", None, [], 0), (2, "user", "u2", None, [], 0),
        (3, "item", "i0", "A", [], 3), (4, "item", "i1", "A", [], 2),
    ], NODES.spark_schema())
    edges = spark.createDataFrame([
        (0, 3, "like", 0.6931471805599453), (3, 0, "like", 0.6931471805599453),   # backed: 1 event
        (0, 4, "like", 0.5), (4, 0, "like", 0.5),                                 # weight should be log1p(2)
        (3, 4, "swing", 1.0),
        (4, 2, "swing", 1.0),                                                     # item -> user: wrong types
        (3, 9, "swing", 1.0),                                                     # unknown endpoint
        (3, 1, "like", 0.6931471805599453),                                       # only an eval-day event: leak
    ], EDGES.spark_schema())
    rows = [("u0", "i0", date(2024, 1, 1), 1), ("u0", "i1", date(2024, 1, 1), 1), ("u0", "i1", date(2024, 1, 2), 1),
            ("u1", "i0", date(2024, 1, 3), 1), ("u2", "i1", date(2024, 1, 2), 1)]
    log = spark.createDataFrame([(u, i, datetime(d.year, d.month, d.day), d, "A", lk) for u, i, d, lk in rows],
                                interactions(LABELS).spark_schema())
    return nodes, edges, positive_events(log, LABELS, CUTOFF), _swing(spark, [("i0", "i1"), ("i1", "i0")])


def test_edge_join_rules(graph):
    nodes, edges, positive, swing = graph
    bad = {name: [tuple(r) for r in df.collect()] for name, df in edge_violations(edges, nodes, positive, swing).items()}
    assert len(bad[MISSING_ENDS]) == 1
    assert {(r[1], r[0]) for r in bad[WRONG_TYPES]} == {(4, 2)}   # rows are (dst, src, ...)
    leak = bad[UNBACKED]
    assert sorted((r[0], r[1]) for r in leak) == [("u0", "i1"), ("u0", "i1"), ("u1", "i0")]   # (u1,i0) one way only
    # node 3 has 4 out-edges, not the 3 it claims
    assert bad[WRONG_DEGREE] == [(3, 3, 4)]
    assert bad[ORPHANED] == [(2, "u2")]
    assert bad[DUPLICATE_EDGES] == []
    # i1 -> u2 and i0 -> (unknown) are no pairs; the pair (i1, i0) has no edge
    assert {r[:2] for r in bad[UNLISTED_SWING]} == {("i1", "u2"), ("i0", None), ("i1", "i0")}


def test_duplicate_edge_keys_are_counted_per_key(spark, graph):
    nodes, edges, positive, swing = graph
    twice = edges.unionByName(edges.where("src = 3 AND dst = 4")).unionByName(edges.where("src = 0"))
    bad = edge_violations(twice, nodes, positive, swing)[DUPLICATE_EDGES]
    assert sorted(tuple(r) for r in bad.collect()) == [(0, 3, "like", 2), (0, 4, "like", 2), (3, 4, "swing", 2)]


@pytest.fixture(scope="module")
def sound_graph(spark):
    """A graph whose behaviour edges are exactly the pre-cutoff positives, for two labels."""
    labels = ["click", "like"]
    nodes = spark.createDataFrame([
        (0, "user", "u0", None, [], 3), (1, "user", "u1", None, [], 1),
        (2, "item", "i0", "A", [], 3), (3, "item", "i1", "A", [], 3),
    ], NODES.spark_schema())
    # (user, item, day, click, like); u1's like of i1 and u0's click of i0 come after the cutoff
    rows = [("u0", "i0", 1, 1, 1), ("u0", "i0", 2, 1, 0), ("u0", "i1", 1, 1, 0), ("u1", "i1", 2, 1, 0),
            ("u1", "i1", 3, 0, 1), ("u0", "i0", 4, 1, 0), ("u1", "i0", 1, 0, 0)]
    log = spark.createDataFrame([(u, i, datetime(2024, 1, d), date(2024, 1, d), "A", c, lk) for u, i, d, c, lk in rows],
                                interactions(labels).spark_schema())
    behaviour = [(0, 2, "click", TWO), (0, 2, "like", ONE), (0, 3, "click", ONE), (1, 3, "click", ONE)]
    edges = [*behaviour, *((d, s, t, w) for s, d, t, w in behaviour), (2, 3, "swing", 1.0), (3, 2, "swing", 0.5)]
    return nodes, edges, positive_events(log, labels, CUTOFF).cache(), [("i0", "i1"), ("i1", "i0")]


TWO, ONE = 1.0986122886681098, 0.6931471805599453   # log1p(2), log1p(1)
EDGE_RULES = {MISSING_ENDS, WRONG_TYPES, UNBACKED, WRONG_DEGREE, ORPHANED, DUPLICATE_EDGES, UNLISTED_SWING}
# change of the sound graph's edges (or its swing pairs) -> the rules its joins find broken, and
# the rules the proof may not claim although their joins are empty (it is conservative: the join
# then decides). A rule the proof does not claim is one it proves.
EDGE_FAULTS = {
    "sound": (None, None, set(), set()),
    "weight log1p(3)": (lambda e: [(s, d, t, 1.3862943611198906 if (s, t) == (2, "click") else w) for s, d, t, w in e],
                        None, {UNBACKED}, {DUPLICATE_EDGES}),
    "a post-cutoff like": (lambda e: [*e, (1, 3, "like", ONE), (3, 1, "like", ONE)], None,
                           {UNBACKED, WRONG_DEGREE}, {DUPLICATE_EDGES}),
    "wrong type one way": (lambda e: [(s, d, "like" if (s, d) == (1, 3) else t, w) for s, d, t, w in e], None,
                           {UNBACKED}, {DUPLICATE_EDGES}),
    "weights off by 1e-6": (lambda e: [(s, d, t, w * (1 + 1e-6)) for s, d, t, w in e], None,
                            {UNBACKED}, {DUPLICATE_EDGES}),
    # a missing edge is not an unbacked one
    "one direction of a pair missing": (lambda e: [x for x in e if x[:3] != (3, 1, "click")], None,
                                        {WRONG_DEGREE}, {UNBACKED, DUPLICATE_EDGES}),
    "a positive group without edges": (lambda e: [x for x in e if x[2] != "like"], None,
                                       {WRONG_DEGREE}, {UNBACKED, DUPLICATE_EDGES}),
    # the two edges' counts add up to the group's, so the sums alone would match
    "a group's count split over two edges": (
        lambda e: [y for x in e for y in ([x[:3] + (ONE,)] * 2 if x[:3] in {(0, 2, "click"), (2, 0, "click")} else [x])],
        None, {UNBACKED, DUPLICATE_EDGES, WRONG_DEGREE}, set()),
    "a swing edge twice": (lambda e: [*e, (2, 3, "swing", 1.0)], None,
                           {DUPLICATE_EDGES, WRONG_DEGREE}, {UNLISTED_SWING}),
    "a swing edge that is no pair": (None, [("i0", "i1")], {UNLISTED_SWING}, {DUPLICATE_EDGES}),
}


@pytest.mark.parametrize("fault", list(EDGE_FAULTS))
def test_edge_proof_claims_only_rules_whose_joins_are_empty(spark, sound_graph, fault):
    """The proof claims every rule of the sound graph, never one that a change breaks, and each
    rule a change leaves intact unless the proof rests on a broken one."""
    nodes, edges, positive, pairs = sound_graph
    change, other_pairs, broken, unclaimed = EDGE_FAULTS[fault]
    df = spark.createDataFrame(change(edges) if change else edges, EDGES.spark_schema())
    swing = _swing(spark, other_pairs or pairs)
    joins = edge_violations(df, nodes, positive, swing)
    assert {rule for rule, n in zip(joins, count_rows(list(joins.values()))) if n} == broken
    assert proven_edge_rules(df, nodes, positive, swing) == EDGE_RULES - broken - unclaimed


def test_counted_rules_are_proven_exactly_when_their_join_is_empty(spark, graph, sound_graph):
    """The three rules the proof query counts: not proven on the broken graph, where each join has
    rows; an orphan alone (a user that claims degree 0 but has pre-cutoff clicks) is not proven,
    while the rest of the sound graph is (but for the degree the orphan then has wrong)."""
    nodes, edges, positive, swing = graph
    bad = {rule for rule, df in edge_violations(edges, nodes, positive, swing).items() if df.count()}
    assert {MISSING_ENDS, WRONG_TYPES, ORPHANED, UNBACKED} <= bad
    assert proven_edge_rules(edges, nodes, positive, swing) == set()
    sound_nodes, sound_edges, sound_positive, pairs = sound_graph
    orphan = sound_nodes.withColumn("degree", F.when(F.col("raw_id") == "u1", 0).otherwise(F.col("degree")))
    df, swing = spark.createDataFrame(sound_edges, EDGES.spark_schema()), _swing(spark, pairs)
    assert edge_violations(df, orphan, sound_positive, swing)[ORPHANED].count() == 1
    assert proven_edge_rules(df, orphan, sound_positive, swing) == EDGE_RULES - {ORPHANED, WRONG_DEGREE}


def test_node_and_edge_row_rules(spark, graph):
    nodes = graph[0]
    assert _failed(nodes, _custom(node_rules()), NODES.name) == set()
    broken = spark.createDataFrame([(0, "item", "i0", "A", [], 0), (1, "user", "u0", None, [], 0),
                                    (3, "user", "u1", "B", [], 0)], NODES.spark_schema())
    assert _failed(broken, _custom(node_rules()), NODES.name) == {
        "node ids are dense: min 0, max = count - 1", "users come before items", "users have no domain, items have one"}
    edges = spark.createDataFrame([(0, 0, "like", 1.0), (0, 1, "like", float("nan")), (1, 2, "swing", 2.0),
                                   (2, 1, "like", float("inf")), (1, 0, "like", 0.5)], EDGES.spark_schema())
    assert _failed(edges, _custom(edge_rules(LABELS)), EDGES.name) == {
        "no self loops", "weights finite and > 0", "swing weights in (0, 1]"}


def test_neighbor_rules(spark, graph):
    nodes, edges = graph[:2]
    lists = spark.createDataFrame([
        (0, [3, 4], [0.5, 0.5], [0, 0], 2),
        (3, [0, 3], [1.0, 2.0], [0, 7], 3),      # too short for min(k, 3); type 7 unknown; itself listed
        (4, [0, 2], [float("nan"), 1.0], [0, 1], 2),
    ], NEIGHBORS.spark_schema())
    assert _failed(lists, _custom(neighbor_rules(k=5, n_types=2)), NEIGHBORS.name) == {
        "arrays aligned, of length min(5, degree)", "type codes in 0..1", "weights finite and > 0",
        "no node is its own neighbour"}
    # each way a list's weights or types can be wrong, alone in an otherwise sound list
    for weights, types, rule in [([1.0, float("inf")], [0, 0], "weights finite and > 0"),
                                 ([0.0, 1.0], [0, 0], "weights finite and > 0"),
                                 ([1.0, -2.0], [0, 0], "weights finite and > 0"),
                                 ([float("nan"), float("nan")], [0, 0], "weights finite and > 0"),
                                 ([1.0, 1.0], [-1, 0], "type codes in 0..1"),
                                 ([1.0, 1.0], [1, 2], "type codes in 0..1")]:
        one = spark.createDataFrame([(0, [3, 4], weights, types, 2)], NEIGHBORS.spark_schema())
        assert _failed(one, _custom(neighbor_rules(k=5, n_types=2)), NEIGHBORS.name) == {rule}, (weights, types)
    bad = neighbor_violations(lists, nodes, edges, {"like": 0, "swing": 1})
    assert {r["src"] for r in bad["sampled neighbours that are not edges of the node"].collect()} == {3}
    assert {r["node_id"] for r in bad["nodes without a neighbour row, or with another degree"].collect()} == {1, 2}


def _tampered(rows, change):
    """gold.neighbors rows (dicts by node) with one hand-made fault."""
    rows = {v: dict(r) for v, r in rows.items()}
    if change == "a neighbour that is no edge":
        rows[0]["nbr_ids"] = [3] + rows[0]["nbr_ids"][1:]           # node 3 is isolated: (0, 3) is no edge
    elif change == "an edge's type changed":
        i = rows[1]["nbr_ids"].index(11)
        rows[1]["nbr_types"] = rows[1]["nbr_types"][:i] + [2] + rows[1]["nbr_types"][i + 1:]  # (1, 11) is no swing edge
    elif change == "another degree":
        rows[1]["degree"] += 1
    elif change == "a row of an unknown node":
        rows[99] = {**rows[3], "node_id": 99}
    elif change == "a list in ascending key order":
        rows[0] = {**rows[0], **{c: rows[0][c][::-1] for c in ("nbr_ids", "nbr_weights", "nbr_types")}}
    elif change == "a whole list cut short, its degree lowered to match":
        rows[1] = {**rows[1], **{c: rows[1][c][:-1] for c in ("nbr_ids", "nbr_weights", "nbr_types")}, "degree": 2}
    elif change == "a node's row twice":
        return [*rows.values(), rows[2]]
    return list(rows.values())


_ROWS = {MISSING_ROWS, UNKNOWN_ROWS, DUPLICATE_ROWS}
NEIGHBOUR_FAULTS = {   # change -> the rules it breaks, the rules the proof still proves
    "none": (set(), {*_ROWS, NOT_EDGES}),
    # the proof's two parts are apart: a fault in one leaves the other proven
    "a neighbour that is no edge": ({NOT_EDGES}, _ROWS),
    "an edge's type changed": ({NOT_EDGES}, _ROWS),
    "another degree": ({MISSING_ROWS}, {NOT_EDGES}),
    "a row of an unknown node": ({UNKNOWN_ROWS}, {NOT_EDGES}),
    # breaks no rule, but the threshold is then the list's greatest key: conservative
    "a list in ascending key order": (set(), _ROWS),
    # no rule of the joins sees a missing neighbour, but a list as long as its degree is summed
    # against all of its node's edges (here 3): conservative
    "a whole list cut short, its degree lowered to match": ({MISSING_ROWS}, set()),
    # its neighbours and its edges above the threshold are then both counted twice
    "a node's row twice": ({DUPLICATE_ROWS}, {NOT_EDGES}),
}


@pytest.fixture(scope="module")
def true_sample(spark):
    """A small graph (node 0 has more edges than k), its nodes, and a true sample of it."""
    import random

    rnd = random.Random(3)
    codes = {"like": 0, "love": 1, "swing": 2}
    edges = {(0, x, "like"): rnd.uniform(0.1, 3.0) for x in range(10, 40)}
    edges.update({(1, 10, "like"): 0.4, (1, 11, "like"): 1.3, (1, 10, "love"): 0.7, (2, 10, "swing"): 1.0})
    degrees = {v: sum(src == v for src, _, _ in edges) for v in range(40)}   # 3 is isolated
    e = spark.createDataFrame([(*key, w) for key, w in edges.items()],
                              "src long, dst long, edge_type string, weight double").cache()
    nodes = spark.createDataFrame(sorted(degrees.items()), "node_id long, degree long").cache()
    params = NeighborParams(k=8, seed=4)
    true = {r["node_id"]: r.asDict() for r in sample_neighbors(e, nodes, codes, params).collect()}
    return e, nodes, codes, params, true


@pytest.mark.parametrize("change", list(NEIGHBOUR_FAULTS))
def test_neighbour_proof_holds_only_where_the_joins_are_empty(spark, true_sample, change):
    """The hash-sum proof of gold.neighbors' join rules proves every rule of a true sample, and
    none that a hand-made fault breaks (the joins find those)."""
    e, nodes, codes, params, true = true_sample
    lists = spark.createDataFrame(_tampered(true, change), NEIGHBORS.spark_schema())
    joins = neighbor_violations(lists, nodes, e, codes)
    broken = {rule for rule, n in zip(joins, count_rows(list(joins.values()))) if n}
    assert broken == NEIGHBOUR_FAULTS[change][0]
    assert proven_neighbor_rules(lists, nodes, e, codes, params) == NEIGHBOUR_FAULTS[change][1]


@pytest.mark.parametrize("max_id", [9, 3_000_000_000])   # the second takes the three-column join
def test_sampled_neighbours_not_among_the_edges_brute_force(spark, max_id):
    """Against a set difference in Python: in-range triples that are edges pass, others are kept,
    as is every triple outside the node and code range, even one that collides under a naive key."""
    import random

    from etl.checks.neighbors import _not_among

    rnd = random.Random(5)
    known = {(rnd.randrange(10), rnd.randrange(10), rnd.randrange(2)) for _ in range(60)}
    picks = rnd.sample(sorted(known), 20)
    # with N = 10 and T = 2, (0, 19, 1) would alias the edge (1, 9, 1) under an unguarded key
    odd = [(1, -1, 0), (0, 10, 1), (2, 3, 2), (2, 3, -1), (0, 19, 1)]
    known |= {(0, 10, 1), (1, 9, 1)}
    sampled = picks + [(rnd.randrange(10), rnd.randrange(10), rnd.randrange(2)) for _ in range(20)] + odd
    frame = lambda rows: spark.createDataFrame(sorted(rows), "src long, dst long, t int")
    got = sorted(tuple(r) for r in _not_among(frame(sampled), frame(known), max_id, 2).collect())
    if max_id == 9:
        want = sorted(r for r in sampled if r not in known or not (0 <= r[1] <= 9 and 0 <= r[2] <= 1))
    else:
        want = sorted(r for r in sampled if r not in known)
    assert got == want


def test_example_rules(spark):
    """The neighbour-array layout: split/domain rules plus the array rules."""
    schema = examples(LABELS, neighbor_arrays=True)
    day = DAY + 2   # an eval day
    rules = example_rules(LABELS, k=2, cutoffs=CUTOFFS, n_domains=1, neighbor_arrays=True)

    def row(split, d, count, ids, types, degree):
        return (0, 3, d, split, 0, [], [], 1, ids, [0.5] * len(ids), types, count, degree,
                [0, 0], [0.0, 0.0], [-1, -1], 0, 0)

    good = row("train", DAY - 1, 1, [3, 0], [0, -1], 1)
    df = spark.createDataFrame([
        good,
        row("val", day, 1, [3, 0], [0, -1], 1),        # split disagrees with day
        row("eval", day, 2, [3, 0], [0, -1], 2),       # padding inside the real part
        row("eval", day, 1, [3, 4], [0, 0], 1),        # real entry after the count
        row("eval", day, 1, [3], [0], 1),              # too short
        row("eval", day, 0, [0, 0], [-1, -1], 1),      # count disagrees with degree
    ], schema.spark_schema())
    assert _failed(df, _custom(rules), schema.name) == {
        SPLIT_RULE, "user padding after user_nbr_count",
        "user arrays of length 2", "user_nbr_count = min(2, user_degree)"}
    ok = spark.createDataFrame([good], schema.spark_schema())
    assert _failed(ok, _custom(rules), schema.name) == set()
    assert _failed(ok, rules, schema.name) == set()   # with the schema's rules on the array columns


def test_slim_example_rules(spark):
    """Slim rows (the default): the same split/domain rules and schema rules, no array or feature rule."""
    schema = examples(LABELS)
    rules = example_rules(LABELS, k=2, cutoffs=CUTOFFS, n_domains=2)
    described = " ".join(r.describe() for r in rules)
    assert "nbr" not in described and "degree" not in described and "features" not in described
    assert {"ExpectTableColumnsToMatchSet", "ExpectColumnValuesToNotBeNull"} <= {r.kind for r in rules}
    assert "ExpectTableRowCountToEqual" in {r.kind for r in example_rules(LABELS, 2, CUTOFFS, 2, n_impressions=3)}
    assert next(r for r in rules if r.kind == "ExpectTableColumnsToMatchSet").kwargs["column_set"] == [
        "user_node", "item_node", "day", "split", "domain_id", *LABELS]

    good = (0, 3, DAY - 1, "train", 1, 1)
    df = spark.createDataFrame([good, (0, 3, DAY, "train", 0, 1), (0, 3, DAY + 2, "eval", 2, 0)],
                               schema.spark_schema())
    assert _failed(df, _custom(rules), schema.name) == {SPLIT_RULE, "domain_id in 0..1"}
    ok = spark.createDataFrame([good, (0, 3, DAY, "val", 1, 1), (0, 3, DAY + 1, "val", 1, 1),
                                (0, 3, DAY + 2, "eval", 1, 1)], schema.spark_schema())
    assert _failed(ok, rules, schema.name) == set()
    # Each row whose split disagrees with its day, on its own, breaks the split rule.
    for split, day in (("train", DAY), ("val", DAY - 1), ("val", DAY + 2), ("eval", DAY + 1), ("test", DAY)):
        wrong = spark.createDataFrame([(0, 3, day, split, 1, 1)], schema.spark_schema())
        assert SPLIT_RULE in _failed(wrong, _custom(rules), schema.name), (split, day)
    # A frame with the array layout's columns fails the slim column set.
    wide = spark.createDataFrame([(0, 3, DAY - 1, "train", 1, [1.0], [2.0], 1)],
                                 "user_node long, item_node long, day int, split string, domain_id int, "
                                 "user_features array<float>, item_features array<float>, like int")
    outcomes, _ = validate(wide, [r for r in rules if r.kind == "ExpectTableColumnsToMatchSet"], schema.name)
    assert [o.success for o in outcomes] == [False]


def test_macro_rules(spark):
    schema = macro(LABELS)
    df = spark.createDataFrame([(0, "user", 1, [1.0, 0.0]), (1, "user", 2, [1.0, 0.0]),
                                (2, "item", 0, [0.0, 0.0, 0.0]), (3, "item", 0, [-1.0, 0.0])], schema.spark_schema())
    assert _failed(df, _custom(macro_rules(LABELS, n_domains=2, n_clusters=2)), schema.name) == {
        "user macro_id < 2, item macro_id < 2", "like_macro_counts: length 2 for users, 2 for items",
        "like_macro_counts: counts >= 0"}


def test_a_failed_row_rule_reports_the_bad_rows(spark):
    edges = spark.createDataFrame([(0, 0, "like", 1.0), (0, 1, "like", 0.5), (5, 5, "swing", 0.25)],
                                  EDGES.spark_schema())
    outcomes, _ = validate(edges, [r for r in _custom(edge_rules(LABELS)) if "self loops" in r.describe()],
                           EDGES.name)
    (loops,) = outcomes
    assert not loops.success
    assert sorted((r["src"], r["dst"], r["weight"]) for r in loops.sample) == [(0, 0, 1.0), (5, 5, 0.25)]
    assert "sample bad rows=" in loops.line() and '"src": 5' in loops.line()
