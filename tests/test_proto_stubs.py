"""The committed stubs are exactly what grpcio-tools generates from the .proto."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROTO = "omnisched_allinone/proto/scheduler_service.proto"
GENERATED = (
    "scheduler_service_pb2.py",
    "scheduler_service_pb2.pyi",
    "scheduler_service_pb2_grpc.py",
)


def test_committed_stubs_match_the_proto(tmp_path):
    protoc = pytest.importorskip("grpc_tools.protoc")
    well_known = Path(protoc.__file__).parent / "_proto"
    code = protoc.main(
        [
            "protoc",
            f"-I{ROOT / 'proto'}",
            f"-I{well_known}",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            str(ROOT / "proto" / PROTO),
        ]
    )
    assert code == 0
    for name in GENERATED:
        fresh = (tmp_path / "omnisched_allinone" / "proto" / name).read_text()
        committed = (ROOT / "omnisched_allinone" / "proto" / name).read_text()
        assert fresh == committed, f"{name} is stale: run `make proto`"
