"""The built-in demo: a small operations backend that `ops-observe serve` runs when no app is named.

Its routes exercise every part of the suite: a path parameter (route templates as labels), a
credit purchase and an LLM chat completion (business metrics and events), a slow route (latency
alerts) and a route that raises (the 500 path, error-keeping trace sampling).
"""

from __future__ import annotations

import asyncio
import random
import time

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ops_observe import metrics
from ops_observe.logging.api import get_logger, log_context
from ops_observe.tracing.api import add_span_attribute, add_span_event, trace_external_call, trace_request

logger = get_logger("ops_observe.demo")

ITEMS = {1: "GPU hours", 2: "Storage (GB-month)", 3: "LLM tokens (1k)"}
MODELS = {"gpt-4o-mini": 0.15, "llama-3-70b": 0.6}


async def index(request: Request) -> JSONResponse:
    return JSONResponse({"service": "ops-center demo", "routes": [r.path for r in request.app.routes]})


async def get_item(request: Request) -> JSONResponse:
    item_id = request.path_params["item_id"]
    if item_id not in ITEMS:
        raise HTTPException(404, f"no item {item_id}")
    return JSONResponse({"id": item_id, "name": ITEMS[item_id]})


@trace_external_call("stripe", "create_payment")
async def charge(amount: int) -> None:
    await asyncio.sleep(random.uniform(0.001, 0.01))  # the payment provider


@trace_request("purchase_credits")
async def purchase_credits(request: Request) -> JSONResponse:
    body = await request.json()
    amount, user_id = body.get("amount"), str(body.get("user_id", "user-1"))
    if not isinstance(amount, int) or amount <= 0:
        raise HTTPException(422, "amount must be a positive integer")
    with log_context(user_id=user_id):
        add_span_attribute("credit.amount", amount)
        logger.business_event("credit_purchase_initiated", amount=amount, payment_method="stripe")
        await charge(amount)
        add_span_event("payment_authorized", {"gateway": "stripe"})
        metrics.record_payment(status="success", payment_method="stripe", tier="pro", amount_cents=amount * 10)
        metrics.record_credit_transaction(
            transaction_type="purchase", user_id=user_id, organization_id="org-1", amount=amount, tier="pro"
        )
        logger.business_event("credit_purchase_completed", amount=amount, status="success")
    return JSONResponse({"success": True, "credits_added": amount})


async def chat_completion(request: Request) -> JSONResponse:
    body = await request.json()
    model = body.get("model", "gpt-4o-mini")
    if model not in MODELS:
        raise HTTPException(400, f"unknown model {model!r}")
    prompt = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
    start = time.perf_counter()
    await asyncio.sleep(random.uniform(0.01, 0.05))  # the model
    prompt_tokens, completion_tokens = max(1, len(prompt) // 4), random.randint(5, 50)
    metrics.record_llm_usage(
        model=model,
        provider="demo",
        user_id=str(body.get("user_id", "user-1")),
        organization_id="org-1",
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        duration_seconds=time.perf_counter() - start,
        cost_credits=MODELS[model] * (prompt_tokens + completion_tokens) / 1000,
        status="success",
    )
    logger.info("chat completion", model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
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
