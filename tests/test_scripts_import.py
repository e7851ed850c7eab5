"""Every benchmark and script imports: they sit outside the packages that the doctest collection
imports, so a module moved or renamed under them would otherwise surface only when someone runs
them (bench/pipeline.py once imported EXIT_OK from where it no longer lived)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted([*ROOT.glob("bench/*.py"), *ROOT.glob("scripts/*.py")])


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_script_imports(path: Path) -> None:
    name = f"_grec_script_{path.parent.name}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    try:
        spec.loader.exec_module(module)  # top level only: every script runs its work under __main__
    finally:
        sys.modules.pop(name, None)
