"""A first page load, as a browser does it: index.html, then every module it imports,
transitively, over up to PAGE_CONCURRENCY keep-alive connections, bounded in requests and
time. Keeps the slowest request of each kind (prebundled deps, Vite client, app modules,
CSS, index.html) to show where the first page's time goes."""

from __future__ import annotations

import http.client
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urljoin, urlsplit

from bench.harness.run import bounded
from bench.node.api import HOST, REQUEST_TIMEOUT, Api

PAGE_MAX_REQUESTS = 300  # per page load
PAGE_DEADLINE = 60.0
PAGE_CONCURRENCY = 6  # what a browser opens per origin

# Import specifiers in what Vite serves: `from "/x"`, `import "/x"`, `import("/x")`, and
# the prebundled deps' relative `./chunk-*.js`; in HTML, `src=` and `href=`.
JS_IMPORT = re.compile(rb"""(?:\bfrom\s*|\bimport\s*\(?\s*)["']([^"'\s]+)["']""")
MODULE_EXT = re.compile(r"\.(?:m?js|jsx|tsx?|css)(?:\?|$)")
HTML_REF = re.compile(rb"""\b(?:src|href)\s*=\s*["']([^"'\s]+)["']""")


class PageLoader:
    """Loads a preview like a browser would on first visit: index.html, then every module
    it imports, transitively, over up to PAGE_CONCURRENCY keep-alive connections."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.local = threading.local()

    def _timed_get(self, path: str) -> tuple[int, bytes, str, float]:
        t0 = time.perf_counter()
        status, body, ctype = self._get(path)
        return status, body, ctype, time.perf_counter() - t0

    def _get(self, path: str) -> tuple[int, bytes, str]:
        for attempt in (0, 1):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = http.client.HTTPConnection(HOST, self.port, timeout=REQUEST_TIMEOUT)
                self.local.conn = conn
            try:
                conn.request("GET", path, headers={"Accept": "*/*"})
                resp = conn.getresponse()
                body = resp.read()
                return resp.status, body, resp.getheader("content-type", "")
            except (OSError, http.client.HTTPException):
                conn.close()
                self.local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def create_loaded(self, api: Api, files: dict[str, str], n: int, seconds: float) -> list[str]:
        """Up to n sessions created with ?wait=ready, each page loaded once (time-bounded)."""
        sids = []
        for _ in bounded(n, seconds):
            sid, _, _ = api.create(files, wait=True)
            self.load(sid)
            sids.append(sid)
        return sids

    def load(self, sid: str) -> dict[str, Any]:
        base = f"/preview/{sid}/"
        t0 = time.perf_counter()
        status, html, _ = self._get(base)
        t_html = time.perf_counter() - t0
        seen = {base}
        statuses: dict[str, int] = {}
        slowest: dict[str, float] = {"index.html": round(t_html * 1000, 1)}
        nbytes = len(html)
        level = module_refs(base, html, HTML_REF, base, seen)
        requests = 1
        deadline = time.monotonic() + PAGE_DEADLINE
        with ThreadPoolExecutor(PAGE_CONCURRENCY) as pool:
            while level and requests < PAGE_MAX_REQUESTS and time.monotonic() < deadline:
                level = level[: PAGE_MAX_REQUESTS - requests]
                results = list(pool.map(self._timed_get, level))
                requests += len(level)
                nxt: list[str] = []
                for url, (st, body, ctype, dt) in zip(level, results, strict=True):
                    kind = request_kind(url)
                    slowest[kind] = max(slowest.get(kind, 0.0), round(dt * 1000, 1))
                    statuses[str(st)] = statuses.get(str(st), 0) + 1
                    nbytes += len(body)
                    if st == 200 and ("javascript" in ctype or url.endswith((".js", ".jsx"))):
                        nxt += module_refs(url, body, JS_IMPORT, base, seen)
                level = nxt
        self.close()
        return {
            "html_status": status,
            "html_s": t_html,
            "total_s": time.perf_counter() - t0,
            "requests": requests,
            "bytes": nbytes,
            "statuses": statuses,
            "slowest_ms": slowest,
        }

    def close(self) -> None:
        conn = getattr(self.local, "conn", None)
        if conn is not None:
            conn.close()
            self.local.conn = None


def module_refs(
    url: str, body: bytes, pattern: re.Pattern[bytes], base: str, seen: set[str]
) -> list[str]:
    """The URLs under `base` that `body` (served at `url`) refers to by `pattern` and that
    are not in `seen` yet (added to it): what a browser fetches next."""
    out = []
    for m in pattern.finditer(body):
        ref = m.group(1).decode("utf-8", "replace")
        if not ref.startswith(("/", "./", "../")) or ref.startswith("//"):
            continue
        if ref.startswith(".") and not MODULE_EXT.search(ref):
            continue  # e.g. `from './MyComponent'` inside a comment of react-dom
        target = urljoin(url, ref)
        path = urlsplit(target).path
        full = path + (f"?{urlsplit(target).query}" if urlsplit(target).query else "")
        if path.startswith(base) and full not in seen:
            seen.add(full)
            out.append(full)
    return out


def request_kind(url: str) -> str:
    """What a page request is, for the "slowest request of each kind" breakdown."""
    path = urlsplit(url).path
    if "/deps/" in path:
        return "prebundled deps"
    if "/@vite/" in path or "/vite/dist/client/" in path or "@react-refresh" in path:
        return "vite client"
    if path.endswith(".css"):
        return "css (tailwind)"
    return "app modules"
