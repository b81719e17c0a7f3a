"""The per-app metric catalog: every metric of :data:`~ops_observe.metrics.specs.SPECS`, guarded.

A :class:`Catalog` is made by the metrics feature for each wrapped app, against that app's own
``CollectorRegistry``. Each metric is a :class:`GuardedMetric`: it behaves like the
prometheus-client metric (``.labels(...).inc()``, ``.set()``, ``.observe()``), but every label
value first goes through the privacy and cardinality rules:

* id labels (``user_id``, ``organization_id``, ``api_key_id``) become a keyed hash (HMAC-SHA256,
  16 hex digits), or the label does not exist at all when ``id_labels = "drop"``;
* each label of each metric takes at most ``max_label_values`` distinct values (overridable per
  metric); later new values become ``overflow_value`` and ``<ns>_metrics_label_overflow_total``
  counts each folded value.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from ops_observe.metrics.http import Flusher
from ops_observe.metrics.settings import MetricsSettings
from ops_observe.metrics.specs import BUCKETS, ID_LABELS, SPECS, MetricSpec

_TYPES: dict[str, type[MetricWrapperBase]] = {"counter": Counter, "gauge": Gauge, "histogram": Histogram}
_HASH_CACHE_SIZE = 4096


class IdHasher:
    """Keyed hash of identifiers: the same id always gives the same 16 hex digits under one key."""

    def __init__(self, key: str | bytes) -> None:
        self.key = key.encode() if isinstance(key, str) else key
        self._cache: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        hashed = self._cache.get(value)
        if hashed is None:
            hashed = hmac.new(self.key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:16]
            if len(self._cache) >= _HASH_CACHE_SIZE:
                self._cache.clear()  # bounded memory; a miss only costs one HMAC
            self._cache[value] = hashed
        return hashed


class GuardedMetric:
    """A prometheus-client metric whose label values go through the privacy and cardinality rules.

    ``labels()`` takes the catalog's label names (positional or keyword, every value made a
    string); id labels that were dropped are accepted and ignored, so code need not change with
    the setting. Anything else (``inc``, ``set``, ``observe``, ``collect``...) is the metric's own.
    """

    def __init__(
        self,
        metric: MetricWrapperBase,
        spec: MetricSpec,
        labelnames: tuple[str, ...],
        *,
        hasher: IdHasher,
        cap: int,
        overflow_value: str,
        overflow: Counter | None,
    ) -> None:
        self.metric = metric
        self.spec = spec
        self.name = spec.name
        self.labelnames = labelnames
        self._index = {name: i for i, name in enumerate(labelnames)}
        self._accepted = frozenset(spec.labels)
        self._private = tuple(i for i, name in enumerate(labelnames) if name in ID_LABELS)
        self._hasher = hasher
        self._cap = cap
        self._overflow_value = overflow_value
        self._overflow = overflow
        self._seen: tuple[set[str], ...] = tuple(set() for _ in labelnames)

    def labels(self, *values: Any, **kwvalues: Any) -> Any:
        """The child for these label values, after hashing id labels and applying the cap."""
        if values and kwvalues:
            raise ValueError("pass label values either positionally or as keywords, not both")
        if values:
            if len(values) != len(self.spec.labels):
                raise ValueError(f"{self.name} takes {len(self.spec.labels)} label values, got {len(values)}")
            kwvalues = dict(zip(self.spec.labels, values, strict=True))
        elif set(kwvalues) != self._accepted:
            raise ValueError(f"{self.name} takes the labels {', '.join(self.spec.labels)}, got {', '.join(kwvalues)}")
        return self.metric.labels(*self.guard(tuple(str(kwvalues[name]) for name in self.labelnames)))

    def guard(self, values: tuple[str, ...]) -> tuple[str, ...]:
        """Apply the id hash and the per-label cap to values in ``labelnames`` order."""
        if self._private:
            as_list = list(values)
            for i in self._private:
                as_list[i] = self._hasher(as_list[i]) if as_list[i] else ""
            values = tuple(as_list)
        folded: list[str] | None = None
        for i, value in enumerate(values):
            seen = self._seen[i]
            if value in seen:
                continue
            if len(seen) < self._cap:
                seen.add(value)
                continue
            if folded is None:
                folded = list(values)
            folded[i] = self._overflow_value
            if self._overflow is not None:
                self._overflow.labels(self.name, self.labelnames[i]).inc()
        return tuple(folded) if folded is not None else values

    def __getattr__(self, name: str) -> Any:
        return getattr(self.metric, name)

    def __repr__(self) -> str:
        return f"<GuardedMetric {self.metric._name} {self.spec.kind} {list(self.labelnames)}>"


class Catalog:
    """Every metric of the catalog for one wrapped app, as attributes named like the specs.

    ``catalog.http_requests_total``, ``catalog.record_llm_usage(...)``... The module
    ``ops_observe.metrics`` forwards to the catalog of the most recently wrapped app.
    """

    def __init__(self, registry: CollectorRegistry, namespace: str, settings: MetricsSettings, hash_key: bytes) -> None:
        self.registry = registry
        self.namespace = namespace
        self.settings = settings
        self.hasher = IdHasher(settings.hash_key or hash_key)
        self.metrics: dict[str, GuardedMetric] = {}
        self.multiprocess = False
        """Whether the values live in multiprocess files (set by the feature)."""
        buckets = {**BUCKETS, "latency": settings.buckets, "size": settings.size_buckets}
        # Registered before every metric, so that collecting the registry first folds in what the
        # HTTP middleware accumulated without locks (see ops_observe.metrics.http).
        self.flusher = Flusher()
        registry.register(self.flusher)
        overflow_spec = next(s for s in SPECS if s.name == "metrics_label_overflow_total")
        # The overflow counter is created first and unguarded (its labels are the catalog's names).
        self.overflow = Counter(
            "metrics_label_overflow", overflow_spec.help, overflow_spec.labels, namespace=namespace, registry=registry
        )
        for spec in SPECS:
            if spec is overflow_spec:
                metric: MetricWrapperBase = self.overflow
                labelnames = spec.labels
            else:
                labelnames = spec.labels
                if settings.id_labels == "drop":
                    labelnames = tuple(name for name in labelnames if name not in ID_LABELS)
                metric = _create(spec, labelnames, namespace, registry, buckets)
            cap = settings.label_caps.get(spec.name, settings.max_label_values)
            self.metrics[spec.name] = GuardedMetric(
                metric,
                spec,
                labelnames,
                hasher=self.hasher,
                cap=cap,
                overflow_value=settings.overflow_value,
                overflow=None if spec is overflow_spec else self.overflow,
            )

    def __getattr__(self, name: str) -> GuardedMetric:
        try:
            return self.__dict__["metrics"][name]  # type: ignore[no-any-return]
        except KeyError:
            raise AttributeError(f"the metric catalog has no metric {name!r}") from None

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *self.metrics]

    # -- helpers in the shape of the Ops-Center summary --------------------------------------------

    def record_llm_usage(
        self,
        *,
        model: str,
        provider: str,
        user_id: str,
        organization_id: str,
        prompt_tokens: int,
        completion_tokens: int,
        duration_seconds: float,
        cost_credits: float,
        status: str,
    ) -> None:
        """Record one LLM call: request count, prompt and completion tokens, latency and cost."""
        m = self.metrics
        m["llm_requests_total"].labels(model=model, provider=provider, status=status).inc()
        if prompt_tokens:
            m["llm_tokens_total"].labels(model=model, provider=provider, token_type="prompt").inc(prompt_tokens)
        if completion_tokens:
            m["llm_tokens_total"].labels(model=model, provider=provider, token_type="completion").inc(completion_tokens)
        m["llm_request_duration_seconds"].labels(model=model, provider=provider).observe(duration_seconds)
        if cost_credits:
            m["llm_cost_total"].labels(
                model=model, provider=provider, user_id=user_id, organization_id=organization_id
            ).inc(cost_credits)

    def record_credit_transaction(
        self,
        *,
        transaction_type: str,
        user_id: str,
        organization_id: str,
        amount: float = 0.0,
        balance: float | None = None,
        tier: str = "",
        service: str = "",
        model: str = "",
    ) -> None:
        """Count a credit transaction; ``service`` (and ``model``) add ``amount`` to the usage;
        ``balance`` sets the balance gauge."""
        m = self.metrics
        m["credit_transactions_total"].labels(
            transaction_type=transaction_type, user_id=user_id, organization_id=organization_id
        ).inc()
        if service and amount:
            m["credit_usage_total"].labels(service=service, model=model, organization_id=organization_id).inc(
                abs(amount)
            )
        if balance is not None:
            m["credit_balance"].labels(user_id=user_id, organization_id=organization_id, tier=tier).set(balance)

    def record_payment(self, *, status: str, payment_method: str, tier: str, amount_cents: int = 0) -> None:
        """Count a payment outcome; a ``succeeded``/``success`` payment adds ``amount_cents`` to revenue."""
        m = self.metrics
        m["payment_transactions_total"].labels(status=status, payment_method=payment_method, tier=tier).inc()
        if amount_cents and status in ("success", "succeeded", "paid"):
            m["revenue_total"].labels(tier=tier, payment_method=payment_method).inc(amount_cents)

    def record_db_query(
        self, *, operation: str, table: str, duration_seconds: float, error: BaseException | str | None = None
    ) -> None:
        """Observe one query's latency; an ``error`` (exception or type name) also counts in ``db_errors_total``."""
        m = self.metrics
        m["db_query_duration_seconds"].labels(operation=operation, table=table).observe(duration_seconds)
        if error is not None:
            error_type = error if isinstance(error, str) else type(error).__name__
            m["db_errors_total"].labels(operation=operation, error_type=error_type).inc()

    @contextmanager
    def db_query(self, operation: str, table: str) -> Iterator[None]:
        """Time the block as one query; an exception raised in it is counted and re-raised."""
        start = time.perf_counter()
        error: BaseException | None = None
        try:
            yield
        except BaseException as exc:
            error = exc
            raise
        finally:
            self.record_db_query(
                operation=operation, table=table, duration_seconds=time.perf_counter() - start, error=error
            )

    def record_subscription_change(
        self,
        *,
        change_type: str,
        from_tier: str,
        to_tier: str,
        organization_id: str | None = None,
        active: bool | None = None,
    ) -> None:
        """Count an upgrade, downgrade or cancellation; with ``organization_id`` and ``active``, set its status."""
        m = self.metrics
        m["subscription_changes_total"].labels(change_type=change_type, from_tier=from_tier, to_tier=to_tier).inc()
        if organization_id is not None and active is not None:
            tier = from_tier if change_type in ("cancellation", "cancel", "canceled", "cancelled") else to_tier
            m["subscription_status"].labels(organization_id=organization_id, tier=tier).set(1 if active else 0)

    def observe_pool(self, pool: Any, name: str = "default") -> None:
        """Report a psycopg_pool or asyncpg pool's connection gauges, read at each scrape."""
        from ops_observe.metrics.pools import observe_pool

        observe_pool(self, pool, name)


def _create(
    spec: MetricSpec,
    labelnames: tuple[str, ...],
    namespace: str,
    registry: CollectorRegistry,
    buckets: Mapping[str, tuple[float, ...]],
) -> MetricWrapperBase:
    name = spec.name.removesuffix("_total") if spec.kind == "counter" else spec.name
    kwargs: dict[str, Any] = {"namespace": namespace, "registry": registry}
    if spec.kind == "histogram":
        kwargs["buckets"] = buckets[spec.buckets]
    if spec.kind == "gauge":
        kwargs["multiprocess_mode"] = spec.mode
    return _TYPES[spec.kind](name, spec.help, labelnames, **kwargs)


def random_key() -> bytes:
    """A fresh key for the id hash."""
    return secrets.token_bytes(32)
