"""MLflow tracking of `grec train` and `grec compare` runs (docs/training.md, Tracking runs with MLflow).

A training run is one MLflow run; `grec compare` opens a parent run, and every training run it
makes (selection and evaluation) is its child. mlflow is imported only when a run is tracked, so
--no-tracking costs nothing and a missing package is a clear error; the client alone
(mlflow-skinny) is enough. Store: --tracking-uri, else $MLFLOW_TRACKING_URI, else `databricks` on
a Databricks cluster, else the local file store ./mlruns.

A training run logs
- params: every config field as `<section>.<field>` (the dotted flag names);
- per evaluation period: `auc/<task>`, `gauc/<task>`, `logloss/<task>` with step = the period's
  index (0: the first) and timestamp = its first day at 00:00 UTC; n/a cells are left out;
- `overall/<metric>/<task>`: the row-weighted mean over the periods (the comparison's summary);
- per epoch (step = epoch, from 1): `val/auc/<task>`, `val/logloss/<task>`, `train/loss`; and
  `best_epoch`, `best_val_auc`, `examples_per_s`, `train_seconds`, `eval_seconds`, `load_seconds`;
- artifacts: the files it wrote to --out (not checkpoint.pt, which stays there: tag grec.out);
- tags: grec.lake, grec.run_id (the ETL run that wrote the examples), grec.table_version.<table>
  for every pinned table, grec.model, grec.label, grec.seed, grec.device, grec.out, grec.phase.
A comparison's parent logs the base config, compare.* params, the same snapshot tags, per period
`auc_mean/<model>/<task>` and `lift_pct/<model>/<task>`, their `overall/...` values, and its tables
and plots.
"""
from __future__ import annotations

import datetime as dt
import logging
import math
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Optional, Sequence
from urllib.parse import urlparse

import pandas as pd

from schemas.layout import normalize_root
from training.config import RunConfig, TrainConfig
from training.data.manifest import written_by

if TYPE_CHECKING:
    from training.compare import Comparison
    from training.train import TrainResult

DEFAULT_STORE = "mlruns"
PARENT_TAG = "mlflow.parentRunId"
SNAPSHOT_ROLES = ("examples", "nodes", "neighbors", "macro")
PERIOD_METRICS = ("auc", "gauc", "logloss")
# MLflow's log_batch limits per call.
MAX_PARAMS, MAX_TAGS, MAX_METRICS = 100, 100, 1000
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
log = logging.getLogger(__name__)


class TrackingError(RuntimeError):
    """The run cannot be tracked (mlflow not installed); the message says what to do."""


def resolve_tracking_uri(flag: Optional[str]) -> str:
    """The store a run logs to: the flag, else $MLFLOW_TRACKING_URI, else `databricks` on a
    Databricks cluster (its workspace server, as mlflow's own default there), else ./mlruns."""
    if flag:
        return flag
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    if os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        return "databricks"
    return Path(DEFAULT_STORE).resolve().as_uri()


def _is_file_store(uri: str) -> bool:
    scheme = urlparse(uri).scheme
    return scheme in ("", "file") or len(scheme) == 1  # a drive letter is no scheme


