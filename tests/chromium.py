"""Real headless Chromium for tests, driven over the DevTools protocol with aiohttp's WebSocket client.

Chromium's one-shot ``--screenshot`` cannot press a button, and the Playwright package would bring
its own driver; the protocol itself is small: open a tab at a window size, load a page, click an
element as a person would (mouse down and up at its centre), read the DOM, take a screenshot.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT = 60.0


def chromium_or_skip() -> Path:
    """Debian's Chromium, or a loud skip (a failure under CI, where tests/prepare.py installs it)."""
    if CHROMIUM.exists():
        return CHROMIUM
    reason = f"{CHROMIUM} is missing (tests/prepare.py installs Debian's chromium when run as root)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}")
    print(f"\n!!! SKIPPING the headless Chromium check: {reason}")
    pytest.skip(reason)


class Tab:
    """One browser tab at a fixed viewport size."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws, self._session = ws, ""
        self._ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._loads: asyncio.Queue[None] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

    async def attach(self) -> None:
        """Open a new tab and talk to it from now on (one flat session over the browser's socket)."""
        target = await self.send("Target.createTarget", session=False, url="about:blank")
        attached = await self.send("Target.attachToTarget", session=False, targetId=target["targetId"], flatten=True)
        self._session = attached["sessionId"]
        await self.send("Page.enable")

    def stop(self) -> None:
        self._reader.cancel()

    async def _read(self) -> None:
        async for message in self._ws:
            data = message.json()
            if "id" in data and data["id"] in self._replies:
                self._replies.pop(data["id"]).set_result(data)
            elif data.get("method") == "Page.loadEventFired" and data.get("sessionId") == self._session:
                self._loads.put_nowait(None)

    async def send(self, method: str, session: bool = True, **params: Any) -> dict[str, Any]:
        """One protocol command; its result (an error reply fails the test)."""
        call_id = next(self._ids)
        reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[call_id] = reply
        message: dict[str, Any] = {"id": call_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        await self._ws.send_json(message)
        data = await asyncio.wait_for(reply, TIMEOUT)
        assert "error" not in data, (method, data["error"])
        result: dict[str, Any] = data.get("result", {})
        return result

    async def _loaded(self) -> None:
        await asyncio.wait_for(self._loads.get(), TIMEOUT)

    async def open(self, url: str) -> None:
        """Load a page, as typing its address does (a GET)."""
        await self.send("Page.navigate", url=url)
        await self._loaded()

    async def click(self, selector: str) -> None:
        """Press and release the mouse at the centre of the element, then wait for the page it loads."""
        box = await self.evaluate(
            f"(() => {{ const r = document.querySelector({selector!r}).getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        x, y = box
        for kind in ("mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)
        await self._loaded()

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def html(self) -> str:
        return str(await self.evaluate("document.documentElement.outerHTML"))

    async def screenshot(self) -> bytes:
        """A PNG of the whole page as laid out at this viewport's width."""
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        return base64.b64decode(shot["data"])


@contextlib.asynccontextmanager
async def tab(width: int, height: int, *, mobile: bool = False) -> AsyncIterator[Tab]:
    """A fresh headless Chromium (own profile, no background traffic) with one tab of this size."""
    profile = tempfile.mkdtemp(prefix="signpost-chromium-")
    process = await asyncio.create_subprocess_exec(
        str(chromium_or_skip()),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        endpoint = await _endpoint(Path(profile) / "DevToolsActivePort", process)
        async with aiohttp.ClientSession() as http, http.ws_connect(endpoint, max_msg_size=0) as ws:
            opened = Tab(ws)
            try:
                await opened.attach()
                await opened.send(
                    "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=mobile
                )
                yield opened
            finally:
                opened.stop()
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
        shutil.rmtree(profile, ignore_errors=True)


async def _endpoint(port_file: Path, process: asyncio.subprocess.Process) -> str:
    """The browser's WebSocket address, from the file Chromium writes once it listens."""
    for _ in range(int(TIMEOUT * 10)):
        if port_file.exists():
            lines = port_file.read_text().split("\n")
            if len(lines) >= 2 and lines[1]:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        assert process.returncode is None, f"Chromium exited with {process.returncode}"
        await asyncio.sleep(0.1)
    raise AssertionError("Chromium did not open its DevTools port")
