# The two commands a fresh machine needs (README, Quick start). Both bootstrap first (idempotent).
SHELL := /bin/bash
ENV := source .grec/env.sh &&

.PHONY: setup demo wheel test test-all bench-ingest clean-lake
setup:
	@bash scripts/bootstrap.sh

demo: setup
	@$(ENV) grec demo --lake lake

# dist/grec-<version>-py3-none-any.whl: etl/, training/, schemas/ and grec-jvm.jar (docs/etl.md, Deploying the wheel).
wheel: setup
	@$(ENV) python scripts/build_wheel.py --out dist

# CI's command: everything except the cases marked slow (they do not fit its time budget).
test: setup
	@$(ENV) python -m pytest -q -m "not slow" tests

test-all: setup
	@$(ENV) python -m pytest -q tests

clean-lake:
	rm -rf lake
