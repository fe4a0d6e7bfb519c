"""Real gRPC fakes of the target services, shared by target, engine and worker tests."""

from tests.fakes.servers import (
    LEGACY,
    PRICING,
    SCRAPER,
    Behaviour,
    FakeProtos,
    FakeTarget,
    ReceivedCall,
    fake_pricing,
    fake_protos,
    fake_scraper,
    fake_target,
    fake_target_in_thread,
    unused_port,
)

__all__ = [
    "LEGACY",
    "PRICING",
    "SCRAPER",
    "Behaviour",
    "FakeProtos",
    "FakeTarget",
    "ReceivedCall",
    "fake_pricing",
    "fake_protos",
    "fake_scraper",
    "fake_target",
    "fake_target_in_thread",
    "unused_port",
]
