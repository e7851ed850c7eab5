"""Swing (docs/method.md §Swing) against an independent brute force, a hand-computed case,
determinism, bad input, and top-k order. The reference below shares no code with
etl/transforms/swing.py: it is a triple loop over item pairs and user pairs that recounts |C_uv| for
every pair it meets."""
from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import replace
from typing import Optional

import pytest
from pyspark.sql import functions as F

from etl.transforms.compact_keys import KEY_LIMIT, compact_keys
from etl.transforms.swing import SwingParams, SwingPreset, swing, swing_partitions

REL = 1e-9


# ---- the independent reference ----------------------------------------------------------------------

def sample_hashes(spark, pairs, seed: int) -> dict:
    """The documented sample key, xxhash64(seed, item, user), as one Spark expression per pair."""
    df = spark.createDataFrame([p for p in pairs if None not in p], "user_id long, item_id long").distinct()
    rows = df.select("user_id", "item_id",
                     F.xxhash64(F.lit(seed).cast("long"), F.col("item_id"), F.col("user_id")).alias("h")).collect()
    return {(r.user_id, r.item_id): r.h for r in rows}


def reference(pairs, p: SwingParams, hashes: Optional[dict] = None) -> dict:
    """{(i, j): (score, n_common)} for every ordered item pair with a score (no top_k)."""
    items_of = defaultdict(set)
    for u, i in pairs:
        if u is not None and i is not None:
            items_of[u].add(i)
    kept = {u: its for u, its in items_of.items()
            if len(its) >= p.min_user_items and (p.max_user_items is None or len(its) <= p.max_user_items)}
    weight = {u: (p.alpha1 + len(its)) ** (-p.beta_user) for u, its in kept.items()}
    users_of = defaultdict(list)
    for u, its in kept.items():
        for i in its:
            users_of[i].append(u)
    sample = {}
    for i, us in users_of.items():
        if p.max_users_per_item is not None and len(us) > p.max_users_per_item:
            us = sorted(us, key=lambda u: (hashes[(u, i)], u))[:p.max_users_per_item]
        sample[i] = set(us)
    items = sorted(sample)
    out = {}
    for a, i in enumerate(items):
        for j in items[a + 1:]:
            common = sorted(sample[i] & sample[j])
            if len(common) < 2:
                continue
            s = 0.0
            for x, u in enumerate(common):
                for v in common[x + 1:]:
                    c_uv = sum(1 for k in items if u in sample[k] and v in sample[k])
                    s += weight[u] * weight[v] / (p.alpha2 + c_uv)
            out[(i, j)] = out[(j, i)] = (s, len(common))
    return out


def random_pairs(seed: int, users: int = 26, items: int = 14) -> list[tuple]:
    """Users with 1..items distinct items, popular items (Zipf-ish weights) chosen more often."""
    rng = random.Random(seed)
    weight = [1.0 / (k + 1) for k in range(items)]
    pairs = []
    for u in range(users):
        n = rng.randint(1, items)
        # Weighted sampling without replacement: the n largest keys U^(1/w) (Efraimidis–Spirakis).
        its = sorted(range(items), key=lambda k: -rng.random() ** (1.0 / weight[k]))[:n]
        pairs += [(u, 100 + i) for i in its]
        pairs += [(u, 100 + i) for i in its[:2]]  # duplicate rows count once
    return pairs


def run_swing(spark, pairs, p: SwingParams, schema: str = "user_id long, item_id long"):
    return swing(spark.createDataFrame(pairs, schema), p).collect()


def as_dict(rows) -> dict:
    return {(r.item_id, r.neighbor_id): (r.score, r.n_common_users) for r in rows}


def assert_same_scores(got: dict, want: dict) -> None:
    assert set(got) == set(want), (f"pairs only in grec: {sorted(set(got) - set(want))[:5]}, "
                                   f"only in the reference: {sorted(set(want) - set(got))[:5]}")
    for k, (s, n) in want.items():
        assert got[k][1] == n, f"{k}: n_common_users {got[k][1]} != {n}"
        assert math.isclose(got[k][0], s, rel_tol=REL), f"{k}: score {got[k][0]!r} != {s!r}"


