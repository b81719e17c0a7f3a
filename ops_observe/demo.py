"""The built-in demo: a small operations backend that `ops-observe serve` runs when no app is named.

Its routes exercise every part of the suite: a path parameter (route templates as labels), a
credit purchase and an LLM chat completion (business metrics and events), a slow route (latency
alerts) and a route that raises (the 500 path, error-keeping trace sampling).

Input is validated as a real service would: a body that is not a JSON object answers 400, a
field with a wrong value 422, each with a message saying what was expected (and, for an unknown
model, which models exist). Waiting is done with ``anyio.sleep``, so the demo runs under asyncio
and trio alike.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ops_observe import metrics
from ops_observe.logging.api import get_logger, log_context
from ops_observe.tracing.api import add_span_attribute, add_span_event, trace_external_call, trace_request

logger = get_logger("ops_observe.demo")

ITEMS = {1: "GPU hours", 2: "Storage (GB-month)", 3: "LLM tokens (1k)"}
MODELS = {"gpt-4o-mini": 0.15, "llama-3-70b": 0.6}
MAX_SLOW_SECONDS = 10.0

PURCHASE_EXAMPLE = {"amount": 100, "user_id": "user-1"}
CHAT_EXAMPLE = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}


class BadInput(Exception):
    """The request's input is not what the route takes: answered with ``status`` and ``message``."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def _problem(exc: BadInput) -> JSONResponse:
    return JSONResponse({"error": exc.message, **exc.extra}, status_code=exc.status)


async def _json_object(request: Request, example: dict[str, Any]) -> dict[str, Any]:
    """The body as a JSON object, else :class:`BadInput` (400) showing an example body."""
    raw = await request.body()
    if not raw.strip():
        raise BadInput(400, "the body is empty; send a JSON object", example=example)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput(400, f"the body is not valid JSON: {exc}", example=example) from None
    if not isinstance(body, dict):
        raise BadInput(400, f"the body must be a JSON object, got {type(body).__name__}", example=example)
    return body


def _user_id(body: dict[str, Any]) -> str:
    user_id = body.get("user_id", "user-1")
    if not isinstance(user_id, str) or not user_id:
        raise BadInput(422, "user_id must be a non-empty string")
    return user_id


async def index(request: Request) -> JSONResponse:
    return JSONResponse({"service": "ops-center demo", "routes": [r.path for r in request.app.routes]})


async def get_item(request: Request) -> JSONResponse:
    item_id = request.path_params["item_id"]
    if item_id not in ITEMS:
        return JSONResponse({"error": f"no item {item_id}", "items": sorted(ITEMS)}, status_code=404)
    return JSONResponse({"id": item_id, "name": ITEMS[item_id]})


@trace_external_call("stripe", "create_payment")
async def charge(amount: int) -> None:
    await anyio.sleep(random.uniform(0.001, 0.01))  # the payment provider


@trace_request("purchase_credits")
async def purchase_credits(request: Request) -> JSONResponse:
    try:
        body = await _json_object(request, PURCHASE_EXAMPLE)
        amount = body.get("amount")
        # bool is an int in Python; true is not an amount.
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise BadInput(422, f"amount must be a positive integer, got {amount!r}", example=PURCHASE_EXAMPLE)
        user_id = _user_id(body)
    except BadInput as exc:
        return _problem(exc)
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


def _prompt(body: dict[str, Any]) -> str:
    messages = body.get("messages", [])
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise BadInput(422, 'messages must be a list of objects like {"role": "user", "content": "..."}')
    contents = [m.get("content", "") for m in messages]
    if not all(isinstance(c, str) for c in contents):
        raise BadInput(422, "the content of each message must be a string")
    return " ".join(contents)


async def chat_completion(request: Request) -> JSONResponse:
    try:
        body = await _json_object(request, CHAT_EXAMPLE)
        model = body.get("model", "gpt-4o-mini")
        if not isinstance(model, str) or model not in MODELS:
            known = sorted(MODELS)
            raise BadInput(422, f"unknown model {model!r}; known models: {', '.join(known)}", models=known)
        prompt = _prompt(body)
        user_id = _user_id(body)
    except BadInput as exc:
        return _problem(exc)
    start = time.perf_counter()
    await anyio.sleep(random.uniform(0.01, 0.05))  # the model
    prompt_tokens, completion_tokens = max(1, len(prompt) // 4), random.randint(5, 50)
    metrics.record_llm_usage(
        model=model,
        provider="demo",
        user_id=user_id,
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
    raw = request.query_params.get("seconds", "0.5")
    try:
        seconds = float(raw)
    except ValueError:
        seconds = float("nan")
    if not 0 <= seconds <= MAX_SLOW_SECONDS:  # NaN fails both comparisons
        return _problem(BadInput(422, f"seconds must be a number from 0 to {MAX_SLOW_SECONDS:g}, got {raw!r}"))
    await anyio.sleep(seconds)
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
