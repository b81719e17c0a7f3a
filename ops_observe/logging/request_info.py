"""What the access log reads about a request's client: its address behind proxies, its user."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ops_observe.types import Scope

__all__ = ["client_address", "user_id_of"]


def client_address(peer: str, forwarded: Sequence[bytes], trusted: Callable[[str], bool]) -> str:
    """The client behind trusted proxies: walk the forwarded chain from the right, skipping trusted hops.

    ``forwarded`` holds ``name + b"\\0" + value`` of each ``X-Forwarded-For`` / ``Forwarded`` header
    in order; ``trusted(host)`` says whether a hop is one of ours. An untrusted ``peer`` is the
    client whatever the headers say (they may be forged).
    """
    if not trusted(peer):
        return peer
    hops: list[str] = []
    for item in forwarded:
        name, _, value = item.partition(b"\x00")
        text = value.decode("latin-1")
        if name == b"forwarded":
            for element in text.split(","):
                for pair in element.split(";"):
                    key, _, val = pair.strip().partition("=")
                    if key.lower() == "for":
                        hops.append(_strip_port(val.strip().strip('"')))
        else:
            hops.extend(h.strip() for h in text.split(",") if h.strip())
    client = peer
    for hop in reversed(hops):
        client = hop
        if not trusted(hop):
            break
    return client


def _strip_port(value: str) -> str:
    if value.startswith("["):  # [2001:db8::1]:4711
        return value[1:].partition("]")[0]
    if value.count(":") == 1:  # 192.0.2.1:4711
        return value.partition(":")[0]
    return value


def user_id_of(scope: Scope) -> Any:
    """The authenticated user of a request, from ``scope["state"]["user_id"]`` or Starlette's ``scope["user"]``."""
    state = scope.get("state")
    if state:
        user_id = state.get("user_id")
        if user_id is not None:
            return user_id
    user = scope.get("user")
    if user is not None and getattr(user, "is_authenticated", False):
        identity = getattr(user, "identity", None)
        return identity if identity is not None else getattr(user, "display_name", None)
    return None
