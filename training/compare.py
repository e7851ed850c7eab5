"""`grec compare`: select, train and evaluate several models over several seeds on one pinned
snapshot, under one protocol (docs/evaluation.md).

    grec compare --lake lake --run r1 --models ltr,two_stage,e2e_grec,mgoe --seeds 3 --epochs 20 --out cmp
    grec compare --lake lake --run r1 --models ltr,e2e_grec --ablations --seeds 3 --out cmp_ablations
    grec compare --lake lake --version 7 --models ltr,e2e_grec:no_gfae,e2e_grec:graphsage --seeds 2 --out cmp

A model is a name (ltr, two_stage, e2e_grec, shared_bottom, mmoe, ple, mgoe) or an E2E-GRec ablation
`e2e_grec:<ablation>` with ablation no_gfae (L_LTR alone), fixed_weights (no GradNorm),
bottom_only (no attention fusion) or graphsage (GraphSAGE encoder); --ablations adds all four. The
variant `e2e_grec:warm_start` starts the ID table from the two-stage BPR pretraining (--warm-start).
Every training flag of `grec train` applies to every model (e.g. --epochs 20 --batch-size 4096);
seeds are --seed, --seed + 1, ... The snapshot is resolved once and pinned by version for every
run. The protocol:

1. selection: every model trains each point of the same --grid (default: lr x weight_decay, 6
   points) once, with the first seed, up to --epochs with early stopping (--patience) on the
   validation split; the point with the best validation AUC is chosen. These runs never load the
   evaluation split. A one-point grid skips the search.
2. evaluation: the chosen point trains once per seed (early stopping again) and is scored on the
   evaluation split, once.
3. report: mean ± std over seeds, the lift of the means, and the paired lift per seed with its 95%
   t-interval, which says when a difference is inside the noise. An evaluation below the minimum
   size (schemas.split) is flagged at the top.

Writes to --out:

    comparison.parquet          per model, task and day: AUC/GAUC/log loss mean and std over seeds, lift
    comparison.md               AUC ± std per task and day, lift vs the baseline, summaries, timing,
                                and the ablation table when ablations ran
    auc_by_day.png              mean AUC per day per model, ± std as error bars
    lift_by_day.png             AUC lift per day of each model over the baseline, in percent
    comparison_seeds.parquet    every seed's metrics;  comparison_timing.parquet  every run's timing
    comparison_paired.parquet   paired lift per model and task with its interval
    selection.parquet           every grid point's validation AUC and best epoch, the chosen one marked
    runs/<model>/seed<s>/       each run's own outputs (metrics, validation, train_log, gates, run.json,
                                checkpoint);  search/<model>/<point>/  the selection runs' outputs

and, with --tracking, logs one MLflow parent run holding the tables and plots, with every training
run (selection and evaluation) as its child (training.tracking).
"""
from __future__ import annotations

import argparse
import enum
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import pandas as pd

from schemas.contract import EXIT_INPUT
from training.comparison_tables import (SEED_COLUMNS, TIMING_COLUMNS, comparison_markdown, paired_lift, summarise_days,
                                 summarise_overall)
from training.cli import command_main
from training.config import (ConfigError, EncoderKind, FusionKind, LossWeighting, ModelName, TrainConfig,
                             add_config_arguments, config_from_args)
from training.data.arrow_columns import ColumnError
from training.data.loader import resolve_training_snapshots, split_files
from training.data.snapshot import SnapshotError
from training.models import required_side_inputs
from training.report import lift_by_day_figure, plot_auc_by_day, warning_banner
from training.selection import DEFAULT_GRID, Grid, Point, apply, describe, search_folder, select
from training.tracking import TrackingError, compare_params, log_comparison, tracked
from training.train import TrainingError, describe_snapshots, fit

BASELINE = ModelName.LTR.value


class Ablation(str, enum.Enum):
    NO_GFAE = "no_gfae"
    FIXED_WEIGHTS = "fixed_weights"
    BOTTOM_ONLY = "bottom_only"
    GRAPHSAGE = "graphsage"
    WARM_START = "warm_start"   # a variant, not one of the paper's ablations: --ablations leaves it out


PAPER_ABLATIONS = (Ablation.NO_GFAE, Ablation.FIXED_WEIGHTS, Ablation.BOTTOM_ONLY, Ablation.GRAPHSAGE)


