"""The app the multi-worker test serves with ``uvicorn --workers 2``: answers with its pid."""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

import ops_observe


async def whoami(request: Request) -> Response:
    return PlainTextResponse(str(os.getpid()))


app = ops_observe.wrap(
    Starlette(routes=[Route("/pid/{n}", whoami)]),
    settings={"service_name": "svc", "middleware": ["metrics"], "metrics": {"multiprocess_dir": os.environ["MP_DIR"]}},
)
