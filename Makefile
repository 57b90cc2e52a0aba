# Front door. README.md explains each target.
.PHONY: up down deps engine lint test test-unit test-component test-e2e bench

up:                       ## the local stack on this machine's Docker engine
	scripts/up.sh

down:                     ## destroy the local stack (data volumes are kept)
	bash -c 'source scripts/env.sh && PULUMI_BACKEND_URL=file://$$PWD/.state PULUMI_CONFIG_PASSPHRASE=$${PULUMI_CONFIG_PASSPHRASE:-local-stack-passphrase} pulumi destroy --yes --stack local --non-interactive'

deps:
	scripts/install-test-deps.sh

engine:
	scripts/engine/bootstrap.sh

lint: deps
	.venv/bin/ruff check .
	.venv/bin/mypy

test-unit: deps
	.venv/bin/python -m pytest tests/unit -q

test-component: deps
	.venv/bin/python -m pytest tests/component -q

test-e2e: deps        ## real pulumi up/preview/refresh/destroy on the harness dockerd
	.venv/bin/python -m pytest tests/e2e -q

# The release scenarios (tests/e2e/test_release_scenarios.py) need the engine that
# scripts/engine/bootstrap.sh builds; they run in test-e2e until that lands in CI.
test: deps lint       ## what CI runs: lint, unit, component suites and the Docker harness
	.venv/bin/python -m pytest tests/unit tests/component tests/e2e/test_harness.py -q -p no:cacheprovider

bench: deps
	.venv/bin/python bench/switch_bench.py
