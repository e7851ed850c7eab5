"""Typed training configuration: one declaration per parameter (default + doc), CLI-overridable.

Every field of the four sections becomes a flag `--<section>.<field>` (e.g. `--model.id_dim 64`),
and, when its name is unique across sections, also a flat flag (`--id-dim 64`, `--epochs 2`).
A field may name its own flat flag (ModelConfig.name is `--model`).

    >>> cfg = TrainConfig()
    >>> cfg.model.encoder.value, cfg.optim.gradnorm_alpha
    ('lightgcn', 1.0)
"""
from __future__ import annotations

import argparse
import dataclasses
import enum
import typing
from dataclasses import dataclass, field
from typing import Any, Optional

from schemas.params import ConfigError, argument_kwargs, base_type, coerce, param, plain
from schemas.split import EVAL, TRAIN, VAL


class LoaderBackend(str, enum.Enum):
    PETASTORM = "petastorm"
    ARROW = "arrow"


class Residency(str, enum.Enum):
    """Where a split's rows live during training (training.data.resident)."""
    AUTO = "auto"        # device when they fit in half the free device memory, else host
    DEVICE = "device"    # decoded once into device memory
    HOST = "host"        # decoded once into pinned host memory, streamed to the device in chunks
    STREAM = "stream"    # read from Parquet every epoch (the streaming readers)


class ModelName(str, enum.Enum):
    E2E_GREC = "e2e_grec"
    LTR = "ltr"
    TWO_STAGE = "two_stage"
    SHARED_BOTTOM = "shared_bottom"
    MMOE = "mmoe"
    PLE = "ple"
    MGOE = "mgoe"


class EncoderKind(str, enum.Enum):
    LIGHTGCN = "lightgcn"
    GRAPHSAGE = "graphsage"


class FusionKind(str, enum.Enum):
    TWO_LEVEL = "two_level"
    BOTTOM_ONLY = "bottom_only"


class LossWeighting(str, enum.Enum):
    GRADNORM = "gradnorm"
    FIXED = "fixed"


class EvalPeriod(str, enum.Enum):
    """The cell of the evaluation table (training.metrics)."""
    AUTO = "auto"      # the finest whose typical cell holds enough rows
    DAY = "day"
    WEEK = "week"      # Monday to Sunday
    MONTH = "month"


class DeviceKind(str, enum.Enum):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


class Launcher(str, enum.Enum):
    """Who starts the training processes (training.launch)."""
    NONE = "none"    # this process trains: alone, or as one rank when torchrun started it
    SPARK = "spark"  # pyspark's TorchDistributor starts --num-processes ranks on the Spark driver


@dataclass
class DataConfig:
    lake: str = param("lake", "lake root: a path or a URI (file:, s3:, ...)")
    table: str = param("gold.examples", "the examples table (layer.table under the lake root)")
    nodes_table: str = param("gold.nodes", "the node table (degrees and side features of every node)")
    run: Optional[str] = param(None, "read the tables written by this run id (from the _runs manifest); under "
                                     "torchrun spell it --run-id (torchrun takes --run for its --run-path)",
                               aliases=("run-id",))
    version: Optional[int] = param(None, "read this Delta version of the examples table")
    timestamp: Optional[str] = param(None, "read the examples table as of this time (ISO 8601, UTC)")
    nodes_version: Optional[int] = param(
        None, "pin the node table version; default: the version the examples were built from (manifest)")
    neighbors_table: str = param("gold.neighbors", "the sampled neighbour lists (held on the device as a node-indexed "
                                                   "table; read unless the rows carry their own arrays and "
                                                   "--residency stream)")
    neighbors_version: Optional[int] = param(
        None, "pin the neighbour table version; default: the version the examples were built from (manifest)")
    macro_table: str = param("gold.macro", "MGOE's macro-graph table (read by --model mgoe only)")
    macro_version: Optional[int] = param(
        None, "pin the macro table version; default: the version the examples' run wrote (manifest)")
    tasks: tuple[str, ...] = param((), "task labels, when the table has no grec.labels property")
    loader: LoaderBackend = param(LoaderBackend.ARROW, "reader backend: decodes the rows once (resident) or every "
                                                       "epoch (--residency stream); petastorm needs pyarrow <= 14")
    residency: Residency = param(Residency.AUTO, "where the examples live: device (decoded once into device memory), "
                                                 "host (pinned host memory, streamed in chunks), stream (read from "
                                                 "Parquet every epoch), auto (device when they fit)")
    shuffle: bool = param(True, "shuffle the training rows every epoch (off: stored order, e.g. to compare loaders)")
    batch_size: int = param(1024, "training examples per step (per rank)")
    eval_batch_size: int = param(8192, "examples per evaluation batch")
    shuffle_buffer: int = param(65536, "rows mixed by the shuffling buffer (0: no row shuffling)")
    workers: int = param(2, "reader threads: row groups decoded in parallel")
    train_split: str = param(TRAIN, "value of the split partition used for training")
    eval_split: str = param(EVAL, "value of the split partition evaluated period by period")
    val_split: str = param(VAL, "value of the split partition validated after every epoch (early stopping, "
                                  "model selection); a table without it trains without validation")
    mask_target_edge: bool = param(True, "leave each example's own user-item edge out of its neighbour lists "
                                         "(off: the target-edge leak of training rows stays in)")


