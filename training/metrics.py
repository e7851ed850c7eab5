"""Ranking metrics per task per evaluation day, computed on the device in one pass
(docs/method.md §Evaluation).

AUC is the Mann-Whitney statistic from ranks with ties averaged: for a group with n+ positives
and n- negatives, AUC = (R+ - n+(n+ + 1)/2) / (n+ n-), R+ the positives' rank sum. `grouped_auc`
computes it for many groups at once from one sort. GAUC averages per-user AUC over users with
both classes that day, weighted by their impressions. A (task, day) with one class or fewer than
`min_rows` rows is n/a: NaN in the table, "n/a" in Markdown.

The cells can be weeks (starting on Monday) or calendar months instead of days, so that each holds
enough rows on a sparse log; the `date` column then holds the period's first day. `choose_period`
picks the finest period whose typical cell holds CELL_ROWS rows.
"""
from __future__ import annotations

import datetime as dt
import math
from typing import Sequence

import pandas as pd
import torch

from training.config import EvalPeriod

MIN_ROWS = 50
CELL_ROWS = 1000   # rows a typical cell should hold: the AUC's standard error is then ~0.01-0.02
METRIC_COLUMNS = ["model", "task", "date", "auc", "gauc", "logloss", "n", "users"]
EPOCH = dt.date(1970, 1, 1)


