"""Synthetic generator: determinism, exact counts, and the planted structure checked against the
generator's exposed latent model (user_model / item_model) with numpy, independently of the row code."""
from __future__ import annotations

import argparse
import math
from dataclasses import asdict
from datetime import date, timedelta

import numpy as np
import pytest
from pyspark.sql import functions as F

from etl.sources import SourceError, add_source_arguments, load_source, load_source_from_args
from etl.sources.synthetic import (ITEM_FEATURES, USER_FEATURES, SyntheticOptions, item_model, user_model,
                                   write_synthetic)

OPTS = dict(rows=30_000, users=1_000, items=400, domains=4, days=14, seed=3)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@pytest.fixture(scope="module")
def generated(spark):
    """The generated rows joined with the planted model, as pandas (30k rows)."""
    src = load_source(spark, "synthetic", **OPTS)
    opts = SyntheticOptions(**OPTS)
    rows = src.interactions.toPandas()
    users = user_model(spark, opts).toPandas().set_index("u")
    items = item_model(spark, opts).toPandas().set_index("i")
    u = rows.user_id.astype(int).to_numpy()
    i = rows.item_id.astype(int).to_numpy()
    p = np.stack(users.factors.to_numpy())[u]
    q = np.stack(items.factors.to_numpy())[i]
    x = (opts.factor_scale * (p * q).sum(1) / math.sqrt(opts.latent_dim)
         + users.bias.to_numpy()[u] + items.bias.to_numpy()[i])
    return src, opts, rows, users, items, u, i, x


def test_same_seed_gives_identical_rows_on_any_partitioning_and_another_seed_differs(spark):
    small = dict(rows=3_000, users=200, items=100, domains=3, days=5)
    collect = lambda **o: sorted(tuple(r) for r in load_source(spark, "synthetic", **small, **o).interactions.collect())
    a = collect(seed=1, partitions=2)
    assert a == collect(seed=1, partitions=5)
    b = collect(seed=2, partitions=2)
    assert len(b) == len(a) and len(set(a) & set(b)) < len(a) // 100


def test_counts_ids_domains_and_days(generated):
    src, opts, rows, users, items, u, i, _ = generated
    assert len(rows) == opts.rows
    assert set(u) == set(range(opts.users))  # every user has at least one row
    assert i.min() >= 0 and i.max() < opts.items
    assert set(rows.domain) == {f"d{d}" for d in range(opts.domains)}
    assert (rows.domain.to_numpy() == np.array([f"d{k % opts.domains}" for k in i])).all()  # item i is in d(i mod D)
    start = date.fromisoformat(opts.start_date)
    days = {r[0] for r in src.interactions.select(F.date_format("ts", "yyyy-MM-dd")).distinct().collect()}
    assert days == {(start + timedelta(days=k)).isoformat() for k in range(opts.days)}
    assert list(rows.columns) == ["user_id", "item_id", "ts", "domain", "click", "long_view", "like", "_source"]
    assert (src.labels, src.positive_label) == (["click", "long_view", "like"], "click")


def test_side_tables(generated):
    src, opts, *_ = generated
    users, items = src.users.toPandas(), src.items.toPandas()
    assert len(users) == opts.users and len(items) == opts.items
    assert {len(f) for f in users.features} == {len(USER_FEATURES)}
    assert {len(f) for f in items.features} == {len(ITEM_FEATURES)}
    one_hot = np.stack(users.features.to_numpy())[:, :3]
    assert (one_hot.sum(1) == 1).all()
    assert dict(zip(items.item_id, items.domain))["5"] == f"d{5 % opts.domains}"


