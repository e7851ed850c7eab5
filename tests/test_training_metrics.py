"""AUC, GAUC, log loss and the n/a rules against brute-force computations written here."""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
import torch

from training.metrics import evaluate, grouped_auc, to_markdown


def pair_auc(scores, labels) -> float:
    """Brute force: fraction of (positive, negative) pairs ordered correctly, ties count 1/2."""
    pos = [s for s, y in zip(scores, labels) if y == 1]
    neg = [s for s, y in zip(scores, labels) if y == 0]
    if not pos or not neg:
        return math.nan
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_grouped_auc_matches_pair_counting_with_ties():
    rng = np.random.default_rng(0)
    n = 400
    scores = np.round(rng.random(n), 1)  # many ties
    labels = (rng.random(n) < 0.4).astype(int)
    groups = rng.integers(0, 5, n)
    labels[groups == 4] = 1  # a single-class group
    auc, pos, neg = grouped_auc(torch.tensor(scores), torch.tensor(labels), torch.tensor(groups), 6)
    for g in range(6):
        m = groups == g
        expected = pair_auc(scores[m], labels[m])
        if math.isnan(expected):
            assert math.isnan(float(auc[g]))
        else:
            assert float(auc[g]) == pytest.approx(expected, abs=1e-12)
        assert int(pos[g]) == labels[m].sum() and int(neg[g]) == (1 - labels[m]).sum()


def brute_force_day(p, y, users):
    auc = pair_auc(p, y)
    num = den = 0.0
    for u in sorted(set(users)):
        m = users == u
        a = pair_auc(p[m], y[m])
        if not math.isnan(a):
            num += a * m.sum()
            den += m.sum()
    gauc = num / den if den else math.nan
    pc = np.clip(p, 1e-7, 1 - 1e-7)
    logloss = float(np.mean(-(y * np.log(pc) + (1 - y) * np.log(1 - pc))))
    return auc, gauc, logloss


def test_evaluate_per_task_per_day_with_na_rules():
    rng = np.random.default_rng(1)
    days = np.array([100] * 120 + [101] * 30 + [102] * 80)  # day 101: under 50 rows
    n = len(days)
    users = rng.integers(0, 12, n)
    probs = rng.random((n, 2))
    labels = (rng.random((n, 2)) < probs).astype(float)
    labels[days == 102, 1] = 0.0  # task b has one class on day 102
    m = evaluate(torch.tensor(probs), torch.tensor(labels), torch.tensor(users), torch.tensor(days), ["a", "b"],
                 "m1")
    assert list(m.columns) == ["model", "task", "date", "auc", "gauc", "logloss", "n", "users"]
    assert len(m) == 6
    for r in m.itertuples():
        d = (r.date - dt.date(1970, 1, 1)).days
        t = ["a", "b"].index(r.task)
        sel = days == d
        assert r.n == sel.sum() and r.users == len(set(users[sel].tolist()))
        if d == 101 or (d == 102 and r.task == "b"):
            assert math.isnan(r.auc) and math.isnan(r.gauc) and math.isnan(r.logloss)
            continue
        auc, gauc, ll = brute_force_day(probs[sel, t], labels[sel, t], users[sel])
        assert r.auc == pytest.approx(auc, abs=1e-12)
        assert r.gauc == pytest.approx(gauc, abs=1e-12)
        assert r.logloss == pytest.approx(ll, rel=1e-9)
    md = to_markdown(m)
    assert md.count("n/a") == 3 * 3 and "nan" not in md.lower()