def grouped_auc(scores: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor,
                num_groups: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """AUC of every group (NaN where a group lacks a class), and its positive and negative counts.

    scores, labels (0/1), groups (ints in [0, num_groups)) are 1-D tensors of one length.
    """
    order = torch.argsort(scores, stable=True)
    order = order[torch.argsort(groups[order], stable=True)]  # by group, then by score
    g, s, y = groups[order], scores[order], labels[order].to(torch.float64)
    n = g.numel()
    sizes = torch.bincount(g, minlength=num_groups)
    starts = torch.cumsum(sizes, 0) - sizes
    rank = torch.arange(1, n + 1, device=g.device, dtype=torch.float64) - starts[g].to(torch.float64)
    new_run = torch.ones(n, dtype=torch.bool, device=g.device)
    if n > 1:
        new_run[1:] = (g[1:] != g[:-1]) | (s[1:] != s[:-1])
    run = torch.cumsum(new_run.long(), 0) - 1
    runs = int(run[-1]) + 1 if n else 0
    run_rank_sum = torch.zeros(runs, dtype=torch.float64, device=g.device).index_add_(0, run, rank)
    run_size = torch.bincount(run, minlength=runs).to(torch.float64)
    avg_rank = (run_rank_sum / run_size)[run]
    pos = torch.zeros(num_groups, dtype=torch.float64, device=g.device).index_add_(0, g, y)
    neg = sizes.to(torch.float64) - pos
    rank_sum = torch.zeros(num_groups, dtype=torch.float64, device=g.device).index_add_(0, g, avg_rank * y)
    auc = (rank_sum - pos * (pos + 1) / 2) / (pos * neg)
    auc = torch.where((pos > 0) & (neg > 0), auc, torch.full_like(auc, float("nan")))
    return auc, pos, neg


def _period_start(day: int, period: EvalPeriod) -> int:
    if period is EvalPeriod.WEEK:
        return day - (day + 3) % 7   # 1970-01-01 was a Thursday (weekday 3)
    if period is EvalPeriod.MONTH:
        return ((EPOCH + dt.timedelta(days=day)).replace(day=1) - EPOCH).days
    return day


def period_starts(days: torch.Tensor, period: EvalPeriod) -> torch.Tensor:
    """Each day (days since 1970-01-01) replaced by the first day of its period."""
    if period is EvalPeriod.DAY:
        return days
    values, inverse = torch.unique(days, return_inverse=True)
    starts = [_period_start(d, period) for d in values.cpu().tolist()]
    return torch.tensor(starts, dtype=days.dtype, device=days.device)[inverse]


def choose_period(days: torch.Tensor, period: EvalPeriod, cell_rows: int = CELL_ROWS) -> EvalPeriod:
    """`period`, or for AUTO the finest of day, week, month whose median cell holds `cell_rows` rows
    (month when none does)."""
    if period is not EvalPeriod.AUTO:
        return period
    for p in (EvalPeriod.DAY, EvalPeriod.WEEK):
        counts = torch.unique(period_starts(days, p), return_counts=True)[1]
        if len(counts) and float(counts.float().median()) >= cell_rows:
            return p
    return EvalPeriod.MONTH


def evaluate(probs: torch.Tensor, labels: torch.Tensor, users: torch.Tensor, days: torch.Tensor,
             tasks: Sequence[str], model: str, min_rows: int = MIN_ROWS,
             period: EvalPeriod = EvalPeriod.DAY) -> pd.DataFrame:
    """Per task per day (or week, or month: `period`): AUC, GAUC, log loss, row count and distinct
    users (columns METRIC_COLUMNS).

    probs, labels: (N, T); users, days: (N,) with days as days since 1970-01-01. All may live on the
    device; only the (cells x tasks) result is copied back.
    """
    days = period_starts(days, choose_period(days, period))
    day_values, day_idx = torch.unique(days, return_inverse=True)
    pair_values, pair_idx = torch.unique(torch.stack([day_idx, users]), dim=1, return_inverse=True)
    pair_day = pair_values[0]
    n_days, n_pairs = day_values.numel(), pair_values.shape[1]
    rows = torch.bincount(day_idx, minlength=n_days).to(torch.float64)
    pair_rows = torch.bincount(pair_idx, minlength=n_pairs).to(torch.float64)
    cell_users = torch.bincount(pair_day, minlength=n_days).cpu().tolist()
    eps = 1e-7
    out = []
    for t, task in enumerate(tasks):
        p, y = probs[:, t].to(torch.float64), labels[:, t].to(torch.float64)
        auc, pos, neg = grouped_auc(p, y, day_idx, n_days)
        user_auc, _, _ = grouped_auc(p, y, pair_idx, n_pairs)
        valid = ~torch.isnan(user_auc)
        w = torch.where(valid, pair_rows, torch.zeros_like(pair_rows))
        gauc_num = torch.zeros(n_days, dtype=torch.float64, device=p.device).index_add_(
            0, pair_day, torch.where(valid, user_auc, torch.zeros_like(user_auc)) * w)
        gauc_den = torch.zeros(n_days, dtype=torch.float64, device=p.device).index_add_(0, pair_day, w)
        gauc = gauc_num / gauc_den  # NaN where no user has both classes
        pc = p.clamp(eps, 1 - eps)
        ll_rows = -(y * torch.log(pc) + (1 - y) * torch.log1p(-pc))
        logloss = torch.zeros(n_days, dtype=torch.float64, device=p.device).index_add_(0, day_idx, ll_rows) / rows
        na = (rows < min_rows) | (pos == 0) | (neg == 0)
        nan = torch.full_like(auc, float("nan"))
        table = torch.stack([torch.where(na, nan, auc), torch.where(na, nan, gauc),
                             torch.where(na, nan, logloss), rows], dim=1).cpu()
        for d, (a, ga, ll, n), u in zip(day_values.cpu().tolist(), table.tolist(), cell_users):
            out.append({"model": model, "task": task, "date": EPOCH + dt.timedelta(days=int(d)),
                        "auc": a, "gauc": ga, "logloss": ll, "n": int(n), "users": int(u)})
    return pd.DataFrame(out, columns=METRIC_COLUMNS)


def format_value(v: float, digits: int = 4) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def to_markdown(metrics: pd.DataFrame) -> str:
    """The metrics table in Markdown, n/a cells spelled out."""
    lines = ["| model | task | date | AUC | GAUC | log loss | n | users |", "|---|---|---|---|---|---|---|---|"]
    for r in metrics.sort_values(["model", "task", "date"]).itertuples(index=False):
        lines.append(f"| {r.model} | {r.task} | {r.date} | {format_value(r.auc)} | {format_value(r.gauc)} | "
                     f"{format_value(r.logloss)} | {r.n} | {r.users} |")
    return "\n".join(lines) + "\n"
