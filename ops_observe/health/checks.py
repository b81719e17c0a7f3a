"""Placeholder for the core health checks (http, tcp, disk, memory) until the health feature lands."""

from __future__ import annotations


class _Placeholder:
    async def check(self) -> None:
        raise NotImplementedError


HttpCheck = TcpCheck = DiskCheck = MemoryCheck = _Placeholder
