"""Loader benchmark: rows/s of the petastorm and arrow backends over the same pinned snapshot.

Prints figures (not a test). Reads the training split of gold.examples with the columns the
trainer reads (neighbour ids, counts, degrees, features, labels), re-batched to --batch-size;
optionally copies each batch to a device (pinned memory, non-blocking) to include the transfer.
Without --lake, a synthetic lake (bench/synthetic_lake.py, delta-rs, no Spark) is written first.

    source .grec/env.sh
    python bench/loader.py --rows 200000 --k 100 --batch-size 4096
    python bench/loader.py --lake lake --version 7 --device cuda
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
from training.config import LoaderBackend  # noqa: E402
from training.data.batching import on_device  # noqa: E402
from training.data.examples import example_columns, has_neighbor_arrays, resolve_tasks  # noqa: E402
from training.data.loader import make_batches, split_files  # noqa: E402
from training.data.snapshot import resolve_snapshot  # noqa: E402


def measure(backend: LoaderBackend, files, columns, args, device: torch.device) -> tuple[float, int]:
    start = time.perf_counter()
    rows = 0
    for batch in on_device(make_batches(backend, files, columns, batch_size=args.batch_size, shuffle=True, seed=0,
                                        shuffle_buffer=args.shuffle_buffer, workers=args.workers,
                                        pin_memory=device.type == "cuda"), device):
        rows += len(batch["user_node"])
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lake", help="lake root; default: a synthetic lake in a temporary folder")
    p.add_argument("--version", type=int, help="gold.examples version (default: latest)")
    p.add_argument("--rows", type=int, default=200_000, help="synthetic rows")
    p.add_argument("--k", type=int, default=100, help="synthetic neighbours per node")
    p.add_argument("--row-group", type=int, default=65_536, help="synthetic Parquet row-group size")
    p.add_argument("--batch-size", type=int, default=4096)
    p.add_argument("--shuffle-buffer", type=int, default=65_536)
    p.add_argument("--workers", type=int, default=2, help="reader decode threads")
    p.add_argument("--backends", default=",".join(b.value for b in LoaderBackend),
                   help="comma-separated backends to measure")
    p.add_argument("--repeats", type=int, default=3, help="passes per backend (the best is reported)")
    p.add_argument("--device", default="cpu", help="copy batches to this device too (cpu: no copy)")
    p.add_argument("--neighbor-arrays", action=argparse.BooleanOptionalAction, default=True,
                   help="synthetic rows carry both nodes' lists and features (the streaming path's layout); "
                        "lakes given with --lake are read with the columns they have")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.lake
        if root is None:
            root = tmp
            t0 = time.perf_counter()
            write_synthetic_lake(root, rows=args.rows, users=max(100, args.rows // 10), items=max(50, args.rows // 40),
                                 k=args.k, row_group=args.row_group, neighbor_arrays=args.neighbor_arrays)
            print(f"synthetic lake: {args.rows:,} rows, k={args.k}, written in {time.perf_counter() - t0:.1f} s")
        snap = resolve_snapshot(root, "gold.examples", version=args.version)
        files = split_files(snap, "train")
        tasks = resolve_tasks(snap)
        columns = example_columns(tasks, neighbor_arrays=has_neighbor_arrays(snap, tasks))
        rows = sum(f.rows for f in files)
        print(f"snapshot gold.examples v{snap.version}: {rows:,} training rows in {len(files)} files; "
              f"batch {args.batch_size}, shuffle buffer {args.shuffle_buffer}, workers {args.workers}, "
              f"device {args.device}, torch threads {torch.get_num_threads()}")
        device = torch.device(args.device)
        size_mb = sum(_file_bytes(f.uri) for f in files) / 1e6
        print(f"{'backend':<10} {'best s':>8} {'rows/s':>12} {'MB/s':>8}  (Parquet on disk: {size_mb:.1f} MB)")
        for backend in [LoaderBackend(b) for b in args.backends.split(",")]:
            times = []
            for _ in range(args.repeats):
                seconds, n = measure(backend, files, columns, args, device)
                assert n == rows, f"{backend.value} read {n} rows, expected {rows}"
                times.append(seconds)
            best = min(times)
            print(f"{backend.value:<10} {best:>8.2f} {rows / best:>12,.0f} {size_mb / best:>8.1f}")


def _file_bytes(uri: str) -> int:
    import pyarrow.fs as pafs

    fs, path = pafs.FileSystem.from_uri(uri)
    return fs.get_file_info(path).size


if __name__ == "__main__":
    main()
