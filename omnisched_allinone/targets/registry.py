"""Registry names and method names: what a job may say about where its call goes.

Names are checked without any I/O (no resolver, no socket): a registry name is a key into
configuration, never something to resolve, so anything shaped like a host, URL or address is
refused outright (DESIGN §4.6).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

from omnisched_allinone.core.errors import InvalidArgument

_NAME_RE = re.compile(r"[a-z][a-z0-9-]{0,62}")
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_METHOD_RE = re.compile(rf"{_IDENT}(?:\.{_IDENT})*(?:/{_IDENT})?")
_MAX_METHOD_LEN = 255
# Names that resolve to this machine or a cloud metadata service on common resolvers. Registry
# names never reach a resolver, but one that looks like a host invites exactly that confusion.
_RESERVED_NAMES = frozenset(
    {"localhost", "loopback", "ip6-localhost", "ip6-loopback", "broadcasthost", "metadata"}
)


def validate_target_name(name: str, field: str = "target_service") -> str:
    """Accept only registry names, so no job can smuggle a host, URL or address into a call."""
    if not isinstance(name, str) or not name:
        raise InvalidArgument(field, "a target service name is required")
    if not name.isascii():
        raise InvalidArgument(field, "must be ASCII (look-alike characters are refused)")
    if "/" in name or ":" in name or "." in name or _is_ip(name):
        raise InvalidArgument(
            field, "must be a registered service name, not a host, URL or address"
        )
    if name in _RESERVED_NAMES:
        raise InvalidArgument(field, f"'{name}' is a host name, not a registered service name")
    if not _NAME_RE.fullmatch(name) or name.endswith("-"):
        raise InvalidArgument(
            field, "must be 1-63 of [a-z0-9-], start with a letter and not end with '-'"
        )
    return name


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def validate_method_name(method: str, field: str = "target_method") -> str:
    """Accept `Method`, `package.Service/Method` or `package.Service.Method`, identifiers only."""
    if not isinstance(method, str) or not method:
        raise InvalidArgument(field, "a method name is required")
    if len(method) > _MAX_METHOD_LEN or not _METHOD_RE.fullmatch(method):
        raise InvalidArgument(
            field, "must be 'Method', 'package.Service/Method' or 'package.Service.Method'"
        )
    return method


def split_method(method: str) -> tuple[str | None, str]:
    """Return (service full name or None, method name)."""
    if "/" in method:
        service, name = method.split("/")
        return service, name
    if "." in method:
        service, name = method.rsplit(".", 1)
        return service, name
    return None, method


@dataclass(frozen=True)
class TargetService:
    """A registered target; `address` ("host:port") comes from configuration only."""

    name: str
    address: str


class TargetRegistry:
    """The configured name -> address map; the only source of addresses for outbound calls."""

    def __init__(self, services: Mapping[str, str]) -> None:
        self._services: dict[str, TargetService] = {}
        for name, address in services.items():
            validate_target_name(name, field=f"targets.{name}")
            if not isinstance(address, str) or not _valid_address(address):
                raise InvalidArgument(f"targets.{name}", "address must be 'host:port'")
            self._services[name] = TargetService(name=name, address=address)

    def get(self, name: str, field: str = "target_service") -> TargetService:
        """Return the service, or InvalidArgument naming the known ones (no echo of bad input)."""
        service = self._services.get(name) if isinstance(name, str) else None
        if service is not None:
            return service
        validate_target_name(name, field)
        known = ", ".join(self.names()) or "(none)"
        raise InvalidArgument(field, f"unknown target service '{name}'; known: {known}")

    def names(self) -> list[str]:
        return sorted(self._services)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._services


def _valid_address(address: str) -> bool:
    host, sep, port = address.rpartition(":")
    return bool(sep and host and port.isdigit() and 0 < int(port) < 65536)
