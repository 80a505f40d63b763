"""Headless Chromium driven over the DevTools protocol, for tests that must read what a page
laid out (where an element is, whether it is in the window), not only its HTML: a fresh
profile each time (no localStorage from an earlier visit), a page script evaluated in the
page, and a screenshot of exactly what was measured. aiohttp (a Ray dependency) speaks
the WebSocket."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


class Page:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            msg = await self.ws.receive_json()
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return dict(msg.get("result", {}))

    async def evaluate(self, expression: str) -> Any:
        """The value of a page expression that returns JSON text."""
        res = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        value = res.get("result", {}).get("value")
        return None if value is None else json.loads(value)

    async def wait_for(self, expression: str, timeout: float) -> Any:
        """Evaluate until the value is truthy (the page has drawn it), then once more after
        a settle, so the answer is the page at rest; the last value after the timeout."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            try:
                value = await self.evaluate(expression)
                if value:
                    await asyncio.sleep(3)
                    return await self.evaluate(expression)
            except RuntimeError:  # mid-navigation: no page context to evaluate in yet
                pass
            await asyncio.sleep(1)
        return value

    async def goto(self, url: str) -> None:
        await self.call("Page.navigate", url=url)

    async def screenshot(self, path: Path) -> None:
        shot = await self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))


@asynccontextmanager
async def browser(chromium: str, width: int, height: int) -> AsyncIterator[Page]:
    """A page in a fresh Chromium profile of its own, `width` x `height` window."""
    import aiohttp

    with tempfile.TemporaryDirectory(prefix="orch-chromium-") as profile:
        proc = subprocess.Popen(
            [
                chromium,
                *FLAGS,
                f"--window-size={width},{height}",
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",  # the port it picked: DevToolsActivePort
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + 60
            while not (port_file.exists() and port_file.read_text().strip()):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("chromium did not open its DevTools port")
                await asyncio.sleep(0.2)
            port = port_file.read_text().split()[0]
            async with aiohttp.ClientSession() as http:
                pages: list[dict[str, Any]] = []
                while not pages:  # the first tab is listed a moment after the port opens
                    if time.monotonic() > deadline:
                        raise RuntimeError("chromium listed no page")
                    targets = await (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
                    pages = [t for t in targets if t["type"] == "page"]
                    await asyncio.sleep(0.2)
                async with http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                    p = Page(ws)
                    await p.call("Page.enable")
                    yield p
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
