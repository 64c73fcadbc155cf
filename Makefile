# zoo-operator: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
UV_VERSION := 0.13.9
VENV := .venv
PY := $(VENV)/bin/python

LINT_PATHS := operator workloads tests hack benchmarks

.PHONY: setup demo test test-unit lint lint-checks lock generate manifests cluster-build cluster-build-control-plane \
	cluster-build-kueue cluster-up cluster-down

## setup: install uv (pinned) and the locked development environment into .venv
setup:
	@command -v uv >/dev/null 2>&1 && uv --version | grep -q "$(UV_VERSION)" || python3 -m pip install --quiet "uv==$(UV_VERSION)"
	uv sync --frozen
	hack/install-tools.sh

## demo: local cluster + chart-installed operator + one real 2-rank training job, shown until it succeeds.
## Builds only the control plane; ZOO_DEMO_KUEUE=1 also builds and starts Kueue.
demo: setup cluster-build-control-plane $(if $(ZOO_DEMO_KUEUE),cluster-build-kueue)
	hack/demo/demo.sh

## test: the lint checks, then every test tier (unit, integration, e2e); what CI runs
test: setup cluster-build
	$(MAKE) --no-print-directory lint-checks
	$(VENV)/bin/pytest tests

## test-unit: the fast tier alone (no cluster)
test-unit: setup
	$(VENV)/bin/pytest tests/unit

## lint: ruff (rules and format), mypy (strict for the decision modules and the border) and import-linter (layers)
lint: setup
	$(MAKE) --no-print-directory lint-checks

lint-checks:
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache
	@# pytest refuses two test modules of one basename in different tiers (rootdir-relative imports)
	@dups=$$(find tests -name 'test_*.py' -printf '%f\n' | sort | uniq -d); \
	if [ -n "$$dups" ]; then echo "test modules named twice across tiers: $$dups"; exit 1; fi

## lock: re-resolve uv.lock after changing a pyproject.toml
lock:
	uv lock

## generate: write the CRD from the one schema source (operator/zoo_operator/schema.py) into manifests/ and charts/
generate:
	$(VENV)/bin/zoo-operator generate

## manifests: render manifests/base/{namespace,rbac,deployment}.yaml from the Helm chart (default values)
manifests: setup
	$(PY) hack/render_manifests.py

## cluster-build: build (once, cached in ~/.cache/zoo-operator) the control plane and Kueue; install etcd if missing
cluster-build: cluster-build-control-plane cluster-build-kueue

## cluster-build-control-plane: kube-apiserver, kube-controller-manager, kube-scheduler (and etcd) alone
cluster-build-control-plane:
	hack/cluster/build.sh

## cluster-build-kueue: the Kueue manager (the tests of spec.scheduling.queue use it)
cluster-build-kueue:
	hack/cluster/build-kueue.sh

## cluster-up: start the local cluster (real control plane + process kubelet); prints KUBECONFIG
cluster-up: setup cluster-build
	hack/cluster/zoo-cluster up

## cluster-down: stop the local cluster and remove all its state
cluster-down:
	hack/cluster/zoo-cluster down
