"""Model selection for `grec compare`: an equal-budget grid search per model, scored on the
validation period only.

Every model gets the same grid (the same number of configurations) and the same epoch cap with the
same early stopping; each configuration trains once (the first seed) and is scored by its best
validation AUC (training.validation). The evaluation split is not loaded by these runs
(`fit(..., evaluate=False)`), so nothing about the evaluation period can steer the choice.

    grid = Grid.parse(["lr=0.001,0.003", "weight_decay=0.00001,0.0001,0.001"])
    grid.points()   # 6 settings, each {("optim", "lr"): 0.001, ("optim", "weight_decay"): 1e-05}, ...
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from training.config import ConfigError, TrainConfig, field_path, parse_setting

Point = dict[tuple[str, str], Any]
# ID tables overfit a small log within a few epochs, so weight decay spans two decades
# (docs/evaluation.md: the MovieLens-100K choices fall across all three).
DEFAULT_GRID = ("lr=0.001,0.003", "weight_decay=0.00001,0.0001,0.001")
SELECTION_COLUMNS = ["model", "point", "val_auc", "best_epoch", "epochs_run", "train_seconds", "selected"]


@dataclass(frozen=True)
class Grid:
    """Settings to search: ((section, field), values) per axis; the points are their product."""

    axes: tuple[tuple[tuple[str, str], tuple[Any, ...]], ...]

    @classmethod
    def parse(cls, specs: Sequence[str]) -> "Grid":
        """From `name=v1,v2,...` texts (a flat flag name such as lr, or section.field)."""
        axes: list[tuple[tuple[str, str], tuple[Any, ...]]] = []
        for spec in specs:
            name, eq, values = spec.partition("=")
            parts = [v.strip() for v in values.split(",") if v.strip()]
            if not eq or not parts:
                raise ConfigError(f"--grid {spec!r}: expected name=v1,v2,... (e.g. lr=0.001,0.003)")
            path = field_path(name.strip())
            if any(p == path for p, _ in axes):
                raise ConfigError(f"--grid names {'.'.join(path)} twice")
            parsed = tuple(parse_setting(path, v) for v in parts)
            if len(set(parsed)) != len(parsed):
                raise ConfigError(f"--grid {spec!r} repeats a value")
            axes.append((path, parsed))
        return cls(tuple(axes))

    def points(self) -> list[Point]:
        if not self.axes:
            return [{}]
        paths = [p for p, _ in self.axes]
        return [dict(zip(paths, values)) for values in itertools.product(*(v for _, v in self.axes))]

    def __str__(self) -> str:
        if not self.axes:
            return "none (the flags' settings)"
        return " × ".join(f"{field}{{{', '.join(_text(v) for v in values)}}}" for (_, field), values in self.axes)


def _text(value: Any) -> str:
    return getattr(value, "value", None) or (f"{value:g}" if isinstance(value, float) else str(value))


def describe(point: Point) -> str:
    """`lr=0.001 weight_decay=0`, or `flags` for the empty point."""
    return " ".join(f"{field}={_text(v)}" for (_, field), v in point.items()) or "flags"


def folder(point: Point) -> str:
    return describe(point).replace(" ", "_").replace("=", "-") or "flags"


def apply(cfg: TrainConfig, point: Point) -> TrainConfig:
    """A copy of `cfg` with the point's settings."""
    out = TrainConfig.from_dict(cfg.to_dict())
    for (section, field), value in point.items():
        setattr(getattr(out, section), field, value)
    return out.validate()


def select(label: str, configs: Sequence[tuple[Point, TrainConfig]],
           fit_fn: Callable[[TrainConfig], Any]) -> tuple[Point, pd.DataFrame]:
    """Train every (point, config) without evaluation and keep the best validation score; returns
    the chosen point and one SELECTION_COLUMNS row per point. A single point is chosen untrained."""
    if len(configs) == 1:
        return configs[0][0], pd.DataFrame(columns=SELECTION_COLUMNS)
    rows = []
    for point, cfg in configs:
        result = fit_fn(cfg)
        epochs = int(result.validation["epoch"].nunique()) if result.validation is not None else 0
        rows.append({"model": label, "point": describe(point), "val_auc": result.best_score,
                     "best_epoch": (result.best_epoch + 1) if result.best_epoch is not None else None,
                     "epochs_run": epochs, "train_seconds": result.train_seconds, "selected": False})
    table = pd.DataFrame(rows, columns=SELECTION_COLUMNS)
    scores = table["val_auc"].fillna(-math.inf)
    best = int(scores.values.argmax())
    table.loc[best, "selected"] = True
    return configs[best][0], table


def search_folder(out: Path, model_folder: str, point: Point) -> Path:
    return out / "search" / model_folder / folder(point)