# ---- against the reference ----------------------------------------------------------------------

PRESETS = [None, *SwingPreset]


@pytest.mark.parametrize("preset", PRESETS, ids=lambda x: getattr(x, "value", "spec-default"))
def test_matches_brute_force_caps_off_and_on(spark, preset):
    pairs = random_pairs(seed=3)
    base = SwingParams() if preset is None else SwingParams.preset(preset)
    off = replace(base, max_user_items=None, max_users_per_item=None, top_k=None)
    # Caps that bind on this input: users with 13 or 14 items are dropped, items keep 5 of their users.
    on = replace(base, max_user_items=12, max_users_per_item=5, top_k=None, seed=3)
    for p in (off, on):
        want = reference(pairs, p, sample_hashes(spark, pairs, p.seed))
        assert want, f"the test input gives no pair for {p}; make it denser"
        assert_same_scores(as_dict(run_swing(spark, pairs, p)), want)


def test_caps_bind_in_the_reference_test():
    """Guards the test above: its caps must bind for every preset, or 'caps on' would test nothing."""
    items_of = defaultdict(set)
    for u, i in random_pairs(seed=3):
        items_of[u].add(i)
    assert max(len(its) for its in items_of.values()) > 12
    for min_items in (2, 10):  # grec's default and the paper; Flink and Alink
        users_of = defaultdict(set)
        for u, its in items_of.items():
            if min_items <= len(its) <= 12:
                for i in its:
                    users_of[i].add(u)
        assert max(len(us) for us in users_of.values()) > 5


def test_string_ids_match_integer_ids(spark):
    pairs = random_pairs(seed=11)
    p = SwingParams(max_users_per_item=None, top_k=None)
    want = reference(pairs, p)
    named = [(f"user-{u}", f"item-{i}") for u, i in pairs]
    got = {(int(i[5:]), int(j[5:])): v for (i, j), v in
           as_dict(run_swing(spark, named, p, "user_id string, item_id string")).items()}
    assert_same_scores(got, want)


# ---- a hand-computed case ---------------------------------------------------------------------------
# Users and their items:  u1: A B C    u2: A B C D    u3: B C D    u4: A D
# |I_u| = 3, 4, 3, 2.  Common items: C12 = ABC (3), C13 = BC (2), C14 = A (1), C23 = BCD (3),
# C24 = AD (2), C34 = D (1). Pairs with one common item contribute to no item pair.
# Default parameters (alpha1 = 15, beta = 0.3, alpha2 = 1):
#   w1 = w3 = 18^-0.3 = 0.420165..., w2 = 19^-0.3 = 0.413387..., w4 = 17^-0.3 = 0.427379...
#   c12 = w1 w2 / (1 + 3) = 0.043424235...   c13 = w1 w3 / (1 + 2) = 0.058845...
#   c23 = w2 w3 / (1 + 3) = c12              c24 = w2 w4 / (1 + 2) = 0.058900365...
#   s(A,B) = s(A,C) = c12 (U_A ∩ U_B = U_A ∩ U_C = {u1, u2})          = 0.043424235058700
#   s(A,D) = c24 ({u2, u4})                                            = 0.058900365339556
#   s(B,C) = c12 + c13 + c23 ({u1, u2, u3})                            = 0.145694239064556
#   s(B,D) = s(C,D) = c23 ({u2, u3})                                   = 0.043424235058700
# Paper preset (w = 1/sqrt(|I_u|), alpha2 = 1): c12 = c23 = (1/sqrt3)(1/2)/4 = 1/(8 sqrt3),
#   c13 = (1/3)/3 = 1/9, c24 = (1/2)(1/sqrt2)/3 = 1/(6 sqrt2); s(B,C) = 1/(4 sqrt3) + 1/9.
HAND = {"u1": "ABC", "u2": "ABCD", "u3": "BCD", "u4": "AD"}
HAND_PAIRS = [(u, i) for u, its in HAND.items() for i in its]


