# The two commands a fresh machine needs (README, Quick start). Both bootstrap first (idempotent).
SHELL := /bin/bash
ENV := source .grec/env.sh &&

.PHONY: setup demo wheel test test-all lint clean-lake
setup:
	@bash scripts/bootstrap.sh

demo: setup
	@$(ENV) grec demo --lake lake

# dist/grec-<version>-py3-none-any.whl: etl/, training/, schemas/ and grec-jvm.jar (docs/etl.md, Deploying the wheel).
wheel: setup
	@$(ENV) python scripts/build_wheel.py --out dist

# CI's command: the linter and the type checker, then every test except the cases marked slow (they
# do not fit its time budget), with the docstrings' examples of etl/, schemas/ and training/.
test: lint
	@$(ENV) python -m pytest -q -m "not slow" --doctest-modules tests grec etl schemas training

test-all: lint
	@$(ENV) python -m pytest -q --doctest-modules tests grec etl schemas training

# ruff, then mypy over grec, etl, training and schemas (its settings: pyproject.toml, [tool.mypy])
lint: setup
	@$(ENV) ruff check grec etl training schemas bench tests scripts
	@$(ENV) mypy

clean-lake:
	rm -rf lake