@dataclass
class ModelConfig:
    name: ModelName = param(ModelName.E2E_GREC, "model to train", flag="model")
    id_dim: int = param(32, "node ID embedding width (part of X_v)")
    feature_dim: int = param(32, "width of the side-feature projection (part of X_v)")
    encoder: EncoderKind = param(EncoderKind.LIGHTGCN, "graph encoder over the sampled 1-hop lists")
    layers: int = param(1, "propagation layers K (the examples carry 1-hop lists, so K = 1)")
    gfae: bool = param(True, "add the GFAE self-supervised loss L_SSL (off: the no-GFAE ablation)")
    fusion: FusionKind = param(FusionKind.TWO_LEVEL, "two-level fusion or the bottom-only ablation")
    shared_hidden: tuple[int, ...] = param((256, 128), "shared-bottom MLP widths (F_shared)")
    ltr_dim: int = param(32, "width of the task-side block F_LTR (domain and weekday)")
    gnn_dim: int = param(64, "width of the graph block F_GNN")
    attention_dim: int = param(32, "token width of the upper fusion's self-attention")
    attention_heads: int = param(8, "heads of the upper fusion's self-attention")
    tower_hidden: tuple[int, ...] = param((64,), "hidden widths of each task tower")
    dropout: float = param(0.0, "dropout in the MLPs")
    experts: int = param(4, "MMoE's experts; MGOE's shared experts")
    expert_hidden: tuple[int, ...] = param((128, 64), "widths of every expert MLP (MMoE, PLE, MGOE); the last is "
                                                      "the expert output width")
    ple_levels: int = param(2, "PLE extraction levels")
    ple_shared_experts: int = param(1, "PLE shared experts per level")
    ple_task_experts: int = param(1, "PLE task-specific experts per task per level")
    macro_dim: int = param(32, "width of MGOE's learnable macro-node embeddings")
    macro_tau: float = param(1.3, "MGOE macro weight temperature: softmax(log(1 + count) / tau)")
    macro_exclude_own: bool = param(True, "MGOE: while training, take each row's own labels out of the macro "
                                          "counts it reads (they count every training positive, so left in they "
                                          "carry the label, as an unmasked target edge does)")
    pretrain_epochs: int = param(20, "two_stage: BPR epochs of the LightGCN pretraining")
    pretrain_lr: float = param(0.01, "two_stage: Adam learning rate of the LightGCN pretraining")
    pretrain_l2: float = param(1e-4, "two_stage: L2 weight on the batch's layer-0 embeddings in the BPR loss")
    pretrain_task: Optional[str] = param(None, "two_stage: the label whose positives are BPR's positive pairs "
                                               "(default: the first task)")
    warm_start: bool = param(False, "e2e_grec: start the ID embeddings from the two-stage LightGCN + BPR "
                                    "pretraining (--pretrain-*), then train end to end")

    @property
    def ssl(self) -> bool:
        """Whether the model adds the self-supervised loss L_SSL (E2E-GRec with GFAE only)."""
        return self.name is ModelName.E2E_GREC and self.gfae


@dataclass
class OptimConfig:
    lr: float = param(1e-3, "Adam learning rate of the model")
    weight_decay: float = param(0.0, "Adam weight decay of the dense parameters")
    loss_weighting: LossWeighting = param(LossWeighting.GRADNORM, "GradNorm or fixed loss weights (ablation); "
                                                                  "e2e_grec only, the other models have one loss")
    ssl_weight: float = param(1.0, "w_SSL: fixed weight, or GradNorm's initial weight")
    ltr_weight: float = param(1.0, "w_LTR: fixed weight, or GradNorm's initial weight")
    gradnorm_alpha: float = param(1.0, "GradNorm asymmetry alpha (docs/method.md §GradNorm)")
    gradnorm_lr: float = param(0.025, "learning rate of GradNorm's own Adam over the loss weights")
    sparse_embeddings: bool = param(
        False, "sparse gradients + SparseAdam for the node ID table (large graphs; not with DDP on NCCL)")


