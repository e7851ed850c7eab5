"""Delta's optimistic-concurrency conflicts on grec's writes: which are retried, and the message when not.

What two runs may do at once (docs/etl.md, "Concurrent runs"): runs with different run ids may share a
lake. Every grec write is one of
- a whole-table snapshot (CREATE OR REPLACE with the stage's result),
- a run's own rows of a per-run table (`replaceWhere run_id = '<run>'`),
- a run's own manifest rows (MERGE keyed by run_id and stage), or the manifest's first append,
and none of them depends on what another run committed meanwhile, so a conflict with another run's
commit is retried with backoff: the write lands as the next version and the run pins that version.
A conflict with a commit of the *same* run id means a second process runs that run id; it is not
retried (the two would replace each other's rows) and stops with `ConcurrentRunError`, as does a
conflict that outlasts every attempt.
"""
from __future__ import annotations

import json
import logging
import random
import re
import time
from typing import Callable, Optional, TypeVar

from delta import exceptions as dx

log = logging.getLogger(__name__)

# Delta's conflict classes share no base in Python (each subclasses PySparkException), so all are named
CONFLICTS = (dx.ConcurrentAppendException, dx.ConcurrentDeleteReadException, dx.ConcurrentDeleteDeleteException,
             dx.MetadataChangedException, dx.ProtocolChangedException, dx.ConcurrentTransactionException,
             dx.ConcurrentWriteException, dx.DeltaConcurrentModificationException)

T = TypeVar("T")

ATTEMPTS = 8          # tries of one write before giving up
BACKOFF_S = 0.25      # wait after the first conflict; doubles after each, with jitter
BACKOFF_MAX_S = 8.0   # longest single wait (8 attempts wait about 24 s in all, on average)


class ConcurrentRunError(RuntimeError):
    """Another writer conflicts with this run in a way a retry cannot fix; the message says what to do."""


def conflicting_commit(exc: BaseException) -> dict:
    """The other writer's commit as Delta's message gives it ("Conflicting commit: {...}"), else {}."""
    m = re.search(r"Conflicting commit: (\{.*?\})\s*\n", str(exc) + "\n", re.S)
    if not m:
        return {}
    try:
        commit = json.loads(m.group(1))
    except ValueError:
        return {}
    meta = commit.get("userMetadata")
    try:
        commit["userMetadata"] = json.loads(meta) if isinstance(meta, str) else (meta or {})
    except ValueError:
        commit["userMetadata"] = {}
    return commit


def describe(commit: dict) -> str:
    """'WRITE (run r2, stage swing) at version 7', or 'an unnamed commit' when Delta gave none."""
    if not commit:
        return "a commit Delta did not name"
    meta = commit.get("userMetadata") or {}
    who = ", ".join(f"{label} {meta[k]}" for k, label in (("run_id", "run"), ("stage", "stage")) if meta.get(k))
    at = f" at version {commit['version']}" if commit.get("version") is not None else ""
    newest = " (the table's newest commit; Delta named none)" if commit.get("newest") else ""
    return f"{commit.get('operation', 'a commit')}{f' ({who})' if who else ''}{at}{newest}"


def with_conflict_retry(write: Callable[[], T], *, table: str, run_id: str, stage: str,
                        sleep: Callable[[float], None] = time.sleep,
                        latest: Optional[Callable[[], dict]] = None) -> T:
    """Run `write`; on a Delta conflict with another run's commit, wait and run it again.

    `write` must be safe to repeat: it commits nothing on a conflict and its result does not depend
    on the table's content (true of every write listed in the module docstring). `latest` gives the
    table's newest commit, named in messages when Delta's conflict names none (e.g.
    DELTA_CONCURRENT_APPEND.WITHOUT_HINT); it never decides a refusal, since it may be any commit.
    """
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return write()
        except CONFLICTS as e:
            commit = conflicting_commit(e)
            kind = type(e).__name__
            if (commit.get("userMetadata") or {}).get("run_id") == run_id:
                raise ConcurrentRunError(
                    f"{table}: stage {stage} of run {run_id} conflicts with {describe(commit)} of the same run "
                    f"id ({kind}): a second process is running run {run_id}. A run id runs in one process at "
                    f"a time: let the other finish, or start this one with another --run-id") from None
            if not commit and latest is not None:
                try:
                    named = {**latest(), "newest": True}
                except Exception:  # naming is best effort: the conflict is what the user must see
                    named = {}
            else:
                named = commit
            if attempt == ATTEMPTS:
                raise ConcurrentRunError(
                    f"{table}: stage {stage} of run {run_id} kept conflicting with other runs' writes; the last "
                    f"was {describe(named)} ({kind}); gave up after {ATTEMPTS} attempts. Nothing of this stage "
                    f"was half-written: re-run with --run-id {run_id} when fewer runs write this lake") from None
            wait = min(BACKOFF_MAX_S, BACKOFF_S * 2 ** (attempt - 1)) * (0.5 + random.random())
            log.info(f"{stage}: {table}: {kind} with {describe(named)}; retrying in {wait:.1f} s "
                 f"(attempt {attempt + 1}/{ATTEMPTS})")
            sleep(wait)
    raise AssertionError("unreachable")


def delta_conflict_or_none(exc: BaseException) -> Optional[ConcurrentRunError]:
    """A ConcurrentRunError naming the other writer, for a Delta conflict raised outside a retried write."""
    if not isinstance(exc, CONFLICTS):
        return None
    return ConcurrentRunError(f"another writer's commit conflicts with this run: {describe(conflicting_commit(exc))} "
                              f"({type(exc).__name__}); re-run with the same --run-id (it replaces its outputs)")
