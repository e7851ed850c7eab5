"""Gate and expert utilisation of the expert models (MMoE, PLE, MGOE).

Mixture-of-experts models are known to collapse onto one expert, so every training epoch records,
per gate and expert: `mean_weight`, the gate's softmax weight on the expert averaged over the
epoch's examples, and `top1_share`, the share of examples whose largest weight is on it. Sums stay
on the device during the epoch (no sync per step) and are combined across DDP ranks at its end.
The trainer writes the rows to gates.parquet and prints `summarise` of the last epoch.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd
import torch

from training.distributed import DistContext, average_

GATE_COLUMNS = ["epoch", "gate", "expert", "mean_weight", "top1_share", "examples"]
COLLAPSE_WEIGHT = 0.9  # a gate giving one expert this much mean weight has (nearly) collapsed


class GateStats:
    """Accumulates one epoch of gate weights, (B, experts) per gate and step."""

    def __init__(self, gate_experts: Mapping[str, Sequence[str]], device: torch.device):
        self.gate_experts = {g: list(e) for g, e in gate_experts.items()}
        # per gate: [weight sums (n) | top-1 counts (n) | examples (1)]
        self.sums = {g: torch.zeros(2 * len(e) + 1, dtype=torch.float64, device=device)
                     for g, e in self.gate_experts.items()}

    def reset(self) -> None:
        """Zero the sums in place (a captured step keeps adding into these same tensors)."""
        for acc in self.sums.values():
            acc.zero_()

    def update(self, gates: Mapping[str, torch.Tensor]) -> None:
        for name, w in gates.items():
            if name not in self.sums:
                raise KeyError(f"gate {name!r} is not among the model's gates {sorted(self.sums)}")
            w = w.detach().to(torch.float64)
            n = w.shape[1]
            acc = self.sums[name]
            acc[:n] += w.sum(0)
            # one_hot, not bincount: bincount on CUDA syncs with the host to size its output,
            # which a captured training step cannot do.
            acc[n:2 * n] += torch.nn.functional.one_hot(w.argmax(1), n).sum(0).to(torch.float64)
            acc[2 * n] += w.shape[0]

    def frame(self, epoch: int, ctx: DistContext) -> pd.DataFrame:
        rows = []
        for gate, experts in self.gate_experts.items():
            acc = self.sums[gate].clone()
            average_(ctx, acc)  # means of sums: the ratios below are those of the global sums
            n, total = len(experts), float(acc[-1])
            for k, expert in enumerate(experts):
                rows.append({"epoch": epoch, "gate": gate, "expert": expert,
                             "mean_weight": float(acc[k]) / total if total else float("nan"),
                             "top1_share": float(acc[n + k]) / total if total else float("nan"),
                             "examples": int(round(total * ctx.world))})
        return pd.DataFrame(rows, columns=GATE_COLUMNS)


def summarise(gates: pd.DataFrame) -> str:
    """The last epoch's utilisation per gate, one line each, with a warning for collapsed gates."""
    if gates.empty:
        return ""
    last = gates[gates["epoch"] == gates["epoch"].max()]
    lines = [f"gate utilisation, epoch {int(last['epoch'].iloc[0]) + 1} (mean weight / top-1 share per expert):"]
    for gate, rows in last.groupby("gate", sort=False):
        cells = "  ".join(f"{r.expert} {r.mean_weight:.2f}/{r.top1_share:.0%}" for r in rows.itertuples())
        lines.append(f"  {gate}: {cells}")
        top = rows.loc[rows["mean_weight"].idxmax()]
        if top["mean_weight"] >= COLLAPSE_WEIGHT:
            lines.append(f"  warning: gate {gate} puts {top['mean_weight']:.0%} of its weight on {top['expert']} "
                         "(collapsed onto one expert)")
    return "\n".join(lines)