@dataclass
class RunConfig:
    label: Optional[str] = param(None, "the model's name in the metrics table (default: the model name)")
    out: str = param("out", "output folder: metrics.parquet, metrics.md, auc_by_day.png, run.json, checkpoint.pt")
    epochs: int = param(1, "passes over the training split (at most: see --patience)")
    patience: int = param(2, "stop after this many epochs without a better validation AUC (0: never early); "
                             "the best epoch's weights are restored before evaluation")
    eval_period: EvalPeriod = param(EvalPeriod.AUTO, "cell of the evaluation table: day, week, month, or auto "
                                                     "(the finest whose typical cell holds 1,000 rows)")
    seed: int = param(0, "seed of weights, shuffling and sampling")
    device: DeviceKind = param(DeviceKind.AUTO, "cpu, cuda, or auto (cuda when available)")
    amp: bool = param(True, "bf16 autocast on CUDA (ignored on CPU)")
    threads: Optional[int] = param(None, "torch CPU threads (default: torch's choice; 1 helps on busy machines)")
    progress: bool = param(True, "progress bar with examples/s")
    log_every: int = param(50, "steps between loss/weight log records")
    max_steps: Optional[int] = param(None, "stop each epoch after this many steps (smoke tests, benchmarks)")
    cuda_graphs: bool = param(True, "capture the training step in a CUDA graph (resident data, one GPU; off: eager)")
    checkpoint: bool = param(True, "save checkpoint.pt after every epoch")
    resume: bool = param(False, "continue from OUT/checkpoint.pt (same snapshot and config required)")
    launcher: Launcher = param(Launcher.NONE, "none: this process trains (one rank of it under torchrun); spark: "
                                              "pyspark's TorchDistributor starts --num-processes DDP ranks on the "
                                              "Spark driver, as from a Databricks notebook (docs/training.md)")
    num_processes: int = param(1, "DDP ranks --launcher spark starts (one GPU each on CUDA)")
    tracking: bool = param(True, "log the run to MLflow: parameters, per-period metrics, output files, snapshot "
                                 "tags (docs/training.md, Tracking runs with MLflow)")
    tracking_uri: Optional[str] = param(None, "MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else "
                                              "'databricks' on a Databricks cluster, else the file store ./mlruns)")
    experiment: str = param("grec", "MLflow experiment the runs go to (on Databricks a workspace path, "
                                    "e.g. /Users/me@example.com/grec)")