def _hand_expected(c12: float, c13: float, c23: float, c24: float) -> dict:
    s = {("A", "B"): (c12, 2), ("A", "C"): (c12, 2), ("A", "D"): (c24, 2),
         ("B", "C"): (c12 + c13 + c23, 3), ("B", "D"): (c23, 2), ("C", "D"): (c23, 2)}
    return {**s, **{(j, i): v for (i, j), v in s.items()}}


def test_hand_computed_default(spark):
    got = as_dict(run_swing(spark, HAND_PAIRS, SwingParams(top_k=None), "user_id string, item_id string"))
    w1 = w3 = 18 ** -0.3
    w2, w4 = 19 ** -0.3, 17 ** -0.3
    want = _hand_expected(w1 * w2 / 4, w1 * w3 / 3, w2 * w3 / 4, w2 * w4 / 3)
    assert math.isclose(want[("B", "C")][0], 0.145694239064556, rel_tol=1e-12)  # the figure above
    assert set(got) == set(want)
    for k, (s, n) in want.items():
        assert got[k][1] == n
        assert math.isclose(got[k][0], s, rel_tol=1e-12), (k, got[k][0], s)


def test_hand_computed_paper_preset(spark):
    got = as_dict(run_swing(spark, HAND_PAIRS, SwingParams.preset("paper", top_k=None),
                            "user_id string, item_id string"))
    c12 = 1 / (8 * math.sqrt(3))
    want = _hand_expected(c12, 1 / 9, c12, 1 / (6 * math.sqrt(2)))
    assert got.keys() == want.keys()
    assert all(math.isclose(got[k][0], want[k][0], rel_tol=1e-12) and got[k][1] == want[k][1] for k in want)


def test_top_k_and_tie_order(spark):
    rows = run_swing(spark, HAND_PAIRS, SwingParams(top_k=2), "user_id string, item_id string")
    ranked = defaultdict(list)
    for r in sorted(rows, key=lambda r: (r.item_id, r.rank)):
        ranked[r.item_id].append((r.rank, r.neighbor_id))
    # A: D (c24) beats B and C, which tie at c12 -> B (smaller id) wins the tie; likewise for B and D.
    assert dict(ranked) == {"A": [(1, "D"), (2, "B")], "B": [(1, "C"), (2, "A")],
                            "C": [(1, "B"), (2, "A")], "D": [(1, "A"), (2, "B")]}


def test_top_k_keeps_the_reference_order(spark):
    pairs = random_pairs(seed=5)
    p = SwingParams(max_users_per_item=None, top_k=3)
    want = reference(pairs, p)
    rows = run_swing(spark, pairs, p)
    by_item = defaultdict(list)
    for r in rows:
        by_item[r.item_id].append(r)
    for i in {i for i, _ in want}:
        order = sorted(((s, j) for (a, j), (s, _) in want.items() if a == i), key=lambda t: (-t[0], t[1]))
        got = sorted(by_item[i], key=lambda r: r.rank)
        assert [r.rank for r in got] == list(range(1, min(3, len(order)) + 1))
        for r, (s, j) in zip(got, order):
            # Near-ties may be ordered either way by float noise; exact order otherwise.
            assert math.isclose(r.score, s, rel_tol=REL), (i, r, s, j)
            if not any(math.isclose(s, s2, rel_tol=1e-12) for s2, j2 in order if j2 != j):
                assert r.neighbor_id == j


# ---- determinism and the seed -----------------------------------------------------------------------

