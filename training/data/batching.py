"""Batch plumbing shared by the readers: read-ahead, fixed-size re-batching, device transfer.

Parquet row groups rarely match the batch size, so readers hand over chunks of any length and
`rebatch` cuts them into exact batches (mixing rows within a shuffle buffer when asked).
"""
from __future__ import annotations

import queue
import threading
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, Mapping, Optional, TypeVar

import numpy as np
import torch

_DONE = object()
T = TypeVar("T")
R = TypeVar("R")

# Arrow hands out read-only numpy views; batches are never written in place, so the copy torch
# suggests would only cost bandwidth.
warnings.filterwarnings("ignore", message="The given NumPy array is not writable")


def prefetch(chunks: Iterator, depth: int) -> Iterator:
    """Run `chunks` in a background thread, `depth` items ahead (Parquet decoding releases the GIL)."""
    if depth < 1:
        yield from chunks
        return
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for item in chunks:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as e:  # handed to the consumer, re-raised there
            q.put(e)

    t = threading.Thread(target=work, daemon=True, name="grec-read-ahead")
    t.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        t.join(timeout=5)


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """fn over items on `workers` threads, results in input order, at most 2 * workers in flight.

    For Parquet decoding, which releases the GIL: one thread decodes ~1 GB/s of list columns, so a
    fast GPU needs several row groups decoded at once.
    """
    if workers <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="grec-decode") as pool:
        pending: deque = deque()
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()


def pinned(batches: Iterable[Mapping[str, torch.Tensor]]) -> Iterator[dict[str, torch.Tensor]]:
    """Batches copied into page-locked memory, so the device copy can be asynchronous."""
    for batch in batches:
        yield {k: v.pin_memory() for k, v in batch.items()}


def rebatch(chunks: Iterable[Mapping[str, np.ndarray]], batch_size: int, *, shuffle_buffer: int = 0,
            rng: Optional[np.random.Generator] = None, drop_last: bool = False) -> Iterator[dict[str, torch.Tensor]]:
    """Cut chunks of any length into batches of exactly `batch_size` rows (the last may be short).

    With a shuffle buffer, rows are gathered until at least `shuffle_buffer` are pending, permuted
    together, and cut; so rows mix across row groups, not only within one.
    """
    threshold = max(batch_size, shuffle_buffer)
    pending: list[Mapping[str, np.ndarray]] = []
    pending_rows = 0
    for chunk in chunks:
        n = len(next(iter(chunk.values())))
        if n == 0:
            continue
        pending.append(chunk)
        pending_rows += n
        if pending_rows >= threshold:
            buf = _concat(pending, rng if shuffle_buffer else None)
            full = pending_rows // batch_size * batch_size
            yield from _cut(buf, 0, full, batch_size)
            pending = [{k: v[full:] for k, v in buf.items()}] if full < pending_rows else []
            pending_rows -= full
    if pending_rows:
        buf = _concat(pending, rng if shuffle_buffer else None)
        full = pending_rows // batch_size * batch_size
        yield from _cut(buf, 0, full, batch_size)
        if full < pending_rows and not drop_last:
            yield from _cut(buf, full, pending_rows, pending_rows - full)


def _concat(chunks: list[Mapping[str, np.ndarray]], rng: Optional[np.random.Generator]) -> dict[str, np.ndarray]:
    buf = {k: np.concatenate([c[k] for c in chunks]) if len(chunks) > 1 else chunks[0][k] for k in chunks[0]}
    if rng is not None:
        perm = rng.permutation(len(next(iter(buf.values()))))
        buf = {k: v[perm] for k, v in buf.items()}
    return buf


def _cut(buf: Mapping[str, np.ndarray], start: int, stop: int, size: int) -> Iterator[dict[str, torch.Tensor]]:
    for i in range(start, stop, size):
        yield {k: torch.from_numpy(np.ascontiguousarray(v[i:i + size])) for k, v in buf.items()}


def to_device(batch: Mapping[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Copy a batch to `device`: pinned host memory and non-blocking copies on CUDA, no-op on CPU.

    Batches a reader already pinned (in its own thread) are copied as they are.
    """
    if device.type != "cuda":
        return dict(batch)
    return {k: (v if v.is_pinned() else v.pin_memory()).to(device, non_blocking=True) for k, v in batch.items()}


def on_device(batches: Iterable[Mapping[str, torch.Tensor]], device: torch.device) -> Iterator[dict[str, torch.Tensor]]:
    """Yield batches on `device`, issuing the next batch's copy before the current one is used."""
    it = iter(batches)
    nxt = next(it, None)
    ahead = to_device(nxt, device) if nxt is not None else None
    while ahead is not None:
        current = ahead
        nxt = next(it, None)
        ahead = to_device(nxt, device) if nxt is not None else None
        yield current
