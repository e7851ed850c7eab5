# The two commands a fresh machine needs (README, Quick start). Both bootstrap first (idempotent).
SHELL := /bin/bash
ENV := source .grec/env.sh &&

.PHONY: setup demo test test-all bench-ingest clean-lake
setup:
	@bash scripts/bootstrap.sh

demo: setup
	@$(ENV) grec demo --lake lake

# CI's command: everything except the cases marked slow (they do not fit its time budget).
test: setup
	@$(ENV) python -m pytest -q -m "not slow" tests

test-all: setup
	@$(ENV) python -m pytest -q tests

clean-lake:
	rm -rf lake
