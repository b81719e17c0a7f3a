"""ops_observe.current: the serving app, else the most recent wrapped app alive; the sole-app shortcut.

Run in a fresh interpreter: whether an app is the only one alive depends on every app the other
tests of this process still hold.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCENARIO = textwrap.dedent(
    """
    import asyncio, gc
    import httpx
    import ops_observe
    from ops_observe.current import current_suite, sole

    seen = []

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        seen.append(current_suite())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def get(wrapped):
        transport = httpx.ASGITransport(app=wrapped)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/x")).status_code == 200

    async def main():
        settings = {"middleware": ["correlation"], "health": {"enabled": False}}
        first = ops_observe.wrap(app, settings=settings)
        assert sole(first.suite)
        await get(first)
        assert seen == [first.suite]

        async def other_app(scope, receive, send):
            await app(scope, receive, send)

        second = ops_observe.wrap(other_app, settings=settings)
        assert not sole(first.suite) and not sole(second.suite)
        assert current_suite() is second.suite  # outside a request: the most recent
        await get(first)
        await get(second)
        assert seen[1:] == [first.suite, second.suite], seen  # each request sees the app serving it

        del second
        seen.clear()  # it held the second suite too
        gc.collect()
        assert sole(first.suite)
        assert current_suite() is first.suite  # the most recent still alive, not None
        await get(first)
        assert seen == [first.suite]
        print("ok")

    asyncio.run(main())
    """
)


def test_the_sole_app_is_current_without_setting_anything_and_a_second_app_turns_that_off() -> None:
    done = subprocess.run([sys.executable, "-c", SCENARIO], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
