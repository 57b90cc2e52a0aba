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

test-e2e: deps        ## the Docker harness, then real pulumi up/preview/refresh/destroy on it
	.venv/bin/python -m pytest tests/e2e -q -p no:cacheprovider

# The e2e suite builds the engine (scripts/engine/bootstrap.sh) and the local images on first
# use; both are cached outside the repo.
test: deps lint       ## what CI runs: lint, unit, component and e2e suites
	.venv/bin/python -m pytest tests/unit tests/component tests/e2e -q -p no:cacheprovider

bench: deps              ## prints numbers: router switch methods, image rebuild times
	.venv/bin/python bench/switch_bench.py
	.venv/bin/python bench/rebuild_bench.py
