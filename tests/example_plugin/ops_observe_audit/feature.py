"""The audit feature: a settings section ``[ops_observe.audit]``, an endpoint and a lifespan hook."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ops_observe.schema import setting, url_path


@dataclass(frozen=True)
class AuditSettings:
    """``[ops_observe.audit]``: who did what, kept for the auditors."""

    enabled: bool | None = setting(None, doc="Serve the audit endpoint; unset: when `audit` is in `middleware`.")
    path: str = setting("/audit", doc="Where the audit trail is served.", check=url_path)
    signing_key: str = setting("", doc="Key the trail is signed with.", secret=True)


SETTINGS = AuditSettings


def install(suite: Any) -> None:
    """Serve the trail at ``audit.path`` and note start-up and shut-down in it."""
    section = suite.settings.audit
    if not suite.feature_on("audit", section.enabled):
        return
    trail: list[str] = []
    suite.state["audit.trail"] = trail

    async def endpoint(scope: Any, receive: Any, send: Any) -> None:
        body = "\n".join(trail).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})

    suite.add_endpoint(section.path, endpoint, setting="audit.path")
    suite.on_startup(lambda: trail.append("started"))
    suite.on_shutdown(lambda: trail.append("stopped"))
