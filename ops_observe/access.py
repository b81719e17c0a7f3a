"""Who may read a protected endpoint (``/metrics``, ``<health>/detailed``): client networks and a bearer token."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Sequence


class AccessGuard:
    """Allows a request when its client is in one of ``allow`` (CIDR) and it sends ``Bearer <token>``.

    Either guard is off when not configured; when both are, both must pass. A request without a
    client address (a unix socket, an in-process test transport) fails a network guard.
    """

    def __init__(self, allow: Sequence[str] = (), token: str | None = None) -> None:
        self.networks = tuple(ipaddress.ip_network(cidr, strict=False) for cidr in allow)
        self.token = token.encode() if token else None

    def allows(self, client: str | None, authorization: bytes) -> bool:
        """Whether a client at ``client`` sending the ``Authorization`` header value ``authorization`` may read."""
        if self.networks and not self._in_networks(client):
            return False
        if self.token is not None:
            scheme, _, given = authorization.partition(b" ")
            if scheme.lower() != b"bearer":
                given = b""
            # Constant-time compare: the time taken must not tell how much of the token was right.
            return hmac.compare_digest(given.strip(), self.token)
        return True

    def _in_networks(self, client: str | None) -> bool:
        try:
            address = ipaddress.ip_address(client or "")
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)
