"""The generator's feedback loop, timed: edit -> event delivered, and the page client's cost.

A router and a node on 127.0.0.1 (subdomain mode on `localhost`, as `scripts/run-local`).
One session; its `/events` stream read through the router. `--edits` PUTs alternate a
broken and a fixed `src/App.jsx`; each is timed from the PUT's start to the `errors`
event that sets or clears the error (the build error a generator acts on). Then the page
client (`/@id/__x00__preview-client`): its size raw and gzipped, and in headless Chromium,
`--loads` page loads, the time the client's own code runs on a page load (its performance.measure).
Prints a table and writes `bench/results/feedback-<ts>.json`. Bounded in count and time.

    .venv/bin/python bench/feedback.py [--edits 30] [--loads 10]
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.cluster import app_files, cluster, http  # noqa: E402
from tests.support.sse import EventStream  # noqa: E402

CLIENT = REPO / "previewnode" / "runtime" / "preview-client.js"


def served(source: bytes) -> bytes:
    """What the launcher serves: the client without its comment lines."""
    lines = source.decode().split("\n")
    return "\n".join(x for x in lines if not x.lstrip().startswith("//")).encode()


BROKEN = "export default function App() {\n  return <div>\n}\n"
SUBDOMAIN = ("--preview-domain", "localhost")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def edit_latencies(sid: str, port: int, edits: int) -> list[float]:
    api = f"http://127.0.0.1:{port}/kontext/preview/{sid}"
    stream = EventStream(port, f"/kontext/preview/{sid}/events")
    first = stream.next(10)
    assert first is not None and first.event == "session"
    good = app_files()["src/App.jsx"]
    out = []
    deadline = time.monotonic() + 120
    for i in range(edits):
        if time.monotonic() > deadline:
            break
        broken = i % 2 == 0
        t = time.perf_counter()
        res = http("PUT", f"{api}/files", {"files": {"src/App.jsx": BROKEN if broken else good}})
        assert res.status == 200, res.body
        stream.until(10, lambda m, b=broken: m.event == "errors" and bool(m.json()["errors"]) == b)
        out.append((time.perf_counter() - t) * 1000)
    stream.close()
    return out


def client_load_ms(url: str, loads: int) -> list[float]:
    from tests.support.browser import launch

    out: list[float] = []
    for browser in launch():
        for _ in range(loads):
            page = browser.new_page()
            page.goto(url, wait_until="load", timeout=30_000)
            ms = page.evaluate(
                "() => performance.getEntriesByName('preview-client', 'measure')[0]?.duration"
                " ?? null"
            )
            page.close()
            if ms is not None:
                out.append(float(ms))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=30)
    parser.add_argument("--loads", type=int, default=10)
    args = parser.parse_args()
    source = served(CLIENT.read_bytes())
    with (
        tempfile.TemporaryDirectory(prefix="feedback-bench-") as tmp,
        cluster(Path(tmp), nodes=1, node_args=SUBDOMAIN, router_args=SUBDOMAIN) as c,
    ):
        port = c.public_port
        api = f"http://127.0.0.1:{port}/kontext/preview?wait=ready"
        made = http("POST", api, {"files": app_files()}).json()
        latencies = edit_latencies(made["sessionId"], port, args.edits)
        loads = client_load_ms(made["previewUrl"], args.loads)
    result = {
        "edit_to_errors_event_ms": {
            "n": len(latencies),
            "p50": statistics.median(latencies),
            "p95": pct(latencies, 0.95),
        },
        "client_bytes": len(source),
        "client_gzip_bytes": len(gzip.compress(source)),
        "client_load_ms": {
            "n": len(loads),
            "p50": statistics.median(loads) if loads else None,
            "max": max(loads) if loads else None,
        },
    }
    print(f"{'measure':<34} {'value':>12}")
    e = result["edit_to_errors_event_ms"]
    print(f"{'PUT -> errors event p50 (ms)':<34} {e['p50']:>12.1f}")
    print(f"{'PUT -> errors event p95 (ms)':<34} {e['p95']:>12.1f}")
    print(f"{'page client size (bytes)':<34} {result['client_bytes']:>12}")
    print(f"{'page client gzipped (bytes)':<34} {result['client_gzip_bytes']:>12}")
    if loads:
        print(f"{'page client run time p50 (ms)':<34} {statistics.median(loads):>12.2f}")
    out = REPO / "bench" / "results" / f"feedback-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
