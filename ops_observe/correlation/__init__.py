"""The correlation feature: one ID per request, kept from a valid incoming header or made fresh.

- :mod:`~ops_observe.correlation.context`: the context variable, validation and generation;
- :mod:`~ops_observe.correlation.settings`: ``[ops_observe.correlation]``;
- :mod:`~ops_observe.correlation.middleware`: the middleware (alias ``correlation``).
"""

from __future__ import annotations

from ops_observe.correlation.context import ALLOWED_BYTES, correlation_id, generate_id, get_correlation_id, is_valid_id

__all__ = ["ALLOWED_BYTES", "correlation_id", "generate_id", "get_correlation_id", "is_valid_id"]
