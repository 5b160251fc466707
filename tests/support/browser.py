"""Headless Chromium for e2e tests: Debian's browser driven by `playwright`, never a download."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from playwright.sync_api import Browser, Page, sync_playwright

from previewnode.check import CHROMIUM_FLAGS

CHROMIUM = "/usr/bin/chromium"
FLAGS = CHROMIUM_FLAGS


class Watched:
    """A page with its console and WebSockets recorded."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.console: list[str] = []
        self.sockets: list[Any] = []
        self.failed: list[str] = []
        page.on("console", lambda msg: self.console.append(f"{msg.type}: {msg.text}"))
        page.on(
            "response",
            lambda r: self.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None,
        )
        page.on("websocket", lambda ws: self.sockets.append(ws))

    def hmr_sockets(self) -> list[Any]:
        return [ws for ws in self.sockets if "/hmr" in ws.url]

    def open_hmr(self) -> list[Any]:
        return [ws for ws in self.hmr_sockets() if not ws.is_closed()]

    def errors(self) -> list[str]:
        """Console errors and failed loads, except the browser's own favicon probe."""
        failed = [f for f in self.failed if not f.endswith("/favicon.ico")]
        console = [
            line
            for line in self.console
            if (line.startswith("error") or "failed to connect" in line)
            and "Failed to load resource" not in line
        ]
        return failed + console


def open_app(browser: Browser, url: str) -> Watched:
    page = browser.new_page()
    w = Watched(page)
    page.goto(url, wait_until="load", timeout=30_000)
    page.get_by_role("button").wait_for(timeout=15_000)
    deadline = time.monotonic() + 10
    while not w.open_hmr():
        assert time.monotonic() < deadline, f"no HMR socket; console: {w.console}"
        page.wait_for_timeout(50)
    return w


def launch() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield b
        finally:
            b.close()
