"""One optimisation step, eager or replayed from a CUDA graph.

A step assembles the batch (neighbour lists gathered from the resident graph), runs the forward
pass, balances the losses (GradNorm's own update included), back-propagates and updates every
optimiser. Eagerly that is ~600 kernel launches and their Python dispatch per step, which bound the
trainer at a fraction of the GPU; a CUDA graph replays them in one launch.

Capture (PyTorch's whole-network recipe): the first `warmup` steps run eagerly on a side stream (so
optimiser states, GradNorm's reference losses and cuBLAS workspaces exist), then one step is
captured on static input tensors and every later step copies its batch into them and replays.
That needs static shapes (training drops the short last batch), no host sync inside the step
(GradNorm reads its reference losses once, in warm-up), optimisers with `capturable=True`, and
autocast without its weight cache. Where capture is not possible (CPU, DDP, sparse gradients) or
fails, the step stays eager and says why once.
"""
from __future__ import annotations

import logging
from typing import Callable, Mapping, Optional, Sequence

import torch
from torch import nn

from training.data.examples import ExampleBatch
from training.gates import GateStats
from training.models import ModelOutput

log = logging.getLogger(__name__)

WARMUP_STEPS = 3


class TrainStep:
    """`step(cols) -> (7,) device tensor [total, L_SSL, L_LTR, w_SSL, w_LTR, G_SSL, G_LTR]` for one batch.

    Args:
        trained: the model or its DDP wrapper (called on the batch).
        assemble: loader columns -> ExampleBatch.
        balance: ModelOutput -> (total loss, log row of 6), see training.train.LossBalance.
        optimizers: stepped after backward.
        gates: accumulates expert models' gate weights (device sums, graph-safe).
        amp: bf16 autocast.
        capture: replay the step from a CUDA graph after `warmup` eager steps.
    """

    def __init__(self, trained: nn.Module, assemble: Callable[[Mapping[str, torch.Tensor]], ExampleBatch],
                 balance: Callable[[ModelOutput], tuple[torch.Tensor, torch.Tensor]],
                 optimizers: Sequence[torch.optim.Optimizer], gates: Optional[GateStats], device: torch.device,
                 amp: bool, capture: bool, warmup: int = WARMUP_STEPS):
        self.trained = trained
        self.assemble = assemble
        self.balance = balance
        self.optimizers = list(optimizers)
        self.gates = gates
        self.device = device
        self.amp = amp
        self.capture = capture and device.type == "cuda"
        self.warmup = warmup
        self.steps = 0
        self.graph: Optional[torch.cuda.CUDAGraph] = None
        self.static_in: dict[str, torch.Tensor] = {}
        self.static_out: Optional[torch.Tensor] = None
        self._side = torch.cuda.Stream(device) if self.capture else None

    @property
    def captured(self) -> bool:
        return self.graph is not None

    def eager(self, cols: Mapping[str, torch.Tensor]) -> torch.Tensor:
        batch = self.assemble(cols)
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp,
                            cache_enabled=not self.capture):
            out = self.trained(batch)
        total, row = self.balance(out)
        if out.gates and self.gates is not None:
            self.gates.update(out.gates)
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)
        total.backward()
        for opt in self.optimizers:
            opt.step()
        return torch.cat([total.detach().float()[None], row])

    def __call__(self, cols: Mapping[str, torch.Tensor]) -> torch.Tensor:
        self.steps += 1
        if self.graph is not None:
            for k, v in cols.items():
                self.static_in[k].copy_(v, non_blocking=True)
            self.graph.replay()
            assert self.static_out is not None  # captured along with the graph
            return self.static_out.clone()
        if not self.capture:
            return self.eager(cols)
        if self.steps <= self.warmup:
            assert self._side is not None  # made in __init__ whenever capture is on
            self._side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(self._side):
                row = self.eager(cols)
            torch.cuda.current_stream(self.device).wait_stream(self._side)
            return row
        return self._capture(cols)

    def _capture(self, cols: Mapping[str, torch.Tensor]) -> torch.Tensor:
        self.static_in = {k: v.clone() for k, v in cols.items()}
        graph = torch.cuda.CUDAGraph()
        torch.cuda.synchronize(self.device)
        try:
            with torch.cuda.graph(graph):
                self.static_out = self.eager(self.static_in)
        except RuntimeError as e:
            log.warning("CUDA graph capture failed, training eagerly from here: %s", str(e).splitlines()[0])
            self.capture = False
            torch.cuda.synchronize(self.device)
            return self.eager(cols)
        self.graph = graph
        log.info("training step captured in a CUDA graph after %d eager steps", self.warmup)
        graph.replay()
        return self.static_out.clone()


    def device_ms(self, repeats: int = 20) -> float:
        """Device time of one captured step: `repeats` back-to-back replays on the last batch, timed
        with CUDA events (one launch each, so the device never waits for the host). Benchmarks only:
        it trains on that batch `repeats` more times. NaN when the step is not captured."""
        if self.graph is None:
            return float("nan")
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        self.graph.replay()
        start.record()
        for _ in range(repeats):
            self.graph.replay()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / repeats


def capture_blockers(device: torch.device, distributed: bool, sparse: bool) -> list[str]:
    """Why the step cannot be captured here (empty: it can)."""
    reasons = []
    if device.type != "cuda":
        reasons.append("CUDA graphs need a CUDA device")
    if distributed:
        reasons.append("DDP's gradient all-reduce runs outside the captured step")
    if sparse:
        reasons.append("SparseAdam (--sparse-embeddings) is not capturable")
    return reasons