# The E2E-GRec ablations (docs/method.md §Ablations) as config switches: (section, field) -> value.
ABLATION_SETTINGS: dict[Ablation, dict[tuple[str, str], Any]] = {
    Ablation.NO_GFAE: {("model", "gfae"): False, ("optim", "loss_weighting"): LossWeighting.FIXED},
    Ablation.FIXED_WEIGHTS: {("optim", "loss_weighting"): LossWeighting.FIXED},
    Ablation.BOTTOM_ONLY: {("model", "fusion"): FusionKind.BOTTOM_ONLY},
    Ablation.GRAPHSAGE: {("model", "encoder"): EncoderKind.GRAPHSAGE},
    Ablation.WARM_START: {("model", "warm_start"): True},
}


@dataclass(frozen=True)
class ModelSpec:
    """One entry of --models: a model and, for e2e_grec, an optional ablation."""

    model: ModelName
    ablation: Optional[Ablation] = None

    @property
    def label(self) -> str:
        return self.model.value + (f":{self.ablation.value}" if self.ablation else "")

    @property
    def folder(self) -> str:
        return self.label.replace(":", "-")

    @classmethod
    def parse(cls, text: str) -> "ModelSpec":
        name, _, ablation = text.strip().partition(":")
        try:
            model = ModelName(name)
        except ValueError:
            raise ConfigError(f"--models: unknown model {name!r}; models: {', '.join(m.value for m in ModelName)}") \
                from None
        if not ablation:
            return cls(model)
        if model is not ModelName.E2E_GREC:
            raise ConfigError(f"--models: {text!r}: ablations apply to e2e_grec only")
        try:
            return cls(model, Ablation(ablation))
        except ValueError:
            raise ConfigError(f"--models: unknown ablation {ablation!r}; ablations: "
                              f"{', '.join(a.value for a in Ablation)}") from None

    def config(self, base: TrainConfig, seed: int, out: Path) -> TrainConfig:
        cfg = TrainConfig.from_dict(base.to_dict())
        cfg.model.name = self.model
        settings = ABLATION_SETTINGS.get(self.ablation, {}) if self.ablation is not None else {}
        for (section, name), value in settings.items():
            setattr(getattr(cfg, section), name, value)
        cfg.run.seed, cfg.run.label, cfg.run.out = seed, self.label, str(out)
        return cfg.validate()


def parse_models(text: str, ablations: bool) -> list[ModelSpec]:
    """--models (comma list) plus, with --ablations, every E2E-GRec ablation; duplicates refused."""
    specs = [ModelSpec.parse(t) for t in text.split(",") if t.strip()]
    if ablations:
        specs += [ModelSpec(ModelName.E2E_GREC, a) for a in PAPER_ABLATIONS
                  if ModelSpec(ModelName.E2E_GREC, a) not in specs]
    labels = [s.label for s in specs]
    twice = sorted({x for x in labels if labels.count(x) > 1})
    if twice:
        raise ConfigError(f"--models names {twice} twice")
    if not specs:
        raise ConfigError("--models is empty")
    return specs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", required=True,
                        help="comma list of models and e2e_grec:<ablation> variants, e.g. ltr,two_stage,e2e_grec,mgoe")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per model: --seed, --seed + 1, ... (default 3)")
    parser.add_argument("--ablations", action="store_true",
                        help="add every E2E-GRec ablation (no_gfae, fixed_weights, bottom_only, graphsage)")
    parser.add_argument("--baseline", default=BASELINE, help="the model lifts are relative to (default ltr)")
    parser.add_argument("--grid", action="append", metavar="NAME=V1,V2",
                        help="a setting to select on the validation split, repeatable (e.g. --grid lr=0.001,0.003 "
                             f"--grid dropout=0,0.1); default: {' '.join('--grid ' + g for g in DEFAULT_GRID)}")
    add_config_arguments(parser)


def pin_snapshot(base: TrainConfig, specs: Sequence[ModelSpec]) -> tuple[TrainConfig, str, bool]:
    """The base config with the examples, nodes (and macro) versions fixed, the snapshot line, and
    whether the examples have a validation split."""
    with_macro = any("macro" in required_side_inputs(s.model) for s in specs)
    snaps = resolve_training_snapshots(base.data, with_macro=with_macro)
    pinned = TrainConfig.from_dict(base.to_dict())
    d = pinned.data
    d.run, d.timestamp, d.version, d.nodes_version = None, None, snaps.examples.version, snaps.nodes.version
    if snaps.macro is not None:
        d.macro_version = snaps.macro.version
    return pinned, describe_snapshots(snaps), bool(split_files(snaps.examples, base.data.val_split, required=False))


