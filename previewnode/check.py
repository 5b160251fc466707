"""The headless check (CONTRACT §2 `POST /kontext/preview/{id}/check`): "ready" as "it
rendered without errors", not only "the port answers".

One Chromium per node (Debian's, driven by the `playwright` package; enabled by
`--check-browser PATH`), started on first use in a thread of its own (Playwright's sync
API belongs to the thread that started it), one check at a time, a bounded queue and a
hard timeout. The page is the tenant's code running in the node's browser, so the
browser reaches nothing but that one preview: every hostname resolves to loopback, every
request to another origin is refused (and listed in `failedRequests`), WebSockets and
service workers are off. It talks to this node's own listener with the preview's Host, so
no router or DNS is involved.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import trio

from proxycore.errors import OverCapacity

MAX_WAITING = 4
CHECK_SECONDS = 20.0
# Headless Chromium in a container: no GPU, no background traffic, no /dev/shm reliance.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
FLAGS = [*CHROMIUM_FLAGS, "--host-resolver-rules=MAP * 127.0.0.1"]  # no name leaves the node


@dataclass(frozen=True)
class CheckRequest:
    url: str  # http://{preview host}:{node port}{base}{path}
    cookie: tuple[str, str] | None  # a viewer cookie for private previews
    wait_ms: int  # after `load`, for late errors


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class HeadlessChecker:
    def __init__(self, browser: str, timeout: float = CHECK_SECONDS) -> None:
        self.browser_path = browser
        self.timeout = timeout
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="check")
        self._waiting = 0
        self._playwright: Any = None
        self._browser: Any = None

    async def check(self, request: CheckRequest) -> dict[str, Any]:
        if self._waiting >= MAX_WAITING:
            raise OverCapacity("the node's headless checks are all busy")
        self._waiting += 1
        try:
            future = self._pool.submit(self._run, request)
            return await trio.to_thread.run_sync(future.result, abandon_on_cancel=True)
        finally:
            self._waiting -= 1

    def close(self) -> None:
        def stop() -> None:
            if self._browser is not None:
                self._browser.close()
            if self._playwright is not None:
                self._playwright.stop()

        with contextlib.suppress(Exception):  # one that will not close dies with the node
            self._pool.submit(stop).result(timeout=10)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- in the check thread ----------------------------------------------------------------

    def _ensure_browser(self) -> Any:
        if self._browser is None or not self._browser.is_connected():
            from playwright.sync_api import sync_playwright  # optional: only when enabled

            if self._playwright is None:
                self._playwright = sync_playwright().start()
            self._browser = self._playwright.chromium.launch(
                executable_path=self.browser_path, args=FLAGS, headless=True
            )
        return self._browser

    def _run(self, request: CheckRequest) -> dict[str, Any]:
        started = time.monotonic()
        browser = self._ensure_browser()
        origin = origin_of(request.url)
        context = browser.new_context(service_workers="block")
        runtime: list[dict[str, Any]] = []
        console: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        try:
            if request.cookie is not None:
                name, value = request.cookie
                context.add_cookies([{"name": name, "value": value, "url": origin}])

            def only_this_preview(route: Any) -> None:
                if origin_of(route.request.url) == origin:
                    route.continue_()
                else:
                    failed.append({"url": route.request.url, "error": "blocked: another origin"})
                    route.abort("blockedbyclient")

            context.route(re.compile(r"^(https?|wss?)://"), only_this_preview)
            context.route_web_socket(re.compile(".*"), lambda ws: ws.close())
            page = context.new_page()
            page.on("pageerror", lambda err: _page_error(err, runtime))
            page.on("console", lambda msg: _console(msg, console))
            page.on(
                "requestfailed",
                lambda req: (
                    failed.append({"url": req.url, "error": req.failure or "failed"})
                    if origin_of(req.url) == origin
                    else None
                ),
            )
            page.on(
                "response",
                lambda resp: (
                    failed.append({"url": resp.url, "status": resp.status})
                    if resp.status >= 400
                    else None
                ),
            )
            budget_ms = int(self.timeout * 1000)
            response = page.goto(request.url, wait_until="load", timeout=budget_ms)
            page.wait_for_timeout(request.wait_ms)
            fcp = page.evaluate(
                "() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null"
            )
            png = page.screenshot(type="png", timeout=budget_ms)
            status = response.status if response is not None else 0
        except Exception as exc:  # the page never loaded: that is the check's answer
            return _result(request, 0, runtime, console, failed, None, b"", started, str(exc))
        finally:
            context.close()
        return _result(request, status, runtime, console, failed, fcp, png, started, None)


def _page_error(err: Any, out: list[dict[str, Any]]) -> None:
    stack = str(err.stack or "")
    if "/@vite/client" in stack:
        return  # Vite's client finds no HMR socket in the check: not the app's error
    out.append({"message": str(err.message)[:2000], "stack": stack[:4000]})


def _console(msg: Any, out: list[dict[str, Any]]) -> None:
    if msg.type not in ("error", "warning"):
        return
    text = str(msg.text)
    if "[vite]" in text and "websocket" in text.lower():
        return  # Vite's client finds no HMR socket here: not the app's error
    where = msg.location or {}
    out.append(
        {
            "type": msg.type,
            "message": text[:2000],
            "url": where.get("url", ""),
            "line": where.get("lineNumber", 0),
        }
    )


def _result(
    request: CheckRequest,
    status: int,
    runtime: list[dict[str, Any]],
    console: list[dict[str, Any]],
    failed: list[dict[str, Any]],
    fcp: float | None,
    png: bytes,
    started: float,
    error: str | None,
) -> dict[str, Any]:
    errors = [c for c in console if c["type"] == "error"]
    out: dict[str, Any] = {
        "success": True,
        "ok": error is None and 200 <= status < 400 and not runtime and not errors,
        "status": status,
        "runtimeErrors": runtime[:50],
        "consoleErrors": console[:50],
        "failedRequests": failed[:50],
        "firstContentfulPaintMs": round(fcp, 1) if isinstance(fcp, (int, float)) else None,
        "screenshot": base64.b64encode(png).decode("ascii") if png else None,
        "seconds": round(time.monotonic() - started, 3),
    }
    if error is not None:
        out["error"] = error.splitlines()[0][:500]
    return out
