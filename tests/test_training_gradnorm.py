"""GradNorm against hand-computed steps.

Shared layer W in R^2 and two losses linear in W, so their gradients are constant:
L_1 = 3 W_0 + 4 W_1 + 3  (||∇L_1|| = 5),   L_2 = W_1 + 1  (||∇L_2|| = 1).
"""
from __future__ import annotations

import pytest
import torch

from training.gradnorm import GradNorm

torch.set_num_threads(1)


def losses(w: torch.Tensor) -> list[torch.Tensor]:
    return [3 * w[0] + 4 * w[1] + 3, w[1] + 1]


def test_gradnorm_two_hand_computed_steps():
    gn = GradNorm(["ssl", "ltr"], [1.0, 1.0], alpha=1.0, lr=0.025)
    w = torch.nn.Parameter(torch.tensor([1.0, 1.0]))

    # Step 1: L = (10, 2) = L(0), so r = (1, 1). G = (1*5, 1*1) = (5, 1), mean 3, targets (3, 3).
    # L_grad = |5-3| + |1-3| = 4. dL_grad/dw = (sign(2)*5, sign(-2)*1) = (5, -1).
    # Adam's first step moves each weight by lr * sign(grad): w = (0.975, 1.025), sum 2 already.
    s = gn.step(losses(w), w)
    assert s.losses.tolist() == pytest.approx([10.0, 2.0])
    assert s.grad_norms.tolist() == pytest.approx([5.0, 1.0])
    assert s.targets.tolist() == pytest.approx([3.0, 3.0])
    assert float(s.grad_loss) == pytest.approx(4.0)
    assert s.weights.tolist() == pytest.approx([0.975, 1.025], abs=1e-6)

    # Step 2 at W = (0.5, 1): L = (8.5, 2). Ratios to L(0): (0.85, 1.0), mean 0.925,
    # r = (0.918919, 1.081081). G = (0.975*5, 1.025*1) = (4.875, 1.025), mean 2.95,
    # targets = 2.95 r = (2.710811, 3.189189); L_grad = 2.164189 + 2.164189 = 4.328378.
    # The gradient is (5, -1) again, so Adam (m^ = g, v^ = g^2) moves by lr*sign once more.
    with torch.no_grad():
        w.copy_(torch.tensor([0.5, 1.0]))
    s = gn.step(losses(w), w)
    assert s.losses.tolist() == pytest.approx([8.5, 2.0])
    assert s.grad_norms.tolist() == pytest.approx([4.875, 1.025], rel=1e-6)
    assert s.targets.tolist() == pytest.approx([2.95 * 0.85 / 0.925, 2.95 * 1.0 / 0.925], rel=1e-6)
    assert float(s.grad_loss) == pytest.approx(4.328378, rel=1e-6)
    assert s.weights.tolist() == pytest.approx([0.95, 1.05], abs=1e-6)


def test_gradnorm_renormalises_to_the_number_of_losses():
    gn = GradNorm(["ssl", "ltr"], [1.0, 3.0])
    assert gn.weights.tolist() == pytest.approx([0.5, 1.5])
    w = torch.nn.Parameter(torch.tensor([1.0, 1.0]))
    for _ in range(5):
        s = gn.step(losses(w), w)
        assert float(s.weights.sum()) == pytest.approx(2.0)


def test_combined_loss_uses_the_weights_before_the_update():
    gn = GradNorm(["ssl", "ltr"], [1.0, 1.0], lr=0.5)
    w = torch.nn.Parameter(torch.tensor([1.0, 1.0]))
    ls = losses(w)
    total = gn.combine(ls)
    gn.step(ls, w)                      # moves the weights ...
    total.backward()                    # ... but the model's gradient uses w = (1, 1)
    assert w.grad.tolist() == pytest.approx([3.0, 5.0])


def test_reduce_hook_sees_the_weight_gradient():
    gn = GradNorm(["ssl", "ltr"], [1.0, 1.0])
    w = torch.nn.Parameter(torch.tensor([1.0, 1.0]))
    seen = []
    gn.step(losses(w), w, reduce_grad=lambda g: seen.append(g.clone()))
    assert seen[0].tolist() == pytest.approx([5.0, -1.0])
