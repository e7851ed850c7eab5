"""Comparison tables over seeds (docs/method.md §Evaluation): per model, task and period (day, week
or month) the mean and spread over seeds, the relative AUC lift over the baseline (as in the
E2E-GRec table), summaries over the evaluation periods, the paired lift with its confidence
interval, and training time.

Conventions:
- spread is the sample standard deviation over seeds (ddof = 1; n/a with one seed);
- a period that is n/a for any seed (one class, or under 50 rows) stays n/a in the mean;
- lift_pct = (AUC_mean / AUC_mean of the baseline - 1) * 100 on the same task and period: the lift
  of the seed means; n/a for the baseline itself;
- "over periods": each seed's metric averaged over the periods that have one, weighted by their
  rows (a short trailing week must not count as much as a full one), then mean ± std over seeds.
  A period with fewer than MIN_EVAL_USERS (50) distinct users is shown, marked †, but left out:
  its pooled AUC mostly ranks a few users' overall rates against each other (on MovieLens-100K a
  3-day week of 26 users, three of whom hold 573 of its 849 rows, put three models below 0.5 while
  their per-user AUC stayed above 0.7);
- paired lift: per seed s, lift_s = (AUC_s / baseline AUC_s - 1) * 100 on the seed's AUC over
  periods (both models trained with seed s); its mean and the 95% Student-t interval over seeds,
  mean ± t(0.975, n - 1) * std / sqrt(n). An interval that contains 0 is "inside the noise": the
  seeds do not tell the models apart.
"""
from __future__ import annotations

import math
from typing import Sequence

import pandas as pd
from scipy import stats

from schemas.split import MIN_EVAL_USERS
from training.metrics import format_value

METRICS = ("auc", "gauc", "logloss")
SEED_COLUMNS = ["model", "seed", "task", "date", "auc", "gauc", "logloss", "n", "users"]
TIMING_COLUMNS = ["model", "seed", "train_seconds", "pretrain_seconds", "eval_seconds", "examples_per_s",
                  "best_epoch"]
SUMMARY_COLUMNS = ["model", "task", "date", "n", "users", "seeds", "auc_mean", "auc_std", "gauc_mean", "gauc_std",
                   "logloss_mean", "logloss_std", "lift_pct"]
OVERALL_COLUMNS = ["model", "task", "days", "seeds", "auc_mean", "auc_std", "gauc_mean", "gauc_std",
                   "logloss_mean", "logloss_std", "lift_pct"]
PAIRED_COLUMNS = ["model", "task", "seeds", "lift_mean", "lift_low", "lift_high", "verdict"]
CONFIDENCE = 0.95
ABLATION_SEPARATOR = ":"   # "e2e_grec:no_gfae" is an ablation of e2e_grec


def _mean(v: pd.Series) -> float:
    return float(v.mean(skipna=False))


def _std(v: pd.Series) -> float:
    return float(v.std(ddof=1, skipna=False)) if len(v) > 1 else float("nan")


