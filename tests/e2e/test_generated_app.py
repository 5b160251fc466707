"""A real-shaped generated app renders as its author sees it: its own config, in the sandbox.

The fixture (tests/fixtures/generated) is modelled on what generators emitted in
2024-25: React + TypeScript, Tailwind v3 with `tailwind.config.ts` (theme colours from
CSS variables, `tailwindcss-animate`), `@apply border-border` in `index.css`, a PostCSS
config, a shadcn-style `Button` (cva + tailwind-merge), the `@/` alias and `__dirname`
in `vite.config.ts`, a dev-only plugin, and `react-router` with two routes. Its
dependencies, Tailwind v3 and its own Vite 5 included, are installed for the session
(scripts off); its config runs inside the sandbox, on that Vite, at the root of its own
origin. Beside
it, a Vue 3 and a Svelte 5 app (tests/fixtures/vue, svelte) render through their own
configs and framework plugins, from their own devDependencies.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.support.browser import Watched
from tests.support.cluster import Cluster, cluster, http
from tests.support.processes import poll_until

pytestmark = pytest.mark.e2e

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FIXTURE = FIXTURES / "generated"
SUBDOMAIN = ("--preview-domain", "localhost")
PRIMARY = "rgb(4, 200, 200)"  # hsl(180 96% 40%), the theme's --primary


def fixture_files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in root.rglob("*") if p.is_file()}


def generated_files() -> dict[str, str]:
    return fixture_files(FIXTURE)


def create_ready(c: Cluster, files: dict[str, str]) -> dict[str, Any]:
    """Create, then wait for `ready` by polling: an install can outlast the router's
    upstream timeout, which a create held with `?wait=ready` would meet (504)."""
    base = c.routers[0].url
    res = http("POST", f"{base}/kontext/preview", {"files": files})
    assert res.status == 201, res.body
    sid = res.json()["sessionId"]

    def ready() -> dict[str, Any] | None:
        got: dict[str, Any] = http("GET", f"{base}/kontext/preview/{sid}").json()
        assert got["status"] != "failed", got
        return got if got["status"] == "ready" else None

    return poll_until(ready, 200, step=0.5)


def open_page(browser: Browser, s: dict[str, Any], text: str) -> tuple[Page, Watched]:
    """The session's page in a new tab, once `text` shows."""
    page = browser.new_page()
    w = Watched(page)
    page.goto(s["previewUrl"], wait_until="load", timeout=60_000)
    page.get_by_text(text).wait_for(timeout=30_000)
    return page, w


def hot_edit(
    c: Cluster, page: Page, w: Watched, sid: str, files: dict[str, str], text: str
) -> None:
    """PUT `files` once the page's HMR socket is open; `text` must show with no reload."""
    deadline = time.monotonic() + 15
    while not w.open_hmr():
        assert time.monotonic() < deadline, f"no HMR socket: {w.console}"
        page.wait_for_timeout(100)
    page.evaluate("window.__marker = 'kept'")
    edit = c.put_files(sid, files)
    assert edit.status == 200, edit.body
    page.get_by_text(text).wait_for(timeout=15_000)
    assert page.evaluate("window.__marker") == "kept", "the page reloaded instead"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("generated")
    node_args = (*SUBDOMAIN, "--sandbox", "required", "--hold-seconds", "180")
    with cluster(tmp, nodes=1, routers=1, node_args=node_args, router_args=SUBDOMAIN) as c:
        assert http("GET", f"{c.nodes['node-0'].url}/readyz").json()["sandbox"] == "bwrap"
        yield c


