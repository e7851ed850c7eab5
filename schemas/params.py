"""One declaration per parameter: its default, type, documentation and bounds, in a dataclass field.

The trainer's configuration (training.config) and every ETL stage's parameters (NeighborParams,
SwingParams, SplitPolicy, MacroParams, IngestConfig, ExamplesConfig) declare their fields with
`param()`. From that one declaration come the command-line flags (`add_param_arguments`, with the
default in the help), the parsing of given flags (`given_params`, `params_from_args`) and the
bounds check (`check_bounds`), so a default or a limit is written once. JVM-free: the trainer and
notebooks import it without Spark.

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Sampling:
    ...     k: int = param(100, "neighbours per node", at_least=1)
    ...     beta: float = param(0.5, "sampling exponent", at_least=0)
    ...     def __post_init__(self) -> None:
    ...         check_bounds(self)
    >>> Sampling(k=0)
    Traceback (most recent call last):
    ...
    schemas.params.ParamError: k must be >= 1, got 0 (flag --k)
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_param_arguments(parser, Sampling, flags={"beta": "sampling-beta"})
    >>> params_from_args(Sampling, parser.parse_args(["--sampling-beta", "1"]), flags={"beta": "sampling-beta"})
    Sampling(k=100, beta=1.0)
    >>> params_from_args(Sampling, parser.parse_args(["--sampling-beta", "-1"]), flags={"beta": "sampling-beta"})
    Traceback (most recent call last):
    ...
    schemas.params.ConfigError: --sampling-beta must be >= 0, got -1.0
"""
from __future__ import annotations

import argparse
import dataclasses
import enum
import typing
from typing import Any, Mapping, Optional, Union

# words that switch off an optional cap on the command line (`--top-k none`)
NONE_WORDS = ("none", "off", "0")


class ConfigError(ValueError):
    """A parameter value or combination is invalid; the message names the flag."""


class ParamError(ConfigError):
    """A field's value is out of its declared bounds; `field` names it (flags are named by the caller)."""

    def __init__(self, field: str, problem: str, flag: str) -> None:
        super().__init__(f"{field} {problem} (flag {flag})")
        self.field, self.problem = field, problem


def param(default: Any, doc: str, *, flag: Optional[str] = None, aliases: tuple[str, ...] = (),
          at_least: Optional[float] = None, above: Optional[float] = None,
          at_most: Optional[float] = None, below: Optional[float] = None,
          none_word: bool = False) -> Any:
    """A field with its documentation (shown in --help), its own flag name, aliases and bounds.

    Bounds are inclusive (`at_least`, `at_most`) or exclusive (`above`, `below`); None values are
    never out of bounds. `none_word`: the flag also takes 'none'/'off'/'0' for None (an optional cap).
    """
    bounds = {"at_least": at_least, "above": above, "at_most": at_most, "below": below}
    return dataclasses.field(default=default, metadata={
        "doc": doc, "flag": flag, "aliases": aliases, "none_word": none_word,
        "bounds": {k: v for k, v in bounds.items() if v is not None}})


def declared(cls: type) -> list[dataclasses.Field]:
    """The fields of `cls` declared with param() (others are filled in by code, not by flags)."""
    return [f for f in dataclasses.fields(cls) if "doc" in f.metadata]


def default_flag(f: dataclasses.Field) -> str:
    return "--" + (f.metadata.get("flag") or f.name).replace("_", "-")


def bound_problem(f: dataclasses.Field, value: Any) -> Optional[str]:
    """'must be >= 1, got 0' when `value` breaks `f`'s bounds, else None (NaN breaks every bound)."""
    b = f.metadata.get("bounds", {})
    if value is None or not b:
        return None
    lo = ("[", b["at_least"], value >= b["at_least"]) if "at_least" in b else \
        ("(", b["above"], value > b["above"]) if "above" in b else None
    hi = ("]", b["at_most"], value <= b["at_most"]) if "at_most" in b else \
        (")", b["below"], value < b["below"]) if "below" in b else None
    if all(ok for _, _, ok in filter(None, (lo, hi))):
        return None
    if lo and hi:
        return f"must be in {lo[0]}{lo[1]}, {hi[1]}{hi[0]}, got {value}"
    sign, limit, _ = lo or hi  # type: ignore[misc]
    op = {"[": ">=", "(": ">", "]": "<=", ")": "<"}[sign]
    return f"must be {op} {limit}, got {value}"


def check_bounds(obj: Any) -> None:
    """ParamError on the first field of `obj` out of its declared bounds (call in __post_init__).

    The message names the field and its flag, so it reads right from Python and from the command
    line (`n_clusters must be >= 2, got 1 (flag --clusters)`); commands name only the flag.
    """
    for f in declared(type(obj)):
        problem = bound_problem(f, getattr(obj, f.name))
        if problem:
            raise ParamError(f.name, problem, default_flag(f))


