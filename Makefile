# One place for the checks; .ci/run calls the same commands.
PY ?= python

.PHONY: install lint format test proto proto-check bench faults

install:
	$(PY) -m pip install -e ".[test]"

lint:
	ruff check .
	ruff format --check .

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
