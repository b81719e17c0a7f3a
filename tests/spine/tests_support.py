"""Small helpers the spine tests share."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx


def get(app: Any, path: str = "/", **kwargs: Any) -> httpx.Response:
    """One GET through the ASGI app, in-process."""

    async def run() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return await client.get(path, **kwargs)

    return asyncio.run(run())