class Tracker:
    """One open MLflow run, written through the client API (no global active run, so a comparison's
    parent and its children can be open at once)."""

    def __init__(self, client: Any, run_id: str):
        self.client = client
        self.run_id = run_id

    @classmethod
    def start(cls, run: RunConfig, name: str, tags: Mapping[str, str], parent: Optional[str] = None) -> "Tracker":
        try:
            from mlflow.exceptions import MlflowException
            from mlflow.tracking import MlflowClient
        except ImportError as e:
            raise TrackingError("MLflow tracking is on but mlflow is not installed: install the pinned client "
                                "(pip install -r requirements/tracking.txt) or pass --no-tracking") from e
        uri = resolve_tracking_uri(run.tracking_uri)
        if _is_file_store(uri):
            # mlflow 3 refuses the file store unless asked: the database store needs SQLAlchemy, which
            # the client-only mlflow-skinny lacks. MLFLOW_ALLOW_FILE_STORE=false set by the user still wins.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        client = MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name(run.experiment)
        if experiment is None:
            try:
                experiment_id = client.create_experiment(run.experiment)
            except MlflowException:  # another process created it meanwhile
                existing = client.get_experiment_by_name(run.experiment)
                if existing is None:  # it was not that: the creation's own error
                    raise
                experiment_id = existing.experiment_id
        else:
            experiment_id = experiment.experiment_id
        all_tags = {**tags, **({PARENT_TAG: parent} if parent else {})}
        created = client.create_run(experiment_id, run_name=name, tags=all_tags)
        log.info("MLflow run %s (%s) in experiment %r at %s", created.info.run_id, name, run.experiment, uri)
        return cls(client, created.info.run_id)

    def log_params(self, params: Mapping[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(items), MAX_PARAMS):
            self.client.log_batch(self.run_id, params=items[i:i + MAX_PARAMS])

    def set_tags(self, tags: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, v) for k, v in tags.items()]
        for i in range(0, len(items), MAX_TAGS):
            self.client.log_batch(self.run_id, tags=items[i:i + MAX_TAGS])

    def log_metrics(self, values: Iterable[tuple[str, float, int, int]]) -> None:
        """(key, value, step, timestamp in ms) rows; NaN values (n/a cells) are left out."""
        from mlflow.entities import Metric

        items = [Metric(k, float(v), ts, step) for k, v, step, ts in values
                 if v is not None and not math.isnan(float(v))]
        for i in range(0, len(items), MAX_METRICS):
            self.client.log_batch(self.run_id, metrics=items[i:i + MAX_METRICS])

    def log_files(self, paths: Iterable[Path]) -> None:
        for path in paths:
            if Path(path).is_file():
                self.client.log_artifact(self.run_id, str(path))

    def end(self, status: str) -> None:
        self.client.set_terminated(self.run_id, status=status)


@contextmanager
def tracked(run: RunConfig, name: str, tags: Mapping[str, str], parent: Optional[str] = None,
            enabled: bool = True) -> Iterator[Optional[Tracker]]:
    """An MLflow run around a block, FAILED if the block raises; None when tracking is off or not
    `enabled` (ranks other than 0)."""
    if not (run.tracking and enabled):
        yield None
        return
    tracker = Tracker.start(run, name, tags, parent)
    try:
        yield tracker
    except BaseException:
        tracker.end("FAILED")
        raise
    tracker.end("FINISHED")


def config_params(cfg: TrainConfig) -> dict[str, str]:
    """Every config field as `<section>.<field>` -> its value as text (lists as JSON-like lists)."""
    return {f"{section}.{name}": str(value) for section, fields in cfg.to_dict().items()
            for name, value in fields.items()}


def snapshot_tags(lake: str, etl_run: Optional[str], snapshots: Mapping[str, Any]) -> dict[str, str]:
    """grec.lake, grec.run_id and grec.table_version.<table> for each pinned table of
    `snapshots` (TrainingSnapshots.describe()). Without --run, the ETL run is the one the manifest
    records as writing the examples version; no grec.run_id when it records none."""
    tables = {snapshots[role]["table"]: int(snapshots[role]["version"]) for role in SNAPSHOT_ROLES
              if role in snapshots}
    tags = {"grec.lake": normalize_root(lake),
            **{f"grec.table_version.{table}": str(version) for table, version in tables.items()}}
    if etl_run is None and "examples" in snapshots:
        examples = snapshots["examples"]
        etl_run = written_by(lake, examples["table"], int(examples["version"]))
    if etl_run is not None:
        tags["grec.run_id"] = etl_run
    else:
        log.warning("no ETL run id for the MLflow tags: the lake's manifest does not record who wrote %s",
                    snapshots.get("examples", {}).get("table"))
    return tags


def _day_ms(day: dt.date) -> int:
    return int((dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc) - EPOCH).total_seconds() * 1000)


