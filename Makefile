# One place for the checks; .ci/run calls the same commands.
PY ?= python

.PHONY: install lint format test proto proto-check bench bench-smoke faults

install:
	$(PY) -m pip install -e ".[test]"

lint:
	ruff check .
	ruff format --check .
	$(PY) -m mypy omnisched_allinone

format:
	ruff format .
	ruff check --fix .

test:
	$(PY) -m pytest -q

proto:
	$(PY) -m grpc_tools.protoc -Iproto --python_out=. --pyi_out=. --grpc_python_out=. \
		proto/omnisched_allinone/proto/scheduler_service.proto

proto-check:
	$(PY) -m pytest -q tests/test_proto_stubs.py

# The slowest fault-injection tests (worker kills, poison job, RabbitMQ restart, beats); the rest
# of tests/faults runs with `make test`. They stop and restart this machine's RabbitMQ and Redis.
faults:
	$(PY) -m pytest -q -m faults tests/faults

# Benchmarks beside the raw engines (each alone: python -m bench.<name> --help); needs the
# RabbitMQ and Redis on 127.0.0.1. The table is written to bench/results/latest.json.
bench:
	$(PY) -m bench

# Every benchmark at tiny sizes (well under a minute), so they cannot rot; no speed asserted.
bench-smoke:
	$(PY) -m bench --smoke
