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
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Mapping, Optional, TypeVar

import numpy as np
import torch

@dataclass(frozen=True)
class EpochOptions:
    """How a reader serves one epoch, whatever its backend.

    Args:
        batch_size: rows per batch.
        shuffle: shuffle row-group order and rows (within `shuffle_buffer`), seeded by `seed`.
        rank / world: this rank's share of the row groups (DDP).
        shuffle_buffer: rows mixed across row groups; 0 when not shuffling.
        workers: read / decode threads (at least 1).
        drop_last: drop the short last batch.
    """

    batch_size: int
    shuffle: bool = False
    seed: int = 0
    rank: int = 0
    world: int = 1
    shuffle_buffer: int = 0
    workers: int = 2
    drop_last: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "shuffle_buffer", self.shuffle_buffer if self.shuffle else 0)
        object.__setattr__(self, "workers", max(1, self.workers))


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


def rebatch(chunks: Iterable[Mapping[str, np.ndarray]], batch_size: int, *, shuffle_buffer: int = 0,
            rng: Optional[np.random.Generator] = None, drop_last: bool = False,
            pin_memory: bool = False) -> Iterator[dict[str, torch.Tensor]]:
    """Cut chunks of any length into batches of exactly `batch_size` rows (the last may be short).

    With a shuffle buffer, rows are gathered until at least `shuffle_buffer` are pending and batches
    are drawn from a permutation of all of them; so rows mix across row groups, not only within one.
    Each batch is gathered straight from the buffer into its own tensor (page-locked with
    `pin_memory`, ready for an asynchronous device copy): one copy per row, however it is shuffled.
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
            buf = _concat(pending)
            order = rng.permutation(pending_rows) if shuffle_buffer and rng is not None else None
            full = pending_rows // batch_size * batch_size
            yield from _cut(buf, order, full, batch_size, pin_memory)
            if full < pending_rows:
                rest = order[full:] if order is not None else slice(full, None)
                pending = [{k: v[rest] for k, v in buf.items()}]
            else:
                pending = []
            pending_rows -= full
    if pending_rows:
        buf = _concat(pending)
        order = rng.permutation(pending_rows) if shuffle_buffer and rng is not None else None
        stop = pending_rows if not drop_last else pending_rows // batch_size * batch_size
        yield from _cut(buf, order, stop, batch_size, pin_memory)


def _concat(chunks: list[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([c[k] for c in chunks]) if len(chunks) > 1 else chunks[0][k] for k in chunks[0]}


def _cut(buf: Mapping[str, np.ndarray], order: Optional[np.ndarray], stop: int, size: int,
         pin_memory: bool) -> Iterator[dict[str, torch.Tensor]]:
    """Batches of rows [0, stop) of `buf` (in `order` when given); the last one may be short."""
    source = {k: torch.from_numpy(v) for k, v in buf.items()}
    index = torch.from_numpy(order) if order is not None else None
    for i in range(0, stop, size):
        n = min(size, stop - i)
        batch = {}
        for k, v in source.items():
            out = torch.empty((n, *v.shape[1:]), dtype=v.dtype, pin_memory=pin_memory)
            if index is not None:
                torch.index_select(v, 0, index[i:i + n], out=out)
            else:
                out.copy_(v[i:i + n])
            batch[k] = out
        yield batch


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
