# Everything runs from a project-local virtualenv made with the machine's Python 3.11.
# python3.11 by name, else python3 when that is 3.11.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || { python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null && command -v python3; } || echo python3.11)
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

PROTOS := $(wildcard protos/rewards/v1/*.proto)

.PHONY: venv run test test-postgres generate check-generated lint breaking dist bench clean

# Three distributions: rewards-proto (generated/, the contract), rewards-service (the server)
# and rewards-client (clients/python, the SDK); both of the last two depend on the first.
$(BIN)/.installed: pyproject.toml generated/pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e generated -e '.[dev]' -e clients/python
	touch $@

venv: $(BIN)/.installed

run: venv
	$(BIN)/rewards-server

test: venv
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

# The same suites against the local PostgreSQL server.
test-postgres: venv
	REWARDS_TEST_DATABASE=postgresql://postgres@127.0.0.1:5432/test $(BIN)/pytest -n 2 $(PYTEST_ARGS)

generate: venv
	rm -rf generated/rewards
	mkdir -p generated
	$(BIN)/python -m grpc_tools.protoc -I protos -I third_party/protos \
		--python_out=generated --grpc_python_out=generated \
		--mypy_out=generated --mypy_grpc_out=generated $(PROTOS)
	# The same files with their comments, served by reflection for `grpcurl describe`.
	$(BIN)/python -m grpc_tools.protoc -I protos -I third_party/protos --include_source_info \
		--descriptor_set_out=generated/rewards/v1/descriptors.binpb $(PROTOS)
	touch generated/rewards/__init__.py generated/rewards/v1/__init__.py generated/rewards/py.typed

check-generated: generate
	git diff --exit-code -- generated
	test -z "$$(git status --porcelain -- generated)"

# ruff; mypy --strict on the SDK (config in clients/python/pyproject.toml); buf lint and breaking.
lint: venv
	$(BIN)/ruff check src clients tests bench
	$(BIN)/ruff format --check src clients tests bench
	$(BIN)/mypy --config-file clients/python/pyproject.toml clients/python/rewards_client clients/python/examples
	$(BIN)/buf lint
	$(BIN)/buf breaking --against '$(BREAKING_AGAINST)'

# rewards.v1 must stay wire- and JSON-compatible (buf.yaml: breaking, FILE rules) with the
# contract it is compared with: main's by default, so a branch that renumbers or removes a
# field fails; .ci/run also compares with the commit before the last one.
BREAKING_AGAINST ?= .git\#branch=main
breaking: venv
	$(BIN)/buf breaking --against '$(BREAKING_AGAINST)'

# Wheels of the three distributions, into $(DIST). Each is built from a clean build/ folder so
# no file left by an earlier build gets in.
DIST ?= dist
dist: venv
	rm -rf build generated/build clients/python/build
	rm -f $(DIST)/rewards_proto-*.whl $(DIST)/rewards_service-*.whl $(DIST)/rewards_client-*.whl
	$(BIN)/pip wheel --quiet --no-deps --wheel-dir $(DIST) ./generated . ./clients/python

# Needs Node.js for the load generator (bench/load.js) and the local PostgreSQL server;
# installs h2load (Debian's nghttp2-client) when it is missing.
bench: venv
	command -v h2load >/dev/null || apt-get install -y -q nghttp2-client
	npm ci --prefix bench --no-audit --no-fund --silent
	$(BIN)/python -m bench $(BENCH_ARGS)

# Mixed traffic at a fixed rate for a fixed time; prints errors, p50/p99 and the invariant check.
soak: venv
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info src/*.egg-info
	rm -rf generated/build generated/*.egg-info clients/python/build clients/python/*.egg-info