# ---- types ------------------------------------------------------------------------------------
def base_type(hint: Any) -> Any:
    """The runtime type behind Optional[X] / tuple[X, ...] / X."""
    origin = typing.get_origin(hint)
    if origin is Union:
        return base_type([a for a in typing.get_args(hint) if a is not type(None)][0])
    if origin is tuple:
        return tuple
    return hint


def element_type(hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin is Union:
        return element_type([a for a in typing.get_args(hint) if a is not type(None)][0])
    if origin is tuple:
        return typing.get_args(hint)[0]
    return hint


def plain(value: Any) -> Any:
    """A value as JSON and --help show it (enums by value, tuples as lists)."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


def coerce(hint: Any, value: Any) -> Any:
    """A JSON/argparse value back to the field's declared type."""
    if value is None:
        return None
    base = base_type(hint)
    if isinstance(base, type) and issubclass(base, enum.Enum):
        return base(value)
    if base is tuple:
        return tuple(value)
    return value


def _or_none(parse: Any) -> Any:
    def parse_or_none(text: str) -> Any:
        return None if text.lower() in NONE_WORDS else parse(text)
    parse_or_none.__name__ = getattr(parse, "__name__", "value")  # argparse names the type in its errors
    return parse_or_none


def argument_kwargs(f: dataclasses.Field, hint: Any) -> dict[str, Any]:
    """argparse keywords for field `f` (type, action, choices, help with the default); no default of
    its own (argparse.SUPPRESS), so only flags given reach the namespace."""
    default = plain(f.default)
    if f.metadata.get("none_word"):
        default = f"{default}; 'none' = no limit"
    kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "help": f"{f.metadata['doc']} (default: {default})"}
    base, elem = base_type(hint), element_type(hint)
    if base is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    elif isinstance(base, type) and issubclass(base, enum.Enum):
        kwargs.update(type=base, choices=list(base), metavar="{" + ",".join(e.value for e in base) + "}")
    elif base is tuple:
        kwargs.update(type=elem, nargs="*", metavar=f.name.upper())
    else:
        kwargs.update(type=_or_none(base) if f.metadata.get("none_word") else base, metavar=f.name.upper())
    return kwargs


# ---- flags ------------------------------------------------------------------------------------
def _flag(f: dataclasses.Field, flags: Mapping[str, Optional[str]]) -> Optional[str]:
    if f.name in flags:
        name = flags[f.name]
        return None if name is None else "--" + name
    return default_flag(f)


def add_param_arguments(parser: Union[argparse.ArgumentParser, argparse._ArgumentGroup], cls: type, *,
                        flags: Mapping[str, Optional[str]] = {}, dest_prefix: str = "") -> None:
    """One flag per declared field of `cls`: its own name, or `flags[field]` where a command renames
    it (None: no flag here, the command sets that field itself). Destination `dest_prefix + field`."""
    hints = typing.get_type_hints(cls)
    for f in declared(cls):
        flag = _flag(f, flags)
        if flag is not None:
            names = [flag] + [f"--{a}" for a in f.metadata.get("aliases", ())]
            parser.add_argument(*names, dest=dest_prefix + f.name, **argument_kwargs(f, hints[f.name]))


def given_params(cls: type, args: argparse.Namespace, *, flags: Mapping[str, Optional[str]] = {},
                 dest_prefix: str = "") -> dict[str, Any]:
    """{field: value} of the flags given for `cls`, each checked against its bounds (ConfigError
    naming the flag), so a bad value stops a command before it writes anything."""
    values = vars(args)
    given = {}
    for f in declared(cls):
        dest = dest_prefix + f.name
        if dest not in values:
            continue
        problem = bound_problem(f, values[dest])
        if problem:
            raise ConfigError(f"{_flag(f, flags)} {problem}")
        given[f.name] = values[dest]
    return given


def params_from_args(cls: type, args: argparse.Namespace, *, flags: Mapping[str, Optional[str]] = {},
                     dest_prefix: str = "", **fixed: Any) -> Any:
    """`cls(**fixed, **flags given)`: the declared defaults where a flag is not given. A problem the
    dataclass finds (a combination of values) is raised as ConfigError with its message."""
    given = given_params(cls, args, flags=flags, dest_prefix=dest_prefix)
    try:
        return cls(**fixed, **given)
    except ParamError as e:
        field = next(f for f in dataclasses.fields(cls) if f.name == e.field)
        raise ConfigError(f"{_flag(field, flags)} {e.problem}") from None
    except ValueError as e:
        raise ConfigError(str(e)) from None
