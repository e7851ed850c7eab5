"""GradNorm loss balancing (Chen et al., ICML 2018), as E2E-GRec uses it for L_SSL vs L_LTR
(docs/method.md §GradNorm).

For losses L_i with weights w_i, on the last shared layer W only:

    G_i   = ||∇_W (w_i L_i)||_2 = w_i ||∇_W L_i||_2
    r_i   = (L_i / L_i(0)) / mean_j (L_j / L_j(0))          relative inverse training rate
    G*_i  = mean_j G_j * r_i^alpha                           target, detached
    L_grad = sum_i |G_i - G*_i|

L_grad is minimised over the weights only, by their own optimiser (Adam), once per step; then the
weights are renormalised to sum to the number of losses. The model itself is trained on
sum_i w_i L_i with the weights of the step (treated as constants). alpha is the paper's single
asymmetry hyper-parameter (default 1).

Because w_i is a scalar, ∇_W (w_i L_i) = w_i ∇_W L_i: the norms of ∇_W L_i are taken without a
second-order graph, which is exact for the weights' gradient (the only one L_grad produces).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch
from torch import nn

MIN_WEIGHT = 1e-4  # keeps a weight from reaching zero or below before renormalisation


@dataclass
class GradNormStep:
    """What one update saw and did, as device tensors (read them when logging: reading syncs)."""

    losses: torch.Tensor      # L_i
    grad_norms: torch.Tensor  # G_i, with the weights before the update
    raw_norms: torch.Tensor   # ||∇_W L_i||, unweighted
    targets: torch.Tensor     # G*_i
    grad_loss: torch.Tensor   # L_grad
    weights: torch.Tensor     # after the update and renormalisation


class GradNorm(nn.Module):
    initial_losses: torch.Tensor  # a buffer (register_buffer)

    def __init__(self, names: Sequence[str], initial: Sequence[float], alpha: float = 1.0, lr: float = 0.025,
                 capturable: bool = False):
        super().__init__()
        if len(names) < 2 or len(names) != len(initial):
            raise ValueError(f"GradNorm needs two or more losses with one initial weight each, got {names}, {initial}")
        self.names = list(names)
        self.alpha = alpha
        w = torch.tensor([float(v) for v in initial])
        self.weights = nn.Parameter(w * (len(w) / w.sum()))
        # capturable: the step count lives on the weights' device, so a CUDA graph can replay the update.
        self.optimizer = torch.optim.Adam([self.weights], lr=lr, capturable=capturable)
        # L_i(0); NaN until the first step (a buffer, so a resumed run keeps its reference losses).
        self.register_buffer("initial_losses", torch.full((len(w),), float("nan")))
        self._has_initial = False

    def combine(self, losses: Sequence[torch.Tensor]) -> torch.Tensor:
        """sum_i w_i L_i with the current weights as constants (a copy: the update must not touch it)."""
        w = self.weights.detach().clone()
        total = sum(w[i] * loss for i, loss in enumerate(losses))
        assert isinstance(total, torch.Tensor)  # two or more losses (__init__)
        return total

    def step(self, losses: Sequence[torch.Tensor], shared: torch.Tensor,
             reduce_grad: Optional[Callable[[torch.Tensor], None]] = None) -> GradNormStep:
        """Update the weights from this step's losses; call before backward of `combine(losses)`.

        `reduce_grad` averages the weights' gradient across ranks under DDP (in place), so every
        rank keeps identical weights.
        """
        current = torch.stack([loss.detach().float() for loss in losses]).to(self.weights.device)
        if not self._has_initial:
            if torch.isnan(self.initial_losses).any():
                self.initial_losses.copy_(current)
            self._has_initial = True
        raw_norms = []
        for loss in losses:
            (g,) = torch.autograd.grad(loss, shared, retain_graph=True, allow_unused=True)
            raw_norms.append(g.float().norm() if g is not None else torch.zeros((), device=current.device))
        raw = torch.stack(raw_norms).detach().to(self.weights.device)
        norms = self.weights * raw
        ratio = current / self.initial_losses.clamp_min(1e-12)
        target = (norms.mean() * (ratio / ratio.mean()) ** self.alpha).detach()
        grad_loss = (norms - target).abs().sum()
        self.optimizer.zero_grad(set_to_none=True)
        (self.weights.grad,) = torch.autograd.grad(grad_loss, self.weights)
        if reduce_grad is not None:
            reduce_grad(self.weights.grad)
        self.optimizer.step()
        with torch.no_grad():
            self.weights.clamp_(min=MIN_WEIGHT)
            self.weights.mul_(len(self.names) / self.weights.sum())
        return GradNormStep(current, norms.detach(), raw, target, grad_loss.detach(), self.weights.detach().clone())
