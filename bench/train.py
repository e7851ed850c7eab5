"""Training benchmark: examples/s of the full loop, the share of time spent waiting for the loader,
and peak GPU memory on CUDA.

Prints figures (not a test). Runs `training.train.fit` for one epoch (or --max-steps) on a pinned
snapshot; without --lake a synthetic lake (bench/synthetic_lake.py, delta-rs, no Spark) is written
first. Steady state: the first --warmup steps are timed separately and excluded from examples/s.

    source .grec/env.sh
    python bench/train.py --rows 100000 --batch-size 1024 --threads 1
    python bench/train.py --rows 2000000 --batch-size 16384 --device cuda --loader arrow
    python bench/train.py --rows 1000000 --batch-size 16384 --device cuda --max-steps 40 --profile prof/

--profile DIR records the run with torch.profiler (CPU and CUDA activity), writes a Chrome trace
to DIR/trace.json and prints the operators that took most device and host time: where a step goes.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.synthetic_lake import write_synthetic_lake  # noqa: E402
from training.config import DeviceKind, LoaderBackend, LossWeighting, TrainConfig  # noqa: E402
from training.train import fit  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lake", help="lake root; default: a synthetic lake in a temporary folder")
    p.add_argument("--version", type=int, help="gold.examples version (default: latest)")
    p.add_argument("--rows", type=int, default=100_000, help="synthetic rows")
    p.add_argument("--k", type=int, default=100, help="synthetic neighbours per node")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--loader", type=LoaderBackend, default=LoaderBackend.ARROW, choices=list(LoaderBackend))
    p.add_argument("--device", type=DeviceKind, default=DeviceKind.AUTO, choices=list(DeviceKind))
    p.add_argument("--max-steps", type=int, help="steps to time (default: one epoch)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--workers", type=int, default=TrainConfig().data.workers, help="reader decode threads")
    p.add_argument("--profile", metavar="DIR", help="record a torch.profiler trace into DIR")
    p.add_argument("--fixed-weights", action="store_true", help="fixed loss weights instead of GradNorm")
    p.add_argument("--no-amp", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.lake
        if root is None:
            root = tmp
            t0 = time.perf_counter()
            write_synthetic_lake(root, rows=args.rows, users=max(100, args.rows // 10),
                                 items=max(50, args.rows // 40), k=args.k)
            print(f"synthetic lake: {args.rows:,} rows, k={args.k}, written in {time.perf_counter() - t0:.1f} s")
        cfg = TrainConfig()
        cfg.data.lake, cfg.data.version, cfg.data.loader = root, args.version, args.loader
        cfg.data.batch_size, cfg.data.workers = args.batch_size, args.workers
        cfg.run.out, cfg.run.progress, cfg.run.checkpoint = str(Path(tmp) / "out"), False, False
        cfg.run.device, cfg.run.max_steps, cfg.run.threads = args.device, args.max_steps, args.threads
        cfg.run.amp = not args.no_amp
        if args.fixed_weights:
            cfg.optim.loss_weighting = LossWeighting.FIXED
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        r = profiled(fit, cfg, args.profile) if args.profile else fit(cfg)
        steps = len(r.log)
        print(f"device {r.device}, loader {args.loader.value}, batch {args.batch_size}, steps {steps}, "
              f"loss weighting {cfg.optim.loss_weighting.value}, amp {cfg.run.amp and r.device.startswith('cuda')}, "
              f"torch threads {torch.get_num_threads()}, reader workers {args.workers}")
        print(f"train: {r.examples_per_s:,.0f} examples/s over {r.train_seconds:.2f} s "
              f"({r.train_seconds / max(steps, 1) * 1000:.1f} ms/step)")
        print(f"loader wait: {r.loader_seconds:.2f} s = {100 * r.loader_seconds / r.train_seconds:.1f}% of training time")
        print(f"eval: {r.eval_seconds:.2f} s for {int(r.metrics['n'].sum() // len(r.snapshots['tasks'])):,} rows")
        if r.device.startswith("cuda"):
            print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
        print(r.metrics.to_string(index=False))


def profiled(run, cfg: TrainConfig, out_dir: str):
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with profile(activities=activities) as prof:
        result = run(cfg)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    prof.export_chrome_trace(str(Path(out_dir) / "trace.json"))
    table = prof.key_averages()
    if torch.cuda.is_available():
        print("top operators by device time:")
        print(table.table(sort_by="self_device_time_total", row_limit=15))
    print("top operators by host time:")
    print(table.table(sort_by="self_cpu_time_total", row_limit=15))
    return result


if __name__ == "__main__":
    main()