@dataclass
class Comparison:
    per_seed: pd.DataFrame   # SEED_COLUMNS
    timing: pd.DataFrame     # TIMING_COLUMNS
    days: pd.DataFrame       # SUMMARY_COLUMNS
    overall: pd.DataFrame    # OVERALL_COLUMNS
    snapshot: str
    paired: pd.DataFrame = field(default_factory=pd.DataFrame)     # PAIRED_COLUMNS
    selection: pd.DataFrame = field(default_factory=pd.DataFrame)  # training.selection.SELECTION_COLUMNS
    protocol: list[str] = field(default_factory=list)              # lines describing grid, budget, choices
    warnings: tuple[str, ...] = ()
    snapshots: dict = field(default_factory=dict)  # the pinned tables every run read (TrainResult.snapshots)


def compare(base: TrainConfig, specs: Sequence[ModelSpec], seeds: int, out: Path, baseline: str,
            grid: Grid = Grid(()), parent_run: Optional[str] = None) -> Comparison:
    """Select, train and evaluate every spec on one pinned snapshot and summarise (see the module doc).
    Every training run is tracked as a child of the MLflow run `parent_run` when given."""
    pinned, snapshot, has_val = pin_snapshot(base, specs)
    points = grid.points()
    if len(points) > 1 and not has_val:
        raise ConfigError(f"--grid needs a validation split ({base.data.val_split!r} rows) to select on, and the "
                          "examples have none: rebuild them with a validation period (--val-fraction), or give a "
                          "one-point grid")
    print(f"grec compare: {snapshot}", flush=True)
    chosen: dict[str, Point] = {}
    selections = []
    for spec in specs:
        configs = [(p, apply(spec.config(pinned, base.run.seed, search_folder(out, spec.folder, p)), p))
                   for p in points]

        def search_fit(cfg: TrainConfig, label: str = spec.label) -> Any:
            print(f"[select {label}] {cfg.run.out}", flush=True)
            return fit(cfg, evaluate=False, parent_run=parent_run)

        chosen[spec.label], table = select(spec.label, configs, search_fit)
        selections.append(table)
    metrics, timing, warnings = [], [], []
    snapshots: dict = {}
    runs = [(s, base.run.seed + k) for s in specs for k in range(seeds)]
    for i, (spec, seed) in enumerate(runs, start=1):
        print(f"[{i}/{len(runs)}] {spec.label} seed {seed} ({describe(chosen[spec.label])})", flush=True)
        cfg = apply(spec.config(pinned, seed, out / "runs" / spec.folder / f"seed{seed}"), chosen[spec.label])
        result = fit(cfg, parent_run=parent_run)
        warnings += [w for w in result.warnings if w not in warnings]
        metrics.append(result.metrics.assign(seed=seed))
        snapshots = result.snapshots
        timing.append({"model": spec.label, "seed": seed, "train_seconds": result.train_seconds,
                       "pretrain_seconds": result.pretrain_seconds, "eval_seconds": result.eval_seconds,
                       "examples_per_s": result.examples_per_s,
                       "best_epoch": (result.best_epoch + 1) if result.best_epoch is not None else None})
    per_seed = pd.concat(metrics, ignore_index=True)[SEED_COLUMNS]
    timing_df = pd.DataFrame(timing, columns=TIMING_COLUMNS)
    searched = [t for t in selections if len(t)]
    selection = pd.concat(searched, ignore_index=True) if searched else pd.DataFrame()
    protocol = protocol_lines(base, grid, has_val, seeds, chosen)
    return Comparison(per_seed, timing_df, summarise_days(per_seed, baseline), summarise_overall(per_seed, baseline),
                      snapshot, paired_lift(per_seed, baseline), selection, protocol, tuple(warnings), snapshots)