SECTIONS: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "optim": OptimConfig, "run": RunConfig}


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def validate(self) -> "TrainConfig":
        d, m, o, r = self.data, self.model, self.optim, self.run
        pins = [n for n, v in (("--run", d.run), ("--version", d.version), ("--timestamp", d.timestamp))
                if v is not None]
        if len(pins) > 1:
            raise ConfigError(f"give at most one of --run, --version, --timestamp (got {', '.join(pins)})")
        for name, value in (("--batch-size", d.batch_size), ("--eval-batch-size", d.eval_batch_size),
                            ("--epochs", r.epochs), ("--id-dim", m.id_dim), ("--feature-dim", m.feature_dim),
                            ("--log-every", r.log_every), ("--num-processes", r.num_processes)):
            if value < 1:
                raise ConfigError(f"{name} must be >= 1, got {value}")
        if r.num_processes > 1 and r.launcher is Launcher.NONE:
            raise ConfigError(f"--num-processes {r.num_processes} needs --launcher spark (under torchrun the ranks "
                              "come from --nproc-per-node)")
        if r.patience < 0:
            raise ConfigError(f"--patience must be >= 0, got {r.patience}")
        if m.layers != 1:
            raise ConfigError(f"--layers {m.layers}: gold.examples carries 1-hop neighbour lists only, so the "
                              "sampled encoder has exactly K = 1 layer")
        if m.attention_dim % m.attention_heads:
            raise ConfigError(f"--attention-dim {m.attention_dim} must be divisible by --attention-heads "
                              f"{m.attention_heads}")
        if m.name is ModelName.E2E_GREC and o.loss_weighting is LossWeighting.GRADNORM and not m.gfae:
            raise ConfigError("GradNorm balances L_SSL against L_LTR; with --no-gfae there is one loss: "
                              "add --loss-weighting fixed")
        for name, value in (("--experts", m.experts), ("--ple-levels", m.ple_levels),
                            ("--ple-task-experts", m.ple_task_experts), ("--macro-dim", m.macro_dim),
                            ("--pretrain-epochs", m.pretrain_epochs)):
            if value < 1:
                raise ConfigError(f"{name} must be >= 1, got {value}")
        if m.warm_start and m.name is not ModelName.E2E_GREC:
            raise ConfigError(f"--warm-start applies to e2e_grec only, not {m.name.value}")
        if m.ple_shared_experts < 0:
            raise ConfigError(f"--ple-shared-experts must be >= 0, got {m.ple_shared_experts}")
        if not m.expert_hidden:
            raise ConfigError("--expert-hidden needs at least one width (the expert output width)")
        if m.macro_tau <= 0 or m.pretrain_lr <= 0 or m.pretrain_l2 < 0:
            raise ConfigError("--macro-tau and --pretrain-lr must be > 0, --pretrain-l2 >= 0")
        if o.ssl_weight <= 0 or o.ltr_weight <= 0:
            raise ConfigError("--ssl-weight and --ltr-weight must be > 0")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {name: {f.name: plain(getattr(getattr(self, name), f.name))
                       for f in dataclasses.fields(cls)} for name, cls in SECTIONS.items()}

    @classmethod
    def from_dict(cls, values: dict[str, dict[str, Any]]) -> "TrainConfig":
        sections = {}
        for name, section_cls in SECTIONS.items():
            hints = typing.get_type_hints(section_cls)
            given = values.get(name, {})
            unknown = set(given) - {f.name for f in dataclasses.fields(section_cls)}
            if unknown:
                raise ConfigError(f"unknown {name} settings: {sorted(unknown)}")
            sections[name] = section_cls(**{k: coerce(hints[k], v) for k, v in given.items()})
        return cls(**sections)


def _flat_flags() -> dict[tuple[str, str], str]:
    """(section, field) -> flat flag, for names unique across sections (or given explicitly)."""
    counts: dict[str, int] = {}
    for cls in SECTIONS.values():
        for f in dataclasses.fields(cls):
            name = f.metadata.get("flag") or f.name
            counts[name] = counts.get(name, 0) + 1
    out = {}
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            name = f.metadata.get("flag") or f.name
            if counts[name] == 1:
                out[(section, f.name)] = "--" + name.replace("_", "-")
    return out


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare every config field as a flag (defaults are left to the dataclasses)."""
    flat = _flat_flags()
    for section, cls in SECTIONS.items():
        group = parser.add_argument_group(section)
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            flags = [flat[(section, f.name)]] if (section, f.name) in flat else []
            flags += [f"--{a}" for a in f.metadata.get("aliases", ())]
            flags.append(f"--{section}.{f.name}")
            kwargs = {**argument_kwargs(f, hint), "dest": f"{section}.{f.name}"}
            group.add_argument(*flags, **kwargs)


def field_path(name: str) -> tuple[str, str]:
    """(section, field) of a setting named `section.field` or by its flat flag name (`lr`,
    `weight-decay`, `model`); ConfigError for an unknown or ambiguous name."""
    section, _, rest = name.partition(".")
    if rest:
        if section in SECTIONS and rest in {f.name for f in dataclasses.fields(SECTIONS[section])}:
            return section, rest
        raise ConfigError(f"unknown setting {name!r}")
    flag = "--" + name.replace("_", "-")
    for path, flat in _flat_flags().items():
        if flat == flag:
            return path
    raise ConfigError(f"unknown setting {name!r} (or one that needs its section: data., model., optim., run.)")


def parse_setting(path: tuple[str, str], text: str) -> Any:
    """A setting's value from text, as its declared type (numbers, booleans, enums, strings)."""
    hint = typing.get_type_hints(SECTIONS[path[0]])[path[1]]
    base = base_type(hint)
    name = ".".join(path)
    if base is tuple:
        raise ConfigError(f"{name} is a list setting: it cannot be searched over")
    try:
        if base is bool:
            if text.lower() not in ("true", "false"):
                raise ValueError(text)
            return text.lower() == "true"
        return base(text)
    except ValueError:
        raise ConfigError(f"{name}: {text!r} is not a valid {getattr(base, '__name__', base)}") from None


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The config the flags describe: dataclass defaults overridden by every flag given."""
    given: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for dest, value in vars(args).items():
        section, _, name = dest.partition(".")
        if section in SECTIONS and name:
            given[section][name] = value
    return TrainConfig.from_dict(given).validate()
