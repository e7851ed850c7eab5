"""Validation after every epoch: the score that early stopping and `grec compare`'s model selection
read, and the best epoch's weights kept for the end of training.

The validation split is the period just before the evaluation period (the ETL's `split = "val"`
rows, whose edges the graph does not hold, like the evaluation rows'). Its score is the AUC over all
of its rows per task (one group, not per day: a single figure to compare epochs and configurations
by), averaged over the tasks. Evaluation rows are never read here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import pandas as pd
import torch
from torch import nn

from training.metrics import grouped_auc

CURVE_COLUMNS = ["epoch", "task", "auc", "logloss", "n"]


def validation_table(probs: torch.Tensor, labels: torch.Tensor, tasks: Sequence[str], epoch: int) -> pd.DataFrame:
    """One row per task (CURVE_COLUMNS): AUC and log loss over every validation row."""
    rows = []
    groups = torch.zeros(len(probs), dtype=torch.long, device=probs.device)
    for t, task in enumerate(tasks):
        p, y = probs[:, t].to(torch.float64), labels[:, t].to(torch.float64)
        auc = grouped_auc(p, y, groups, 1)[0] if len(p) else torch.full((1,), float("nan"))
        pc = p.clamp(1e-7, 1 - 1e-7)
        ll = -(y * torch.log(pc) + (1 - y) * torch.log1p(-pc)).mean() if len(p) else torch.tensor(float("nan"))
        rows.append({"epoch": epoch, "task": task, "auc": float(auc[0]), "logloss": float(ll), "n": len(p)})
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def score(table: pd.DataFrame) -> float:
    """The figure epochs and configurations are ranked by: mean validation AUC over tasks (NaN when
    no task has both classes)."""
    values = table["auc"].dropna()
    return float(values.mean()) if len(values) else float("nan")


@dataclass
class EarlyStopping:
    """Tracks the best validation score, keeps that epoch's weights (on the model's device: a copy,
    not a checkpoint on disk), and says when `patience` epochs passed without a better one
    (patience 0: never stop early; the best epoch is still restored)."""

    patience: int
    best_score: float = -math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    best_state: Optional[dict[str, torch.Tensor]] = field(default=None, repr=False)

    def update(self, epoch: int, value: float, model: nn.Module) -> bool:
        """Record one epoch's score; True when training should stop now."""
        if not math.isnan(value) and value > self.best_score:
            self.best_score, self.best_epoch, self.bad_epochs = value, epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return False
        self.bad_epochs += 1
        return self.patience > 0 and self.bad_epochs >= self.patience

    def restore(self, model: nn.Module) -> bool:
        """Load the best epoch's weights in place (tensors keep their addresses, so a captured step
        stays valid); False when no epoch scored."""
        if self.best_state is None:
            return False
        model.load_state_dict(self.best_state)
        return True

    def state_dict(self) -> dict:
        return {"best_score": self.best_score, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs,
                "best_state": ({k: v.cpu() for k, v in self.best_state.items()}
                               if self.best_state is not None else None)}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        self.best_score, self.best_epoch = state["best_score"], state["best_epoch"]
        self.bad_epochs = state["bad_epochs"]
        best = state["best_state"]
        self.best_state = {k: v.to(device) for k, v in best.items()} if best is not None else None
