"""Data sources: real and synthetic datasets mapped onto grec's input contract
(docs/method.md §Contract).

    >>> src = load_source(spark, "movielens-100k")                          # doctest: +SKIP
    >>> src = load_source(spark, "synthetic", rows=100_000, seed=1)         # doctest: +SKIP
    >>> src = load_source(spark, "contract", interactions="logs.csv", labels=("click",))  # doctest: +SKIP

On the command line, `add_source_arguments(parser)` declares `--source NAME` and every source's
flags; `load_source_from_args(spark, args)` builds the chosen one.
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable

from pyspark.sql import SparkSession

from etl.sources import contract, kuairand, movielens, synthetic
from etl.sources.base import (SOURCE_COL, SourceData, SourceError, SourceWarning, TsUnit, flag_dest,
                              flagged_fields)


@dataclass(frozen=True)
class SourceSpec:
    """A registered source: its options dataclass and loader. Calling it loads the source."""

    name: str
    options: type
    loader: Callable[[SparkSession, Any], SourceData]
    doc: str

    def make_options(self, **values: Any) -> Any:
        known = {f.name for f in dataclasses.fields(self.options)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SourceError(f"source {self.name} has no option(s) {unknown}; its options: {sorted(known)}")
        return self.options(**values)

    def __call__(self, spark: SparkSession, **options: Any) -> SourceData:
        return self.loader(spark, self.make_options(**options))


SOURCES: dict[str, SourceSpec] = {
    spec.name: spec for spec in (
        SourceSpec(movielens.NAME, movielens.MovieLensOptions, movielens.load,
                   "real MovieLens-100K ratings (like = rating >= 4, love = rating 5)"),
        SourceSpec(kuairand.NAME, kuairand.KuaiRandOptions, kuairand.load,
                   "KuaiRand-format impression logs (click, long_view, like, follow)"),
        SourceSpec(contract.NAME, contract.ContractOptions, contract.load,
                   "CSV or Parquet files already in the input contract's columns"),
        SourceSpec(synthetic.NAME, synthetic.SyntheticOptions, synthetic.load,
                   "deterministic synthetic impressions with planted structure (click, long_view, like)"),
    )
}


def load_source(spark: SparkSession, name: str, **options: Any) -> SourceData:
    """Load source `name` with typed options (the fields of its options dataclass)."""
    if name not in SOURCES:
        raise SourceError(f"unknown source {name!r}; sources: {sorted(SOURCES)}")
    return SOURCES[name](spark, **options)


def add_source_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """`--source NAME` and the flags of every source (a flag two sources share is declared once)."""
    group = parser.add_argument_group("data source")
    group.add_argument("--source", required=required, choices=sorted(SOURCES),
                       help="; ".join(f"{s.name}: {s.doc}" for s in SOURCES.values()))
    add_option_arguments(group, *SOURCES.values())


def add_option_arguments(group: Any, *specs: SourceSpec) -> None:
    """Declare the flags of `specs`' options on a parser or argument group (values parsed later)."""
    by_flag: dict[str, list[tuple[str, dataclasses.Field]]] = {}
    for spec in specs:
        for f in flagged_fields(spec.options):
            by_flag.setdefault(f.metadata["flag"], []).append((spec.name, f))
    for flag, uses in by_flag.items():
        helps = [(name, _with_default(f)) for name, f in uses]
        text = helps[0][1] if len(specs) == 1 else "; ".join(f"{name}: {h}" for name, h in helps)
        if all(f.metadata["parse"] is bool for _, f in uses):
            group.add_argument(flag, dest=flag_dest(flag), action="store_true", default=None, help=text)
        else:
            group.add_argument(flag, dest=flag_dest(flag), default=None, metavar=flag.lstrip("-").upper()
                               .replace("-", "_"), help=text)


def _with_default(f: dataclasses.Field) -> str:
    value = f.default.value if isinstance(f.default, Enum) else f.default
    shown = value not in (None, (), False) and "default" not in f.metadata["help"]
    return f.metadata["help"] + (f" (default {value})" if shown else "")


def options_from_args(spec: SourceSpec, args: argparse.Namespace) -> Any:
    """`spec`'s options from parsed flags; a flag given that belongs only to other sources is an error."""
    mine = {f.metadata["flag"] for f in flagged_fields(spec.options)}
    values: dict[str, Any] = {}
    for f in flagged_fields(spec.options):
        raw = getattr(args, flag_dest(f.metadata["flag"]), None)
        if raw is None:
            continue
        try:
            values[f.name] = raw if f.metadata["parse"] is bool else f.metadata["parse"](raw)
        except ValueError as e:
            parse = f.metadata["parse"]
            is_enum = isinstance(parse, type) and issubclass(parse, Enum)
            choices = f" (one of {[m.value for m in parse]})" if is_enum else ""
            raise SourceError(f"{f.metadata['flag']} {raw!r}: {e}{choices}") from None
    stray = sorted({f.metadata["flag"] for other in SOURCES.values() for f in flagged_fields(other.options)
                    if getattr(args, flag_dest(f.metadata["flag"]), None) is not None} - mine)
    if stray:
        raise SourceError(f"flag(s) {', '.join(stray)} do not apply to --source {spec.name}; its flags: "
                          f"{sorted(mine)}")
    return spec.make_options(**values)


def load_source_from_args(spark: SparkSession, args: argparse.Namespace) -> SourceData:
    """The source chosen by `--source`, with its flags (see `add_source_arguments`)."""
    spec = SOURCES[args.source]
    return spec.loader(spark, options_from_args(spec, args))


__all__ = ["SOURCES", "SOURCE_COL", "SourceData", "SourceError", "SourceSpec", "SourceWarning", "TsUnit",
           "add_option_arguments", "add_source_arguments", "load_source", "load_source_from_args",
           "options_from_args"]