def protocol_lines(base: TrainConfig, grid: Grid, has_val: bool, seeds: int, chosen: dict[str, Point]) -> list[str]:
    """How the comparison was run, for the report: grid, budget, stopping, choices."""
    r = base.run
    points = len(grid.points())
    stopping = (f"early stopping on the validation split (patience {r.patience}), best epoch restored" if has_val
                else "no validation split: every run trains all epochs")
    lines = [f"- grid: {grid} ({points} point{'s' if points > 1 else ''} per model, trained once with seed "
             f"{r.seed}, scored by validation AUC)" if points > 1 else f"- no search: {describe(grid.points()[0])}",
             f"- budget per model: {points} selection run(s) + {seeds} seeds, each up to {r.epochs} epochs; {stopping}",
             "- the evaluation split is read once per seed, by the chosen setting", "", "| model | chosen setting |",
             "|---|---|"]
    lines += [f"| {m} | {describe(p)} |" for m, p in chosen.items()]
    return lines


def comparison_paths(out: Path) -> dict[str, Path]:
    """Where a comparison's outputs live under `out` (see the module doc): parquet (per period),
    markdown, plot, seeds (per seed), timing, paired lifts and the selection runs."""
    return {"parquet": out / "comparison.parquet", "markdown": out / "comparison.md", "plot": out / "auc_by_day.png",
            "lift_plot": out / "lift_by_day.png",
            "seeds": out / "comparison_seeds.parquet", "timing": out / "comparison_timing.parquet",
            "paired": out / "comparison_paired.parquet", "selection": out / "selection.parquet"}


def write_comparison(result: Comparison, out: Path, baseline: str) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = comparison_paths(out)
    result.days.to_parquet(paths["parquet"], index=False)
    result.per_seed.to_parquet(paths["seeds"], index=False)
    result.timing.to_parquet(paths["timing"], index=False)
    result.paired.to_parquet(paths["paired"], index=False)
    if len(result.selection):
        result.selection.to_parquet(paths["selection"], index=False)
    title = f"Model comparison on {result.snapshot.removeprefix('snapshot: ')}"
    paths["markdown"].write_text(warning_banner(result.warnings) + comparison_markdown(
        result.days, result.overall, result.timing, baseline, title, result.paired, result.protocol,
        result.selection))
    plot_auc_by_day(result.days.rename(columns={"auc_mean": "auc"}), paths["plot"], spread="auc_std")
    lift_by_day_figure(result.days, baseline).savefig(paths["lift_plot"], dpi=100)
    return paths


def run(args: argparse.Namespace) -> int:
    given = vars(args)
    try:
        models_from, in_process = "models come from --models", "it trains every model in this process"
        for dest, flag, why in (("model.name", "--model", models_from), ("run.label", "--label", models_from),
                                ("run.resume", "--resume", models_from), ("run.launcher", "--launcher", in_process),
                                ("run.num_processes", "--num-processes", in_process)):
            if dest in given:
                raise ConfigError(f"{flag} does not apply to grec compare ({why})")
        if args.seeds < 1:
            raise ConfigError(f"--seeds must be >= 1, got {args.seeds}")
        specs = parse_models(args.models, args.ablations)
        if args.baseline not in [s.label for s in specs]:
            raise ConfigError(f"--baseline {args.baseline} is not among --models "
                              f"({', '.join(s.label for s in specs)}); lifts are relative to it")
        base = config_from_args(args)
        grid = Grid.parse(args.grid if args.grid is not None else DEFAULT_GRID)
        out = Path(base.run.out)
        labels = [s.label for s in specs]
        with tracked(base.run, f"compare {','.join(labels)}", {"grec.command": "compare",
                                                               "grec.out": str(out.resolve())}) as parent:
            if parent is not None:
                parent.log_params(compare_params(labels, args.seeds, args.baseline, str(grid)))
            result = compare(base, specs, args.seeds, out, args.baseline, grid,
                             parent_run=parent.run_id if parent is not None else None)
            paths = write_comparison(result, out, args.baseline)
            if parent is not None:
                log_comparison(parent, base, result, paths)
    except (ConfigError, SnapshotError, ColumnError, TrainingError, TrackingError) as e:
        print(f"grec compare: error: {e}", file=sys.stderr)
        return EXIT_INPUT
    for w in result.warnings:
        print(f"grec compare: WARNING: {w}", file=sys.stderr)
    print(paths["markdown"].read_text())
    print(f"results in {out}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return command_main("grec compare", __doc__, add_arguments, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
