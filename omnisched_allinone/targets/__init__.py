"""The target layer: the only way a job reaches another service.

A job names a target *service* from the configured registry and a method on it; clients never give
hosts or URLs (DESIGN §4.6). The worker calls the target over real gRPC with no generated stubs:
the method is resolved by the target's server reflection (or a configured descriptor set), the
request is built from the job's JSON parameters and the response comes back as a dict (DESIGN §5).
"""

from omnisched_allinone.targets.client import TargetClient
from omnisched_allinone.targets.errors import TRANSIENT_CODES, TargetCallError
from omnisched_allinone.targets.registry import (
    TargetRegistry,
    TargetService,
    validate_method_name,
    validate_target_name,
)

__all__ = [
    "TRANSIENT_CODES",
    "TargetCallError",
    "TargetClient",
    "TargetRegistry",
    "TargetService",
    "validate_method_name",
    "validate_target_name",
]
