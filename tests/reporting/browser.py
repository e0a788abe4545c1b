"""Open a page in headless Chromium and see it as a person would: console errors, what is
drawn, a screenshot.

Chromium (Debian's ``chromium``; ``.ci/run`` installs it) is driven over the DevTools
protocol with aiohttp's websocket client (aiohttp comes with ccxt). The network is
closed to it: nothing but the page's own file can load.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

T = TypeVar("T")

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--remote-debugging-port=0",
    "--window-size=1300,900",
)


def chromium() -> str | None:
    """Return the Chromium executable, or None when it is not installed."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageVisit:
    """What a page showed: its console errors and the value of a script run once it settled."""

    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    """Every URL the page asked for besides itself (``data:`` and ``blob:`` excepted)."""
    result: Any = None


def visit(
    page: Path, check: str, *, wait_for: str, screenshot: Path, timeout: float = 60.0
) -> PageVisit:
    """Open ``page``, wait until the script ``wait_for`` is true, evaluate ``check`` (a
    promise is awaited), and save a full-page screenshot."""
    return _in_chromium(lambda port: _drive(port, page, check, wait_for, screenshot), timeout)


_running: list[tuple[subprocess.Popen[bytes], int, tempfile.TemporaryDirectory[str]]] = []
"""This process's chromium, its DevTools port and its profile folder, once started."""


