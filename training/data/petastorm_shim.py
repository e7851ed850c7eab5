"""A fix for a start-up race in petastorm 0.13.1's ThreadPool, applied on import.

`ThreadPool.get_results` ends the stream when `all_workers_done()` (every worker processed as many
items as were ventilated to it, result queues empty) and then `ventilator.completed()`. Read in
that order, the counters can be read before the ventilator thread has ventilated anything (0 == 0)
and completion right after it has ventilated everything: the reader then stops at once and an
epoch silently yields no rows (seen here in about one read in four on a busy 2-core machine).
Reading completion first makes the counters final when they are compared, which closes the race.
"""
from __future__ import annotations

from petastorm.workers_pool.thread_pool import ThreadPool

_original_all_workers_done = ThreadPool.all_workers_done


def _all_workers_done(self: ThreadPool) -> bool:
    ventilation_over = self._ventilator is None or self._ventilator.completed()  # observed before the counters
    return ventilation_over and _original_all_workers_done(self)


if getattr(ThreadPool.all_workers_done, "__name__", "") != "_all_workers_done":
    ThreadPool.all_workers_done = _all_workers_done