def _with_stats(per_seed: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    g = per_seed.groupby(keys, sort=True)
    out = g["seed"].nunique().rename("seeds").to_frame()
    for m in METRICS:
        out[f"{m}_mean"] = g[m].agg(_mean)
        out[f"{m}_std"] = g[m].agg(_std)
    return out.reset_index()


def _add_lift(table: pd.DataFrame, keys: list[str], baseline: str) -> pd.DataFrame:
    base = table[table["model"] == baseline][keys + ["auc_mean"]].rename(columns={"auc_mean": "_base"})
    if base.empty:
        raise ValueError(f"no results for the baseline {baseline!r}; models: {sorted(table['model'].unique())}")
    out = table.merge(base, on=keys, how="left")
    out["lift_pct"] = (out["auc_mean"] / out["_base"] - 1.0) * 100.0
    out.loc[out["model"] == baseline, "lift_pct"] = float("nan")
    return out.drop(columns="_base")


def summarise_days(per_seed: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """SUMMARY_COLUMNS: one row per model, task and evaluation day."""
    table = _with_stats(per_seed, ["model", "task", "date"])
    n = per_seed.groupby(["model", "task", "date"], sort=True)[["n", "users"]].max().reset_index()
    table = table.merge(n, on=["model", "task", "date"])
    return _add_lift(table, ["task", "date"], baseline)[SUMMARY_COLUMNS]


def over_periods(per_seed: pd.DataFrame, metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """Per (model, task, seed): each metric's row-weighted mean over the periods that have one and
    enough users, and `days`, the number of such periods."""
    keys = ["model", "task", "seed"]
    out = per_seed[keys].drop_duplicates().sort_values(keys).set_index(keys)
    per_seed = per_seed[per_seed["users"] >= MIN_EVAL_USERS]
    for m in metrics:
        have = per_seed[per_seed[m].notna()]
        weighted = (have[m] * have["n"]).groupby([have[k] for k in keys]).sum()
        out[m] = weighted / have.groupby(keys)["n"].sum()
    out["days"] = per_seed.groupby(keys)["auc"].count()
    out["days"] = out["days"].fillna(0).astype(int)
    return out.reset_index()


def summarise_overall(per_seed: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """OVERALL_COLUMNS: one row per model and task, each seed's metrics averaged over its periods
    (row-weighted)."""
    per = over_periods(per_seed)
    table = _with_stats(per, ["model", "task"])
    days = per.groupby(["model", "task"], sort=True)["days"].min().reset_index()
    table = table.merge(days, on=["model", "task"])
    return _add_lift(table, ["task"], baseline)[OVERALL_COLUMNS]


def paired_lift(per_seed: pd.DataFrame, baseline: str, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """PAIRED_COLUMNS: per model (other than the baseline) and task, the mean paired lift over the
    seeds both ran and its `confidence` t-interval (see the module doc)."""
    per = over_periods(per_seed, ("auc",))[["model", "task", "seed", "auc"]]
    base = per[per["model"] == baseline].rename(columns={"auc": "_base"}).drop(columns="model")
    rows = []
    for (model, task), g in per[per["model"] != baseline].groupby(["model", "task"], sort=True):
        lifts = (g.merge(base, on=["task", "seed"]).eval("(auc / _base - 1) * 100")).dropna()
        n = len(lifts)
        mean = float(lifts.mean()) if n else float("nan")
        if n > 1:
            half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * lifts.std(ddof=1) / math.sqrt(n))
            low, high = mean - half, mean + half
            verdict = "inside the noise" if low <= 0 <= high else ("better" if low > 0 else "worse")
        else:
            low = high = float("nan")
            verdict = "one seed: no interval"
        rows.append({"model": model, "task": task, "seeds": n, "lift_mean": mean, "lift_low": low,
                     "lift_high": high, "verdict": verdict})
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)


def summarise_timing(timing: pd.DataFrame) -> pd.DataFrame:
    """Per model: mean and std over seeds of each timing column."""
    g = timing.groupby("model", sort=False)
    out = pd.DataFrame({"seeds": g["seed"].nunique()})
    for c in TIMING_COLUMNS[2:-1]:
        out[f"{c}_mean"] = g[c].agg(_mean)
        out[f"{c}_std"] = g[c].agg(_std)
    out["best_epochs"] = g["best_epoch"].agg(lambda v: ", ".join("-" if pd.isna(x) else str(int(x)) for x in v))
    return out.reset_index()


def is_ablation(model: str) -> bool:
    return ABLATION_SEPARATOR in model


def _pm(mean: float, std: float, digits: int = 4) -> str:
    if isinstance(mean, float) and math.isnan(mean):
        return "n/a"
    return format_value(mean, digits) + ("" if math.isnan(std) else f" ± {format_value(std, digits)}")


def _lift(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{v:+.2f}%"


def _ordered(models: Sequence[str], baseline: str) -> list[str]:
    return [baseline] + [m for m in models if m != baseline] if baseline in models else list(models)


def _day_tables(days: pd.DataFrame, overall: pd.DataFrame, models: Sequence[str], baseline: str) -> list[str]:
    """Per task: AUC mean ± std per period (and over periods), then the lift per period, models as rows."""
    lines = []
    for task in sorted(days["task"].unique()):
        d = days[(days["task"] == task) & days["model"].isin(models)]
        o = overall[(overall["task"] == task)].set_index("model")
        dates = sorted(d["date"].unique())
        size = d.groupby("date")[["n", "users"]].max()
        few = {x for x in dates if size.loc[x, "users"] < MIN_EVAL_USERS}
        head = "| model | " + " | ".join(f"{x}{' †' if x in few else ''}" for x in dates) + " | over periods |"
        rule = "|---" * (len(dates) + 2) + "|"
        counts = ("| rows / users | " + " | ".join(f"{size.loc[x, 'n']:,} / {size.loc[x, 'users']:,}" for x in dates)
                  + " | † left out: under " + f"{MIN_EVAL_USERS} users |")
        cell = {(r.model, r.date): r for r in d.itertuples()}
        auc = [f"### {task}: AUC (mean ± std over seeds)", "", head, rule, counts]
        lift = ["", f"### {task}: relative AUC lift vs {baseline}", "", head, rule]
        for m in _ordered(models, baseline):
            if m not in o.index:
                continue
            auc.append(f"| {m} | " + " | ".join(_pm(cell[m, x].auc_mean, cell[m, x].auc_std) if (m, x) in cell
                                                 else "n/a" for x in dates)
                       + f" | {_pm(o.loc[m, 'auc_mean'], o.loc[m, 'auc_std'])} |")
            if m != baseline:
                lift.append(f"| {m} | " + " | ".join(_lift(cell[m, x].lift_pct) if (m, x) in cell else "n/a"
                                                      for x in dates) + f" | {_lift(o.loc[m, 'lift_pct'])} |")
        lines += auc + lift + [""]
    return lines


def _overall_table(overall: pd.DataFrame, models: Sequence[str], baseline: str) -> list[str]:
    lines = [f"| model | task | days | AUC | GAUC | log loss | AUC lift vs {baseline} |",
             "|---|---|---|---|---|---|---|"]
    o = overall[overall["model"].isin(models)]
    for m in _ordered(models, baseline):
        for r in o[o["model"] == m].sort_values("task").itertuples():
            lift = "baseline" if m == baseline else _lift(r.lift_pct)
            lines.append(f"| {m} | {r.task} | {r.days} | {_pm(r.auc_mean, r.auc_std)} | "
                         f"{_pm(r.gauc_mean, r.gauc_std)} | {_pm(r.logloss_mean, r.logloss_std)} | {lift} |")
    return lines


def _timing_table(timing: pd.DataFrame) -> list[str]:
    lines = ["| model | seeds | train s | pretrain s | eval s | examples/s | best epoch per seed |",
             "|---|---|---|---|---|---|---|"]
    for r in summarise_timing(timing).itertuples():
        lines.append(f"| {r.model} | {r.seeds} | {_pm(r.train_seconds_mean, r.train_seconds_std, 1)} | "
                     f"{_pm(r.pretrain_seconds_mean, r.pretrain_seconds_std, 1)} | "
                     f"{_pm(r.eval_seconds_mean, r.eval_seconds_std, 1)} | {r.examples_per_s_mean:,.0f} | "
                     f"{r.best_epochs} |")
    return lines


def _paired_table(paired: pd.DataFrame, models: Sequence[str], baseline: str) -> list[str]:
    lines = [f"| model | task | seeds | paired lift vs {baseline} | 95% interval | verdict |",
             "|---|---|---|---|---|---|"]
    p = paired[paired["model"].isin(models)]
    for m in models:
        for r in p[p["model"] == m].sort_values("task").itertuples():
            interval = "n/a" if math.isnan(r.lift_low) else f"[{r.lift_low:+.2f}%, {r.lift_high:+.2f}%]"
            lines.append(f"| {m} | {r.task} | {r.seeds} | {_lift(r.lift_mean)} | {interval} | {r.verdict} |")
    return lines


def _selection_table(selection: pd.DataFrame) -> list[str]:
    lines = ["| model | setting | validation AUC | best epoch | epochs run | chosen |", "|---|---|---|---|---|---|"]
    for r in selection.itertuples():
        best = "-" if pd.isna(r.best_epoch) else int(r.best_epoch)
        lines.append(f"| {r.model} | {r.point} | {format_value(r.val_auc)} | {best} | {r.epochs_run} | "
                     f"{'**yes**' if r.selected else ''} |")
    return lines


def comparison_markdown(days: pd.DataFrame, overall: pd.DataFrame, timing: pd.DataFrame, baseline: str,
                        title: str, paired: pd.DataFrame = pd.DataFrame(columns=PAIRED_COLUMNS),
                        protocol: Sequence[str] = (), selection: pd.DataFrame = pd.DataFrame()) -> str:
    """The whole report: protocol, main comparison, summary, paired lifts, timing, the selection
    runs and (when run) the E2E-GRec ablations."""
    models = list(dict.fromkeys(timing["model"]))
    main = [m for m in models if not is_ablation(m)]
    ablations = [m for m in models if is_ablation(m)]
    seeds = int(timing.groupby("model")["seed"].nunique().max())
    lines = [f"# {title}", "", f"Mean ± sample std over {seeds} seed(s); lift = AUC mean / {baseline}'s - 1; "
             "n/a: a period with one class or under 50 rows.", ""]
    if protocol:
        lines += ["## Protocol", ""] + list(protocol) + [""]
    lines += ["## AUC per task and period", ""]
    lines += _day_tables(days, overall, main, baseline)
    lines += ["## Summary over the evaluation periods", ""] + _overall_table(overall, main, baseline) + [""]
    lines += [f"## Paired lift vs {baseline} over seeds", ""] + _paired_table(paired, main, baseline) + [""]
    lines += ["## Training time per model", ""] + _timing_table(timing) + [""]
    if len(selection):
        lines += ["## Selection runs (validation split only)", ""] + _selection_table(selection) + [""]
    if ablations:
        group = _ordered([m for m in (baseline, "e2e_grec") if m in models] + ablations, baseline)
        lines += ["## E2E-GRec ablations", ""] + _day_tables(days, overall, group, baseline)
        lines += ["### Ablations: summary over the evaluation periods", ""] + _overall_table(overall, group, baseline)
        lines += ["", "### Ablations: paired lift", ""] + _paired_table(paired, group, baseline)
        lines += [""]
    return "\n".join(lines)

