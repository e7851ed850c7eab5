# The two commands a fresh machine needs (README, Quick start). Both bootstrap first (idempotent).
SHELL := /bin/bash
ENV := source .grec/env.sh &&

.PHONY: setup demo test bench-ingest clean-lake
setup:
	@bash scripts/bootstrap.sh

demo: setup
	@$(ENV) grec demo --lake lake

test: setup
	@$(ENV) python -m pytest -q tests

clean-lake:
	rm -rf lake