def period_metrics(frame: pd.DataFrame, columns: Mapping[str, str], key_parts: Sequence[str]) -> list[tuple]:
    """Metric rows of a per-period table: for every row and every `columns` entry (frame column ->
    metric name), key `<name>/<part>/...` over `key_parts` columns, step = the period's index in the
    table's sorted dates, timestamp = the period's first day."""
    steps = {d: i for i, d in enumerate(sorted(frame["date"].unique()))}
    rows = []
    for r in frame.to_dict("records"):
        suffix = "/".join(_key(r[p]) for p in key_parts)
        for column, name in columns.items():
            rows.append((f"{name}/{suffix}", r[column], steps[r["date"]], _day_ms(r["date"])))
    return rows


def _key(text: str) -> str:
    """A model label or task as a metric key part: ablation labels' ':' is not allowed everywhere."""
    return str(text).replace(":", "-")


def fit_tags(cfg: TrainConfig, evaluate: bool) -> dict[str, str]:
    """The tags known before training: what runs, and where its outputs go."""
    return {"grec.command": "train", "grec.phase": "evaluation" if evaluate else "selection",
            "grec.model": cfg.model.name.value, "grec.label": cfg.run.label or cfg.model.name.value,
            "grec.seed": str(cfg.run.seed), "grec.out": str(Path(cfg.run.out).resolve())}


def fit_run_name(cfg: TrainConfig, evaluate: bool) -> str:
    label = cfg.run.label or cfg.model.name.value
    return f"{label} seed {cfg.run.seed}" + ("" if evaluate else " (selection)")


def log_fit(tracker: Tracker, cfg: TrainConfig, result: "TrainResult") -> None:
    """Everything a finished training run has to tell: see the module doc."""
    from training.comparison_tables import over_periods

    tracker.log_params(config_params(cfg))
    tracker.set_tags({**snapshot_tags(cfg.data.lake, cfg.data.run, result.snapshots), "grec.device": result.device})
    now = int(time.time() * 1000)
    rows: list[tuple] = []
    if not result.metrics.empty:
        rows += period_metrics(result.metrics, {m: m for m in PERIOD_METRICS}, ["task"])
        overall = over_periods(result.metrics.assign(seed=cfg.run.seed))
        rows += [(f"overall/{m}/{_key(r['task'])}", r[m], 0, now) for r in overall.to_dict("records")
                 for m in PERIOD_METRICS]
    if result.validation is not None:
        rows += [(f"val/{m}/{_key(r['task'])}", r[m], int(r["epoch"]) + 1, now)
                 for r in result.validation.to_dict("records") for m in ("auc", "logloss")]
    if len(result.log):
        rows += [("train/loss", loss, int(epoch) + 1, now)
                 for epoch, loss in result.log.groupby("epoch")["loss"].mean().items()]
    if result.best_epoch is not None:
        rows += [("best_epoch", result.best_epoch + 1, 0, now), ("best_val_auc", result.best_score, 0, now)]
    rows += [(name, getattr(result, name), 0, now)
             for name in ("examples_per_s", "train_seconds", "eval_seconds", "load_seconds")]
    tracker.log_metrics(rows)
    tracker.log_files(result.outputs.values())


def compare_params(models: Sequence[str], seeds: int, baseline: str, grid: str) -> dict[str, str]:
    return {"compare.models": ",".join(models), "compare.seeds": str(seeds), "compare.baseline": baseline,
            "compare.grid": grid}


def log_comparison(tracker: Tracker, base: TrainConfig, result: "Comparison", paths: Mapping[str, Path]) -> None:
    """A comparison's parent run: the base config, the snapshot tags, mean AUC and lift per model,
    task and period, and the comparison's files (see the module doc)."""
    tracker.log_params(config_params(base))
    tracker.set_tags(snapshot_tags(base.data.lake, base.data.run, result.snapshots))
    now = int(time.time() * 1000)
    columns = {"auc_mean": "auc_mean", "lift_pct": "lift_pct"}
    rows = period_metrics(result.days, columns, ["model", "task"])
    rows += [(f"overall/{name}/{_key(r['model'])}/{_key(r['task'])}", r[column], 0, now)
             for r in result.overall.to_dict("records") for column, name in columns.items()]
    tracker.log_metrics(rows)
    tracker.log_files(paths.values())
