"""The built-in demo: a small operations backend that `ops-observe serve` runs when no app is named.

Its routes exercise every part of the suite: a path parameter (route templates as labels), a
credit purchase and an LLM chat completion (business metrics and events), a slow route (latency
alerts) and a route that raises (the 500 path, error-keeping trace sampling).
"""

from __future__ import annotations

import asyncio
import random

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ITEMS = {1: "GPU hours", 2: "Storage (GB-month)", 3: "LLM tokens (1k)"}
MODELS = {"gpt-4o-mini": 0.15, "llama-3-70b": 0.6}


async def index(request: Request) -> JSONResponse:
    return JSONResponse({"service": "ops-center demo", "routes": [r.path for r in request.app.routes]})


async def get_item(request: Request) -> JSONResponse:
    item_id = request.path_params["item_id"]
    if item_id not in ITEMS:
        raise HTTPException(404, f"no item {item_id}")
    return JSONResponse({"id": item_id, "name": ITEMS[item_id]})


async def purchase_credits(request: Request) -> JSONResponse:
    body = await request.json()
    amount = body.get("amount")
    if not isinstance(amount, int) or amount <= 0:
        raise HTTPException(422, "amount must be a positive integer")
    await asyncio.sleep(random.uniform(0.001, 0.01))  # the payment provider
    return JSONResponse({"success": True, "credits_added": amount})


async def chat_completion(request: Request) -> JSONResponse:
    body = await request.json()
    model = body.get("model", "gpt-4o-mini")
    if model not in MODELS:
        raise HTTPException(400, f"unknown model {model!r}")
    prompt = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
    await asyncio.sleep(random.uniform(0.01, 0.05))  # the model
    prompt_tokens, completion_tokens = max(1, len(prompt) // 4), random.randint(5, 50)
    return JSONResponse(
        {
            "model": model,
            "choices": [{"message": {"role": "assistant", "content": "This is a simulated answer."}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
        }
    )


async def slow(request: Request) -> JSONResponse:
    seconds = min(float(request.query_params.get("seconds", "0.5")), 10.0)
    await asyncio.sleep(seconds)
    return JSONResponse({"slept": seconds})


async def boom(request: Request) -> JSONResponse:
    raise RuntimeError("the demo's deliberate failure")


def create_app() -> Starlette:
    """A fresh demo app (one per call, so tests and workers never share one)."""
    return Starlette(
        routes=[
            Route("/", index),
            Route("/items/{item_id:int}", get_item),
            Route("/credits/purchase", purchase_credits, methods=["POST"]),
            Route("/llm/chat", chat_completion, methods=["POST"]),
            Route("/slow", slow),
            Route("/boom", boom),
        ]
    )