def test_same_seed_same_output_other_seed_other_sample(spark):
    pairs = random_pairs(seed=3, users=40)
    p = SwingParams(max_users_per_item=4, top_k=None, seed=1)
    first, again = as_dict(run_swing(spark, pairs, p)), as_dict(run_swing(spark, pairs, p))
    assert first == again
    other = as_dict(run_swing(spark, pairs, replace(p, seed=2)))
    assert other != first
    # ... and each seed's output is the reference's for that seed's sample.
    assert_same_scores(other, reference(pairs, replace(p, seed=2), sample_hashes(spark, pairs, 2)))


# ---- bad input --------------------------------------------------------------------------------------

def test_degenerate_inputs_give_an_empty_result(spark):
    p = SwingParams()
    assert run_swing(spark, [], p) == []
    assert run_swing(spark, [(1, 10), (1, 11), (1, 12)], p) == []  # one user: no user pair
    assert run_swing(spark, [(1, 10), (2, 10), (3, 10)], p) == []  # all below min_user_items
    out = swing(spark.createDataFrame([], "user_id string, item_id int"), p)
    assert [(f.name, f.dataType.simpleString()) for f in out.schema.fields] == [
        ("item_id", "int"), ("neighbor_id", "int"), ("score", "double"), ("n_common_users", "bigint"),
        ("rank", "int")]


def test_null_ids_are_ignored(spark):
    pairs = random_pairs(seed=9)
    p = SwingParams(top_k=None)
    noisy = pairs + [(None, 100), (1, None), (None, None), (2, None)]
    assert_same_scores(as_dict(run_swing(spark, noisy, p)), as_dict(run_swing(spark, pairs, p)))


def test_missing_columns_and_bad_parameters_are_named(spark):
    df = spark.createDataFrame([(1, 2)], "uid long, iid long")
    with pytest.raises(ValueError, match=r"no column\(s\) \['user_id', 'item_id'\].*\['uid', 'iid'\]"):
        swing(df)
    with pytest.raises(ValueError, match="same column"):
        swing(df, user_col="uid", item_col="uid")
    with pytest.raises(ValueError, match="max_users_per_item must be >= 2"):
        SwingParams(max_users_per_item=1)
    with pytest.raises(ValueError, match="alpha2 must be >= 0"):
        SwingParams(alpha2=-1)
    with pytest.raises(ValueError, match="unknown Swing preset 'spark'"):
        SwingParams.preset("spark")
    with pytest.raises(ValueError, match="partitions must be >= 1"):
        swing(df, user_col="uid", item_col="iid", partitions=0)


def test_heavy_stage_partitions_grow_with_the_input(spark):
    floor = int(spark.conf.get("spark.sql.shuffle.partitions"))
    assert swing_partitions(spark, 1_000) == floor
    assert swing_partitions(spark, 10_000_000) == max(floor, 250)


def test_missing_jvm_udf_says_how_to_build_it(spark, monkeypatch):
    import etl.transforms.swing as swing_module
    from etl.session import SparkSetupError

    monkeypatch.setattr(swing_module, "HEAD_USER_PAIRS_CLASS", "grec.swing.NotBuilt")
    df = spark.createDataFrame([(1, 1), (1, 2), (2, 1), (2, 2)], "user_id long, item_id long")
    with pytest.raises(SparkSetupError, match=r"grec\.swing\.NotBuilt.*make setup.*grec-jvm\.jar"):
        swing(df)


# ---- compact keys ---------------------------------------------------------------------------------

def test_compact_keys_unique_small_and_decodable(spark):
    rng = random.Random(0)
    ids = sorted({"".join(rng.choices("abcdefgh", k=rng.randint(1, 6))) for _ in range(3000)})
    df = spark.createDataFrame([(x, n) for n, x in enumerate(ids)], "name string, n long")
    keyed = compact_keys(df, "name", "k")
    rows = keyed.frame.collect()
    keys = [r.k for r in rows]
    assert len(rows) == len(ids) and len(set(keys)) == len(ids)
    assert all(0 <= k < KEY_LIMIT for k in keys)
    back = {r.n: r.name for r in keyed.decode(keyed.frame, "k", "name").collect()}
    assert back == dict(enumerate(ids))
