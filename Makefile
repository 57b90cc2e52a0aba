# Front door. README.md explains each target.
.PHONY: up down deps engine lint test test-unit test-component test-e2e test-faults bench soak

up:                       ## the local stack on this machine's Docker engine
	scripts/dev/up.sh

down:                     ## destroy the local stack (data volumes are kept)
	bash -c 'source scripts/dev/env.sh && PULUMI_BACKEND_URL=file://$$PWD/.state PULUMI_CONFIG_PASSPHRASE=$${PULUMI_CONFIG_PASSPHRASE:-local-stack-passphrase} pulumi destroy --yes --stack local --non-interactive'

deps:
	scripts/dev/install-test-deps.sh

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
test: deps lint       ## lint, unit, component, engine and e2e suites (the fault matrix has its own target)
	.venv/bin/python -m pytest tests/unit tests/component tests/engine tests/e2e -q -p no:cacheprovider \
		--ignore=tests/e2e/test_faults.py

# Its own target because it would take `make test` past 15 minutes warm (it is ~10 minutes on
# its own); .ci/run runs both.
test-faults: deps     ## the fault matrix: SIGKILL/SIGINT of pulumi up, dockerd restarts, full disk, ...
	.venv/bin/python -m pytest tests/e2e/test_faults.py -q -p no:cacheprovider

bench: deps              ## prints numbers: router switch methods, image rebuild times
	.venv/bin/python bench/switch_bench.py
	.venv/bin/python bench/rebuild_bench.py

# Not part of `make test` (about 20 minutes): the same engine and dockerd as the e2e suite.
soak: deps               ## 30 releases under load: nothing piles up, then a rollback to release 28
	.venv/bin/python bench/soak.py