def test_rows_per_user_follow_activity_and_are_heavy_tailed(generated):
    _, opts, _, users, _, u, *_ = generated
    n = np.bincount(u, minlength=opts.users)
    a = users.activity.to_numpy()
    expected = 1 + (opts.rows - opts.users) * a / a.sum()
    assert np.abs(n - expected).max() < 1.5  # floor of a prefix sum, weights rounded to 1/1000
    top = np.sort(n)[::-1][: opts.users // 10].sum() / n.sum()
    assert top > 0.3  # Pareto(1.5) activity: the top 10% of users are far above their 10% share


def test_row_counts_stay_exact_across_prefix_sum_blocks(spark):
    o = SyntheticOptions(rows=15_000, users=10_000, items=50, domains=2, days=2, seed=4)  # 3 blocks of 4096 users
    counts = dict(load_source(spark, "synthetic", **asdict(o)).interactions.groupBy("user_id").count().collect())
    n = np.array([counts.get(str(k), 0) for k in range(o.users)])
    a = user_model(spark, o).orderBy("u").toPandas().activity.to_numpy()
    assert n.sum() == o.rows and n.min() >= 1
    assert np.abs(n - (1 + (o.rows - o.users) * a / a.sum())).max() < 1.5


def test_zipf_ranks_follow_the_bounded_power_law(spark):
    o = dict(rows=40_000, users=500, items=1_000, domains=1, days=3, seed=5)
    ranks = np.array([int(r[0]) for r in load_source(spark, "synthetic", **o).interactions.select("item_id").collect()])
    s, n, N = 1.1, o["items"], o["rows"]
    for k in (1, 10, 100):  # P(rank < k) for the continuous Zipf density ∝ (r + 1)^-s on [0, n)
        p = ((k + 1) ** (1 - s) - 1) / ((n + 1) ** (1 - s) - 1)
        assert abs((ranks < k).mean() - p) < 5 * math.sqrt(p * (1 - p) / N), k
    share = np.sort(np.bincount(ranks, minlength=n))[::-1][: n // 100].sum() / N
    assert share > 0.25  # top 1% of items (uniform popularity would give 1%)


def test_clicks_follow_the_planted_factors(generated):
    _, opts, rows, *_, x = generated
    click = rows.click.to_numpy()
    order = np.argsort(x)
    bottom, top = order[: len(x) // 10], order[-len(x) // 10:]
    assert click[top].mean() - click[bottom].mean() > 0.4
    for part in (bottom, top):  # empirical rate = the model's mean probability (binomial tolerance)
        p = _sigmoid(x[part] + opts.click_bias)
        assert abs(click[part].mean() - p.mean()) < 5 * math.sqrt(p.mean() * (1 - p.mean()) / len(part))


def test_long_views_and_likes_follow_clicks(generated):
    _, opts, rows, *_, x = generated
    click = rows.click.to_numpy() == 1
    for label, bias, penalty in (("long_view", opts.long_view_bias, 3.0), ("like", opts.like_bias, 5.0)):
        y = rows[label].to_numpy()
        for mask, shift in ((click, 0.0), (~click, penalty)):
            p = _sigmoid(x[mask] + bias - shift).mean()
            assert abs(y[mask].mean() - p) < 5 * math.sqrt(p * (1 - p) / mask.sum()), (label, shift)
        assert y[click].mean() > 3 * y[~click].mean()


def test_users_prefer_their_domain(generated):
    _, opts, rows, users, _, u, *_ = generated
    pref = users.pref_domain.to_numpy()[u]
    strength = users.pref_strength.to_numpy()[u]
    in_pref = rows.domain.to_numpy() == np.array([f"d{d}" for d in pref])
    p = strength + (1 - strength) / opts.domains  # chosen directly, or by the uniform draw
    assert abs(in_pref.mean() - p.mean()) < 5 * math.sqrt(p.mean() * (1 - p.mean()) / len(p))
    assert in_pref.mean() > 0.6


def test_written_contract_files_read_back_through_the_contract_flags(spark, tmp_path):
    o = dict(rows=2_000, users=100, items=50, domains=2, days=4, seed=9)
    files = write_synthetic(spark, str(tmp_path / "syn"), "csv", **o)
    parser = argparse.ArgumentParser()
    add_source_arguments(parser)
    back = load_source_from_args(spark, parser.parse_args(files.ingest_args()))
    direct = load_source(spark, "synthetic", **o)
    assert back.interactions.count() == 2_000 and back.labels == direct.labels
    assert back.user_feature_names == USER_FEATURES and back.item_feature_names == ITEM_FEATURES
    written = {r.user_id: list(r.features) for r in back.users.collect()}
    for r in direct.users.collect():
        assert written[r.user_id] == pytest.approx(list(r.features), rel=1e-6)
    clicks = lambda s: sorted((r.user_id, r.item_id, r.click) for r in s.interactions.collect())
    assert clicks(back) == [(u, i, str(c)) for u, i, c in clicks(direct)]


def test_bad_options_are_named(spark):
    with pytest.raises(SourceError, match="rows >= users"):
        load_source(spark, "synthetic", rows=10, users=20)
    with pytest.raises(SourceError, match="items >= domains"):
        load_source(spark, "synthetic", rows=10, users=2, items=3, domains=4)


def test_users_and_items_default_to_shares_of_rows():
    # 1M rows keep the former fixed defaults; 20,000 rows give 50 rows a user, not one
    assert (SyntheticOptions().users, SyntheticOptions().items) == (20_000, 5_000)
    assert (SyntheticOptions(rows=20_000).users, SyntheticOptions(rows=20_000).items) == (400, 100)
    tiny = SyntheticOptions(rows=10, domains=3)
    assert (tiny.users, tiny.items) == (1, 3)  # at least one user, and an item per domain
    assert SyntheticOptions(rows=20_000, users=7).users == 7  # given values win
