"""One declaration per parameter (schemas.params): flags, defaults and bounds come from it, and a bad
value stops `grec etl run` and every stage job before anything is written."""
from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass
from typing import Optional

import pytest

from grec.cli import main as grec
from etl.jobs import pipeline
from etl.transforms.swing import SwingParams
from schemas.params import (ConfigError, ParamError, add_param_arguments, check_bounds, declared, given_params,
                            param, params_from_args)


@dataclass(frozen=True)
class Knobs:
    k: int = param(10, "list length", at_least=1)
    share: float = param(0.5, "a share", above=0, below=1)
    weight: float = param(1.0, "a weight", at_least=0, at_most=2)
    cap: Optional[int] = param(100, "a cap", at_least=2, none_word=True)
    seed: int = param(0, "a seed", flag="knob-seed")
    verbose: bool = param(False, "say more")

    def __post_init__(self) -> None:
        check_bounds(self)


def parse(argv: list[str], flags: dict = {}) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_param_arguments(parser, Knobs, flags=flags)
    return parser.parse_args(argv)


@pytest.mark.parametrize("kwargs, message", [
    ({"k": 0}, "k must be >= 1, got 0 (flag --k)"),
    ({"share": 0.0}, "share must be in (0, 1), got 0.0 (flag --share)"),
    ({"share": 1.0}, "share must be in (0, 1), got 1.0 (flag --share)"),
    ({"weight": 2.5}, "weight must be in [0, 2], got 2.5 (flag --weight)"),
    ({"weight": math.nan}, "weight must be in [0, 2], got nan (flag --weight)"),
    ({"cap": 1}, "cap must be >= 2, got 1 (flag --cap)"),
])
def test_bounds_name_the_flag(kwargs, message):
    with pytest.raises(ParamError) as e:
        Knobs(**kwargs)
    assert str(e.value) == message


def test_values_on_the_bounds_and_none_pass():
    assert Knobs(k=1, share=0.01, weight=0, cap=None).cap is None
    assert Knobs(weight=2, cap=2).weight == 2


def test_a_renamed_field_names_flag_and_field():
    @dataclass(frozen=True)
    class Renamed:
        n_clusters: int = param(20, "KMeans k", flag="clusters", at_least=2)

        def __post_init__(self) -> None:
            check_bounds(self)

    with pytest.raises(ParamError, match=r"^n_clusters must be >= 2, got 1 \(flag --clusters\)$"):
        Renamed(n_clusters=1)


def test_flags_take_declared_defaults_types_and_none_words():
    assert params_from_args(Knobs, parse([])) == Knobs()
    got = params_from_args(Knobs, parse(["--k", "3", "--cap", "none", "--knob-seed", "7", "--verbose"]))
    assert got == Knobs(k=3, cap=None, seed=7, verbose=True)
    assert given_params(Knobs, parse(["--share", "0.25"])) == {"share": 0.25}


def test_a_command_can_rename_or_drop_a_flag():
    args = parse(["--sample-k", "0"], flags={"k": "sample-k", "seed": None})
    with pytest.raises(ConfigError, match=r"^--sample-k must be >= 1, got 0$"):
        params_from_args(Knobs, args, flags={"k": "sample-k", "seed": None})
    with pytest.raises(SystemExit):
        parse(["--knob-seed", "1"], flags={"seed": None})


def test_help_shows_doc_and_default():
    parser = argparse.ArgumentParser()
    add_param_arguments(parser, Knobs)
    text = " ".join(parser.format_help().split())
    assert "list length (default: 10)" in text and "a cap (default: 100; 'none' = no limit)" in text


# ---- grec etl run: every bounded numeric flag ------------------------------------------------
def _bad_value(f: dataclasses.Field) -> str:
    """A value just outside the field's declared bounds."""
    b = f.metadata["bounds"]
    if "at_least" in b:
        return str(b["at_least"] - 1)
    if "above" in b:
        return str(b["above"])
    if "at_most" in b:
        return str(b["at_most"] + 1)
    return str(b["below"])


def _pipeline_flags() -> list[tuple[str, str]]:
    """(flag, bad value) for every bounded field that `grec etl run` exposes."""
    sections = [(cls, pipeline.RENAMED.get(name, {})) for name, cls in pipeline.SECTIONS.items()]
    out = []
    for cls, renamed in sections + [(SwingParams, {})]:
        for f in declared(cls):
            if not f.metadata["bounds"] or (f.name in renamed and renamed[f.name] is None):
                continue
            flag = "--" + (renamed.get(f.name) or f.metadata["flag"] or f.name).replace("_", "-")
            value = _bad_value(f)
            if f.metadata["none_word"] and value == "0":
                value = "-1"  # '0' means no cap
            out.append((flag, value))
    return out


def test_the_pipeline_exposes_the_stage_flags():
    flags = {flag for flag, _ in _pipeline_flags()}
    # the flags the README and the stage jobs name, written out by hand
    assert {"--k", "--beta", "--eval-fraction", "--val-fraction", "--eval-days", "--val-days", "--clusters",
            "--max-quarantine-fraction", "--row-group-mb", "--max-records-per-file", "--alpha1", "--alpha2",
            "--min-user-items", "--max-user-items", "--max-users-per-item", "--top-k"} <= flags


@pytest.mark.parametrize("flag, value", _pipeline_flags())
def test_a_bad_value_stops_the_pipeline_before_any_write(tmp_path, capsys, flag, value):
    lake = tmp_path / "lake"
    assert grec(["etl", "run", "--lake", str(lake), "--source", "synthetic", flag, value]) == 1
    err = capsys.readouterr().err
    assert flag in err and "must be" in err, err
    assert not lake.exists()


def test_beta_minus_one(tmp_path, capsys):
    lake = tmp_path / "lake"
    assert grec(["etl", "run", "--lake", str(lake), "--source", "synthetic", "--beta", "-1"]) == 1
    assert "--beta must be >= 0, got -1.0" in capsys.readouterr().err and not lake.exists()


@pytest.mark.parametrize("argv, flag", [
    (["etl", "neighbors", "--beta", "-0.5"], "--beta"),
    (["etl", "neighbors", "--k", "0"], "--k"),
    (["etl", "macro", "--clusters", "1"], "--clusters"),
    (["etl", "examples", "--row-group-mb", "0"], "--row-group-mb"),
    (["etl", "examples", "--k", "0"], "--k"),
    (["etl", "ingest", "--source", "synthetic", "--max-quarantine-fraction", "1.5"], "--max-quarantine-fraction"),
    (["etl", "swing", "--alpha2", "-1"], "--alpha2"),
    (["etl", "graph", "--val-days", "-1"], "--val-days"),
])
def test_a_bad_value_stops_a_stage_job(tmp_path, capsys, argv, flag):
    lake = tmp_path / "lake"
    assert grec(argv + ["--lake", str(lake)]) == 1
    assert flag in capsys.readouterr().err and not lake.exists()