def test_a_generated_app_renders_styled_routes_and_hot_updates(
    browser: Browser, platform: Cluster
) -> None:
    c = platform
    t = time.monotonic()
    s = create_ready(c, generated_files())
    ready_s = time.monotonic() - t
    assert s["errors"] == [] and s["ignored"] == []
    page, w = open_page(browser, s, "Generated home")
    # the app's Tailwind v3 theme and its shadcn-style button are applied
    assert page.evaluate("getComputedStyle(document.querySelector('h1')).color") == PRIMARY
    button_bg = "getComputedStyle(document.querySelector('button')).backgroundColor"
    assert page.evaluate(button_bg) == PRIMARY
    # `@apply border-border` in its base layer
    border = page.evaluate("getComputedStyle(document.querySelector('main')).borderColor")
    assert border == "rgb(225, 231, 239)"  # hsl(214 32% 91%), the theme's --border
    # its dev-only plugin ran, on the app's own Vite (it names ^5.4.1), and its
    # client-side router works from `/`
    assert page.evaluate("document.body.dataset.devTagged") == "yes"
    assert page.evaluate("document.body.dataset.vite").startswith("5.4."), "not its own Vite"
    page.get_by_text("About").click()
    page.get_by_text("About this app").wait_for(timeout=10_000)
    assert page.evaluate("location.pathname") == "/about"
    page.go_back()
    page.get_by_text("Generated home").wait_for(timeout=10_000)
    # an edit reaches the page by HMR, without a reload
    index = generated_files()["src/pages/Index.tsx"].replace("Generated home", "Edited home")
    hot_edit(c, page, w, s["sessionId"], {"src/pages/Index.tsx": index}, "Edited home")
    assert page.evaluate("getComputedStyle(document.querySelector('h1')).color") == PRIMARY
    page.close()
    print(f"generated app: create -> ready {ready_s:.1f} s (dependencies installed)")


VUE_GREEN = "rgb(66, 184, 131)"


def test_a_vue_app_renders_through_its_own_config_and_keeps_state_across_an_edit(
    browser: Browser, platform: Cluster
) -> None:
    """Not React: a Vue 3 single-file-component app with its own `vite.config.js` and
    `@vitejs/plugin-vue` from its own devDependencies (tests/fixtures/vue)."""
    c = platform
    files = fixture_files(FIXTURES / "vue")
    t = time.monotonic()
    s = create_ready(c, files)
    ready_s = time.monotonic() - t
    assert s["errors"] == [] and s["ignored"] == [], s
    page, w = open_page(browser, s, "Vue home")
    # the SFC's scoped style applies, and its reactivity works
    assert page.evaluate("getComputedStyle(document.querySelector('h1')).color") == VUE_GREEN
    page.get_by_text("count is 0").click()
    page.get_by_text("count is 1").wait_for(timeout=5_000)
    # an edit to the template hot-updates in place: Vue's HMR keeps the component's state
    app = files["src/App.vue"].replace("Vue home", "Vue edited")
    hot_edit(c, page, w, s["sessionId"], {"src/App.vue": app}, "Vue edited")
    assert page.get_by_text("count is 1").is_visible(), "the component lost its state"
    page.close()
    print(f"vue app: create -> ready {ready_s:.1f} s (dependencies installed)")


SVELTE_ORANGE = "rgb(255, 62, 0)"


def test_a_svelte_app_renders_through_its_own_config_and_hot_updates(
    browser: Browser, platform: Cluster
) -> None:
    """Svelte 5 with its own `vite.config.js` and `@sveltejs/vite-plugin-svelte`
    (tests/fixtures/svelte)."""
    c = platform
    files = fixture_files(FIXTURES / "svelte")
    s = create_ready(c, files)
    assert s["errors"] == [] and s["ignored"] == [], s
    page, w = open_page(browser, s, "Svelte home")
    assert page.evaluate("getComputedStyle(document.querySelector('h1')).color") == SVELTE_ORANGE
    page.get_by_text("count is 0").click()
    page.get_by_text("count is 1").wait_for(timeout=5_000)
    app = files["src/App.svelte"].replace("Svelte home", "Svelte edited")
    hot_edit(c, page, w, s["sessionId"], {"src/App.svelte": app}, "Svelte edited")
    page.close()