def _chromium_port(timeout: float) -> int:
    """Return the DevTools port of this process's chromium, started if none runs.

    One chromium serves every page a test process opens, each in a tab of its own
    (`_tab`): starting one per page took ~1.2 s a page on the 2-core VM.
    """
    if _running and _running[0][0].poll() is None:
        return _running[0][1]
    stop_chromium()
    executable = chromium()
    assert executable is not None
    # chromium's helper processes may still be writing the profile as it is removed
    profile = tempfile.TemporaryDirectory(prefix="tradeloom-chromium-", ignore_cleanup_errors=True)
    proc = subprocess.Popen(
        [executable, *FLAGS, f"--user-data-dir={profile.name}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: every helper is stopped with it
    )
    try:
        port = _port(Path(profile.name), proc, timeout)
    except BaseException:
        _stop_group(proc)
        profile.cleanup()
        raise
    _running.append((proc, port, profile))
    return port


def stop_chromium() -> None:
    """Stop this process's chromium, if one runs, and remove its profile (the suite's
    ``pytest_sessionfinish`` calls it: an xdist worker ends without running ``atexit``)."""
    while _running:
        proc, _, profile = _running.pop()
        _stop_group(proc)
        profile.cleanup()


def _in_chromium(session: Callable[[int], Awaitable[T]], timeout: float) -> T:
    """Run ``session(port)`` against this process's chromium within ``timeout`` seconds.

    A session that fails stops the browser: the next starts from a fresh one.
    """
    port = _chromium_port(timeout)
    try:
        return asyncio.run(asyncio.wait_for(session(port), timeout))
    except BaseException:
        stop_chromium()
        raise


@contextlib.asynccontextmanager
async def _tab(
    http: aiohttp.ClientSession, port: int
) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """Open a new blank tab; yield its DevTools connection; close the tab after."""
    async with http.put(f"http://127.0.0.1:{port}/json/new?about:blank") as answer:
        target = json.loads(await answer.text())
    try:
        async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            yield ws
    finally:
        async with http.get(f"http://127.0.0.1:{port}/json/close/{target['id']}") as closed:
            await closed.read()


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop chromium, then whatever of its helpers (renderer, GPU, zygote) outlived it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _port(profile: Path, proc: subprocess.Popen[bytes], timeout: float) -> int:
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker.is_file():
            text = marker.read_text().split()
            if text:
                return int(text[0])
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited with {proc.returncode} before listening")
        time.sleep(0.05)
    raise TimeoutError("chromium did not open its DevTools port")


@contextlib.asynccontextmanager
async def _devtools(
    port: int, visit: PageVisit, kept: Callable[[str], bool]
) -> AsyncIterator[Callable[..., Awaitable[dict[str, Any]]]]:
    """Open a tab; yield its DevTools command call. Its console errors and the requests
    ``kept`` says are kept go to ``visit``."""
    async with aiohttp.ClientSession() as http, _tab(http, port) as ws:
        ids = itertools.count(1)
        pending: dict[int, asyncio.Future[Any]] = {}

        async def reader() -> None:
            async for message in ws:
                data = json.loads(message.data)
                if "id" in data and data["id"] in pending:
                    pending.pop(data["id"]).set_result(data)
                elif data.get("method") == "Runtime.exceptionThrown":
                    details = data["params"]["exceptionDetails"]
                    text = details.get("exception", {}).get("description") or details["text"]
                    visit.errors.append(text)
                elif data.get("method") == "Runtime.consoleAPICalled":
                    if data["params"]["type"] in ("error", "assert"):
                        args = data["params"]["args"]
                        visit.errors.append(" ".join(str(a.get("value", a)) for a in args))
                elif data.get("method") == "Network.requestWillBeSent":
                    url = data["params"]["request"]["url"]
                    if kept(url):
                        visit.requests.append(url)
                elif data.get("method") == "Log.entryAdded":
                    entry = data["params"]["entry"]
                    if entry["level"] == "error":
                        visit.errors.append(f"{entry['source']}: {entry['text']}")

        async def call(method: str, **params: Any) -> dict[str, Any]:
            n = next(ids)
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            pending[n] = future
            await ws.send_str(json.dumps({"id": n, "method": method, "params": params}))
            answer = await future
            if "error" in answer:
                raise RuntimeError(f"{method}: {answer['error']}")
            return answer["result"]

        task = asyncio.create_task(reader())
        try:
            for domain in ("Runtime", "Log", "Page", "Network"):
                await call(f"{domain}.enable")
            yield call
        finally:
            task.cancel()


async def _drive(port: int, page: Path, check: str, wait_for: str, shot: Path) -> PageVisit:
    visit = PageVisit()
    page_url = page.resolve().as_uri()

    def kept(url: str) -> bool:
        return url != page_url and not url.startswith(("data:", "blob:"))

    async with _devtools(port, visit, kept) as call:
        tab = Tab(call, visit)
        await call("Page.navigate", url=page_url)
        while not await tab.evaluate(f"document.readyState === 'complete' && ({wait_for})"):
            await asyncio.sleep(0.1)
        visit.result = await tab.evaluate(check)
        height = await tab.evaluate("document.documentElement.scrollHeight")
        await call(
            "Emulation.setDeviceMetricsOverride",
            width=1300,
            height=int(height),
            deviceScaleFactor=1,
            mobile=False,
        )
        image = await call("Page.captureScreenshot", format="png")
        shot.parent.mkdir(parents=True, exist_ok=True)
        shot.write_bytes(base64.b64decode(image["data"]))
    return visit


class Tab:
    """One page of a running chromium, driven step by step (`drive`)."""

    def __init__(self, call: Any, visit: PageVisit) -> None:
        self._call = call
        self.visit = visit

    async def evaluate(self, expression: str) -> Any:
        """Return the value of ``expression`` in the page (a promise is awaited)."""
        result = await self._call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        return result["result"].get("value")

    async def navigate(self, url: str) -> None:
        """Open ``url`` and wait until it has loaded."""
        await self._call("Page.navigate", url=url)
        await asyncio.sleep(0.2)
        await self.wait_for("document.readyState === 'complete'")

    async def wait_for(self, expression: str, timeout: float = 60.0) -> Any:
        """Wait until ``expression`` is truthy in the page; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"the page never showed: {expression}")
            await asyncio.sleep(0.1)

    async def emulate(self, width: int, height: int) -> None:
        """Show the pages that follow as a phone of ``width`` x ``height`` CSS pixels does
        (a mobile viewport: the page's ``<meta name=viewport>`` applies)."""
        await self._call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=3,
            mobile=True,
        )

    async def screenshot_as_shown(self, path: Path) -> None:
        """Save what the viewport shows now, at its emulated size (`emulate`)."""
        image = await self._call("Page.captureScreenshot", format="png")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(image["data"]))

    async def screenshot(self, path: Path) -> None:
        """Save a full-page screenshot."""
        height = await self.evaluate("document.documentElement.scrollHeight")
        await self._call(
            "Emulation.setDeviceMetricsOverride",
            width=1300,
            height=min(int(height), 4000),
            deviceScaleFactor=1,
            mobile=False,
        )
        image = await self._call("Page.captureScreenshot", format="png")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(image["data"]))
        await self._call("Emulation.clearDeviceMetricsOverride")


def drive(steps: Any, *, timeout: float = 120.0) -> tuple[Any, PageVisit]:
    """Run ``await steps(tab)`` in a new tab of this process's chromium; return its value
    and what the pages showed (console errors, requests)."""
    return _in_chromium(lambda port: _steps(port, steps), timeout)


async def _steps(port: int, steps: Any) -> tuple[Any, PageVisit]:
    visit = PageVisit()
    async with _devtools(port, visit, lambda url: True) as call:
        value = await steps(Tab(call, visit))
    return value, visit
