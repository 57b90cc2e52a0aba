# Front door: `make help` lists the targets. README.md explains each; day 2 is bin/bluegreen.
.PHONY: help up down deps engine lint test test-unit test-component test-e2e test-faults test-guards test-vps test-medusa bench soak
.DEFAULT_GOAL := help

help:                     ## this list
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  make %-16s %s\n", $$1, $$2}'
	@echo "  day 2 (status, release, switch, rollback, logs, doctor, recover, maintenance): bin/bluegreen --help"

up:                       ## the local stack on this machine's Docker engine: the real Medusa app (APP=testapp: the test app)
	APP=$(APP) scripts/dev/up.sh

down:                     ## destroy the local stack (data volumes are kept)
	bin/bluegreen pulumi destroy --yes --non-interactive

deps:                     ## test and lint tools: Debian packages, .venv, actionlint
	scripts/dev/install-test-deps.sh

engine:                   ## build (once) the Pulumi CLI and plugins from the Go module proxy
	scripts/engine/bootstrap.sh

# Image recipe files (harness/images/) are hashed into the images' recipe labels: an edit
# rebuilds every image below it, so their two findings are excluded here, not fixed in passing:
# SC1090 (postgres runs /docker-entrypoint-initdb.d/*.sh by design), SC2115 (tidy-rootfs.sh is
# only ever called with the debootstrap directory).
RECIPE_SHELLCHECK_EXCLUDES = SC1090,SC2115

lint: deps                ## ruff, mypy --strict, shellcheck (every tracked *.sh, bin/bluegreen), actionlint
	.venv/bin/ruff check .
	.venv/bin/mypy
	shellcheck -x bin/bluegreen $$(git ls-files '*.sh' | grep -v '^harness/images/')
	shellcheck -x --exclude=$(RECIPE_SHELLCHECK_EXCLUDES) $$(git ls-files 'harness/images/*.sh')
	"$$(scripts/dev/install-actionlint.sh)" .github/workflows/*.yml

test-unit: deps           ## graph invariants under Pulumi mocks, settings, the CLI's logic (seconds)
	.venv/bin/python -m pytest tests/unit -q

test-component: deps      ## real nginx, Redis, PostgreSQL on loopback; the health gate over gRPC
	.venv/bin/python -m pytest tests/component -q

test-e2e: deps            ## the Docker harness, then real pulumi up/preview/refresh/destroy on it
	.venv/bin/python -m pytest tests/e2e -q -p no:cacheprovider

# The e2e suite builds the engine (scripts/engine/bootstrap.sh) and the local images on first
# use; both are cached outside the repo.
test: deps lint           ## lint, unit, component, engine and e2e suites (faults, guards, vps and medusa have their own targets)
	.venv/bin/python -m pytest tests/unit tests/component tests/engine tests/e2e -q -p no:cacheprovider \
		--durations=15 $(foreach suite,$(OWN_TARGET_SUITES),--ignore=$(suite))

# Suites with their own target, so `make test` stays under 15 minutes warm; .ci/run runs them all.
FAULT_SUITES = tests/e2e/test_faults.py
GUARD_SUITES = tests/e2e/test_layout_upgrade.py tests/e2e/test_postgres_roles.py tests/e2e/test_policy.py \
	tests/e2e/test_service_hardening.py
VPS_SUITES = tests/e2e/test_vps.py tests/e2e/test_vps_release.py tests/e2e/test_vps_medusa.py
MEDUSA_SUITES = tests/e2e/test_medusa_release.py tests/e2e/test_managed_database.py
OWN_TARGET_SUITES = $(FAULT_SUITES) $(GUARD_SUITES) $(VPS_SUITES) $(MEDUSA_SUITES)

test-faults: deps         ## the fault matrix: SIGKILL/SIGINT of pulumi up, dockerd restarts, full disk, ... (~10 min)
	.venv/bin/python -m pytest $(FAULT_SUITES) -q -p no:cacheprovider

test-guards: deps         ## what keeps a running stack safe from our own changes: layout and role upgrades, services.hardened turned on, policy pack (~7 min)
	.venv/bin/python -m pytest $(GUARD_SUITES) -q -p no:cacheprovider

test-vps: deps            ## the production path: runner -> ssh -> simulated VPS, TLS from ACME (Pebble) (~7 min)
	.venv/bin/python -m pytest $(VPS_SUITES) -q -p no:cacheprovider

test-medusa: deps         ## a real Medusa 2.21 app (examples/medusa-app) built, released blue then green under load, also through a TLS pooler to a managed-style Postgres (~7 min warm)
	.venv/bin/python -m pytest $(MEDUSA_SUITES) -q -p no:cacheprovider

bench: deps               ## prints numbers and draws docs/bench/*.png: router switch methods, router throughput, replicas, image rebuild times, TLS handshakes, the phases of a Medusa release
	.venv/bin/pip install -q --disable-pip-version-check -r requirements-bench.txt
	.venv/bin/python bench/switch_bench.py
	.venv/bin/python bench/router_throughput.py
	.venv/bin/python bench/replica_throughput.py
	.venv/bin/python bench/rebuild_bench.py
	.venv/bin/python bench/tls_handshake.py
	.venv/bin/python bench/medusa_release_phases.py

# Not part of `make test` (about 20 minutes): the same engine and dockerd as the e2e suite.
soak: deps                ## 30 releases under load: nothing piles up, then a rollback to release 28
	.venv/bin/python bench/soak.py
