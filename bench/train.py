"""Training benchmark: the resident trainer against the old streaming path and a plain stand-in.

Prints figures (not a test). For E2E-GRec (GradNorm, bf16 on CUDA), one epoch of `training.train.fit`
with the loader and host-to-device copies included:

- resident: gold.neighbors and the slim rows decoded once onto the device, step captured in a
  CUDA graph: examples/s and ms/step in steady state (after the 3 eager warm-up steps and the
  capture, loader included, timed on the device's stream) and over the whole epoch, cold load (node table + graph + rows) and its rows/s, the
  device time of one captured step and its share of the step's wall time, peak GPU memory;
- the device's gather bandwidth (index_select of 2 x k neighbour rows per example from the node
  table, fp32) and grec's own gather traffic as a ratio of it (a roofline for the lookups);
- stand-in: a plain-PyTorch eager step of the same model shape on random device-resident data
  (embedding_bag over 2 x k neighbours, LightGCN mean, GFAE, gated + attention fusion, two towers,
  Adam) at the same batch size, and grec / stand-in;
- stream (with --stream-rows): the old path, self-contained rows read from Parquet every epoch,
  eager steps, on a separate lake of that many rows.

    source .grec/env.sh
    python bench/train.py --rows 200000 --users 20000 --items 5000 --batch-size 4096 --device cpu --threads 2
    python bench/train.py --rows 10000000 --users 800000 --items 200000 --batch-size 65536 --device cuda \\
        --workers 12 --stream-rows 1000000

Without --lake the synthetic lakes (bench/synthetic_lake.py, delta-rs, no Spark) are written first.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from bench.synthetic_lake import write_synthetic_lake  # noqa: E402
from training.config import DeviceKind, LoaderBackend, LossWeighting, Residency, TrainConfig  # noqa: E402
from training.train import TrainResult, fit  # noqa: E402


def run(lake: str, out: str, args, residency: Residency, graphs: bool, max_steps=None) -> TrainResult:
    cfg = TrainConfig()
    cfg.data.lake, cfg.data.loader, cfg.data.residency = lake, args.loader, residency
    cfg.data.batch_size, cfg.data.workers, cfg.data.eval_batch_size = args.batch_size, args.workers, 1 << 18
    cfg.run.out, cfg.run.progress, cfg.run.checkpoint, cfg.run.tracking = out, False, False, False
    cfg.run.device, cfg.run.max_steps, cfg.run.threads = args.device, max_steps, args.threads
    cfg.run.cuda_graphs = graphs
    if args.fixed_weights:
        cfg.optim.loss_weighting = LossWeighting.FIXED
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    return fit(cfg)


def report(name: str, r: TrainResult, batch: int) -> dict:
    steps = len(r.log)
    ms = r.train_seconds / max(steps, 1) * 1000
    rows = (r.data or {}).get("rows", 0)
    steady_ms = batch / r.steady_examples_per_s * 1000 if r.steady_examples_per_s else float("nan")
    out = {"examples/s": r.steady_examples_per_s, "ms/step": steady_ms, "epoch examples/s": r.examples_per_s,
           "epoch ms/step": ms, "steps": steps, "load s": r.load_seconds,
           "load rows/s": rows / r.load_seconds if r.load_seconds else float("nan"),
           "loader wait %": 100 * r.loader_seconds / r.train_seconds if r.train_seconds else float("nan"),
           "cuda graph": r.captured}
    if r.device.startswith("cuda"):
        out["peak GiB"] = torch.cuda.max_memory_allocated() / 2**30
        if r.step is not None and r.captured:
            dev = r.step.device_ms()
            out["device ms/step"] = dev
            out["device share %"] = 100 * dev / steady_ms
    print(f"{name}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in out.items()), flush=True)
    auc = r.metrics.groupby("task")["auc"].mean().to_dict() if len(r.metrics) else {}
    print(f"  {name} eval AUC (mean over days): " + ", ".join(f"{t} {a:.4f}" for t, a in auc.items()), flush=True)
    return out


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) >= 10 else f"{v:.3f}"
    return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)


def gather_bandwidth(nodes: int, width: int, batch: int, k: int, device: torch.device, repeats: int = 20) -> float:
    """Bytes/s of index_select of 2 x k random rows per example from an (nodes, width) fp32 table."""
    table = torch.randn(nodes, width, device=device)
    idx = torch.randint(0, nodes, (2 * batch * k,), device=device)
    out = torch.empty(len(idx), width, device=device)
    torch.index_select(table, 0, idx, out=out)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        torch.index_select(table, 0, idx, out=out)
    sync(device)
    seconds = (time.perf_counter() - t0) / repeats
    return 2 * out.numel() * 4 / seconds  # each gathered row read once and written once


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StandIn(nn.Module):
    """Plain PyTorch step of E2E-GRec's shape: X = [E ; W f], LightGCN mean over k sampled neighbours,
    GFAE, a shared MLP, a context block, gated fusion, 8-head attention over the three blocks, two towers."""

    def __init__(self, nodes: int, feat: int, d_id: int = 32, d_f: int = 32, hidden: int = 256):
        super().__init__()
        self.emb = nn.Embedding(nodes, d_id)
        self.proj = nn.Linear(feat, d_f)
        d = d_id + d_f
        self.bottom = nn.Sequential(nn.Linear(2 * d, hidden), nn.ReLU(), nn.Linear(hidden, 128), nn.ReLU())
        self.ctx = nn.Embedding(16, 32)
        self.gnn = nn.Sequential(nn.Linear(2 * d, 64), nn.ReLU())
        widths = 128 + 32 + 64
        self.gate = nn.Linear(widths, widths)
        self.tokens = nn.ModuleList(nn.Linear(w, 32) for w in (128, 32, 64))
        self.qkv, self.out = nn.Linear(32, 96), nn.Linear(32, 32)
        self.towers = nn.ModuleList(nn.Sequential(nn.Linear(widths + 96, 64), nn.ReLU(), nn.Linear(64, 1))
                                    for _ in range(2))

    def x(self, nodes, feats):
        return torch.cat([self.emb(nodes), self.proj(feats[nodes])], -1)

    def forward(self, u, i, ctx, nbr_u, nbr_i, feats, labels):
        xu, xi = self.x(u, feats), self.x(i, feats)

        def agg(nbr):
            w = torch.full(nbr.shape, 1.0 / nbr.shape[1], device=nbr.device)
            e = F.embedding_bag(nbr, self.emb.weight, per_sample_weights=w, mode="sum")
            f = F.embedding_bag(nbr, feats, per_sample_weights=w, mode="sum")
            return torch.cat([e, self.proj(f)], -1)

        zu, zi = (xu + agg(nbr_u)) / 2, (xi + agg(nbr_i)) / 2
        blocks = [self.bottom(torch.cat([xu, xi], -1)), self.ctx(ctx), self.gnn(torch.cat([zu, zi], -1))]
        cat = torch.cat(blocks, -1)
        fused = torch.sigmoid(self.gate(cat)) * cat
        tok = torch.stack([t(b) for t, b in zip(self.tokens, blocks)], 1)
        q, k_, v = (t.unflatten(-1, (8, 4)).transpose(1, 2) for t in self.qkv(tok).chunk(3, -1))
        # written out: SDPA's fused kernels fail or crawl on B x 8 heads of 3 tokens each
        w = torch.softmax((q @ k_.transpose(-1, -2)) / 2.0, -1)
        att = self.out((w @ v).transpose(1, 2).flatten(2)) + tok
        h = torch.cat([fused, att.flatten(1)], -1)
        logits = torch.cat([t(h) for t in self.towers], -1)
        ltr = F.binary_cross_entropy_with_logits(logits.float(), labels).mean(0).sum()
        ssl = (torch.cat([zu, zi]) - torch.cat([xu, xi])).float().pow(2).sum(-1).mean()
        return ltr + ssl


def stand_in(nodes: int, feat: int, batch: int, k: int, device: torch.device, amp: bool, steps: int = 30) -> float:
    """Examples/s of the plain stand-in on random device-resident data (steady state, eager)."""
    model = StandIn(nodes, feat).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=device.type == "cuda" or None)
    feats = torch.randn(nodes, feat, device=device)
    n = batch * 8
    data = [torch.randint(0, nodes, (n,), device=device), torch.randint(0, nodes, (n,), device=device),
            torch.randint(0, 16, (n,), device=device), torch.randint(0, nodes, (n, k), device=device),
            torch.randint(0, nodes, (n, k), device=device), torch.randint(0, 2, (n, 2), device=device).float()]

    def step(j):
        sl = slice((j % 8) * batch, (j % 8 + 1) * batch)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = model(*(t[sl] for t in data[:5]), feats, data[5][sl])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for j in range(3):
        step(j)
    sync(device)
    t0 = time.perf_counter()
    for j in range(steps):
        step(j)
    sync(device)
    return steps * batch / (time.perf_counter() - t0)


def profile_steps(lake: str, args, steps: int = 20) -> None:
    """Eager resident steps under torch.profiler: the operators that take most device time."""
    from torch.profiler import ProfilerActivity, profile

    with tempfile.TemporaryDirectory() as out, profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        run(lake, out, args, args.residency, graphs=False, max_steps=steps)
    print(prof.key_averages().table(sort_by="self_device_time_total", row_limit=25), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lake", help="lake root (gold.nodes, gold.neighbors, gold.examples); default: synthetic")
    p.add_argument("--rows", type=int, default=200_000, help="synthetic examples")
    p.add_argument("--users", type=int, default=20_000, help="synthetic user nodes")
    p.add_argument("--items", type=int, default=5_000, help="synthetic item nodes")
    p.add_argument("--k", type=int, default=100, help="synthetic neighbours per node")
    p.add_argument("--stream-rows", type=int, default=0, help="also run the old streaming path on a "
                                                              "self-contained lake of this many rows")
    p.add_argument("--batch-size", type=int, default=16_384)
    p.add_argument("--loader", type=LoaderBackend, default=LoaderBackend.ARROW, choices=list(LoaderBackend))
    p.add_argument("--device", type=DeviceKind, default=DeviceKind.AUTO, choices=list(DeviceKind))
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--workers", type=int, default=8, help="reader decode threads")
    p.add_argument("--fixed-weights", action="store_true", help="fixed loss weights instead of GradNorm")
    p.add_argument("--no-cuda-graphs", action="store_true", help="resident path with eager steps")
    p.add_argument("--residency", type=Residency, default=Residency.AUTO, choices=list(Residency),
                   help="where the resident run keeps the rows (host: pinned memory, streamed in chunks)")
    p.add_argument("--tmp", help="folder for the synthetic lakes (default: a temporary folder)")
    p.add_argument("--profile", action="store_true", help="only profile 20 eager resident steps (torch.profiler)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        lake = args.lake
        if lake is None:
            lake = f"{tmp}/slim"
            t0 = time.perf_counter()
            write_synthetic_lake(lake, rows=args.rows, users=args.users, items=args.items, k=args.k)
            print(f"synthetic slim lake: {args.rows:,} rows, {args.users + args.items:,} nodes, k={args.k}, "
                  f"written in {time.perf_counter() - t0:.1f} s", flush=True)
        if args.profile:
            profile_steps(lake, args)
            return
        r = run(lake, f"{tmp}/out", args, args.residency, not args.no_cuda_graphs)
        device = torch.device(r.device)
        amp = device.type == "cuda"
        print(f"device {r.device}, batch {args.batch_size}, loss weighting "
              f"{'fixed' if args.fixed_weights else 'gradnorm'}, amp {amp}, torch threads {torch.get_num_threads()}, "
              f"reader workers {args.workers}, residency {r.data['residency']}", flush=True)
        grec = report("grec resident", r, args.batch_size)
        nodes = r.model.node_input.features.shape[0]
        feat = r.model.node_input.features.shape[1]
        width = r.model.node_input.ids.weight.shape[1] + feat
        k = args.k
        del r
        bw = gather_bandwidth(nodes, width, args.batch_size, k, device)
        need = grec["examples/s"] * 2 * k * width * 4 * 2
        print(f"gather bandwidth (index_select, {nodes:,} x {width} fp32 rows, 2 x {k} per example): "
              f"{bw / 1e9:,.0f} GB/s; grec's neighbour gathers at its rate: {need / 1e9:,.0f} GB/s = "
              f"{100 * need / bw:.1f}% of it", flush=True)
        si = stand_in(nodes, feat, args.batch_size, k, device, amp)
        print(f"stand-in (plain PyTorch, eager, random device data, same shapes): {si:,.0f} examples/s; "
              f"grec / stand-in = {grec['examples/s'] / si:.2f}x", flush=True)
        if args.stream_rows:
            old = f"{tmp}/stream"
            t0 = time.perf_counter()
            write_synthetic_lake(old, rows=args.stream_rows, users=args.users, items=args.items, k=args.k,
                                 neighbor_arrays=True)
            print(f"self-contained lake: {args.stream_rows:,} rows written in {time.perf_counter() - t0:.1f} s",
                  flush=True)
            report("old streaming path", run(old, f"{tmp}/out_stream", args, Residency.STREAM, False),
                   args.batch_size)


if __name__ == "__main__":
    main()
