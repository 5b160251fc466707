"""The proxy benchmark's pure parts: which targets run, router target names, the proxies'
configs (the same forwarding headers everywhere), and the issue's goals from ratios."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.proxy import haproxy, nginx
from bench.proxy.layout import Layout
from bench.proxy.ratios import goals, ratios
from bench.proxy.targets import RouterTarget, router_targets, select

HEADERS = ("X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Request-ID")


def layout() -> Layout:
    tmp = Path("/tmp/bench")
    ports = {"upstream": 9001, "ws": 9002, "nginx": 9003, "haproxy": 9004}
    return Layout(tmp, tmp / "secret", tmp / "ring.toml", "node-0--a", "node-1--b", ports)


@pytest.mark.parametrize(
    ("asked", "installed", "run", "missing"),
    [
        (None, {"nginx", "haproxy", "chp"}, ["direct", "nginx", "haproxy", "chp", "router"], []),
        (None, {"nginx"}, ["direct", "nginx", "router"], ["haproxy", "chp"]),
        (["chp", "nginx"], {"nginx", "haproxy", "chp"}, ["nginx", "chp"], []),
        (["chp", "router"], {"nginx"}, ["router"], ["chp"]),
    ],
)
def test_select_runs_installed_targets_in_a_fixed_order(
    asked: list[str] | None, installed: set[str], run: list[str], missing: list[str]
) -> None:
    assert select(asked, installed) == (run, missing)


def test_router_targets_are_named_by_tree_and_by_workers_only_when_several() -> None:
    repo, base = Path("/repo"), Path("/base")
    assert router_targets({"": repo}, []) == [RouterTarget("router", repo, 1)]
    assert router_targets({"": repo}, [2]) == [RouterTarget("router", repo, 2)]
    assert [r.name for r in router_targets({"": repo}, [1, 2, 1])] == ["router:w1", "router:w2"]
    both = router_targets({"base": base, "new": repo}, [1, 2])
    assert [(r.name, r.workers) for r in both] == [
        ("router:base:w1", 1),
        ("router:base:w2", 2),
        ("router:new:w1", 1),
        ("router:new:w2", 2),
    ]


def test_nginx_sends_the_forwarding_headers_from_every_location() -> None:
    # A location that sets any proxy_set_header inherits none from its server block.
    conf = nginx.proxy_conf(layout())
    locations = re.findall(r"location [^{]+\{([^}]*)\}", conf)
    assert len(locations) == 2
    for body in locations:
        for name in HEADERS:
            assert f"proxy_set_header {name} " in body


def test_haproxy_is_one_thread_reuses_upstream_connections_and_logs_nothing() -> None:
    conf = haproxy.proxy_conf(layout())
    assert "nbthread 1" in conf and "http-reuse always" in conf and "timeout tunnel" in conf
    assert not re.search(r"^\s*(log|daemon|master-worker)\b", conf, re.M)
    for name in HEADERS:
        assert f"http-request set-header {name} " in conf
    assert "use_backend ws if { path_beg /preview/node-1--b/ }" in conf


def cell(target: str, rps: float, p99: float, cpu: float | None, file: str = "1k") -> dict:
    return {
        "target": target,
        "file": file,
        "c": 32,
        "req_per_s": rps,
        "latency_us": {"p50": p99 / 2, "p99": p99},
        "cpu_us_per_req": {} if cpu is None else {"proxy": cpu},
    }


def test_goals_from_medians_met_missed_or_not_measured() -> None:
    http = [
        cell("direct", 20000, 2000, None),
        cell("nginx", 18000, 3000, 30.0),
        cell("chp", 1800, 40000, 500.0),
        cell("router", 1500, 13000, 240.0),
        cell("router", 1300, 11000, 260.0),  # a second round: medians 1400, 12000, 250
    ]
    ws = [
        {"target": "direct", "p50_us": 50.0, "p99_us": 80.0},
        {"target": "nginx", "p50_us": 70.0, "p99_us": 100.0},
        {"target": "chp", "p50_us": 200.0, "p99_us": 400.0},
        {"target": "router", "p50_us": 100.0, "p99_us": 150.0},
    ]
    rat = ratios(http, ws, "router", ["nginx", "chp"])
    assert rat["vs"]["nginx"]["1k_c32"] == {"throughput": 0.078, "p99": 4.0, "cpu": 8.33}
    assert rat["vs"]["chp"]["1k_c32"]["cpu"] == 0.5
    assert rat["ws_over_direct_us"] == {"p50": 50.0, "p99": 70.0}
    met = {k: g["met"] for k, g in rat["goals"].items()}
    assert met == {
        "cpu_1k_c32_le_0.5x_chp": True,
        "cpu_1k_c32_le_8x_nginx": False,
        "p99_1k_c32_le_4x_nginx": True,
        "ws_p50_le_direct_plus_60us": True,
        "throughput_100k_c32_ge_0.5x_nginx": None,  # no 100k cell ran
    }


def test_goals_against_a_proxy_that_did_not_run_are_not_measured() -> None:
    out = goals({"nginx": {"100k_c32": {"throughput": 0.6}}}, {"p50": None})
    assert out["throughput_100k_c32_ge_0.5x_nginx"]["met"] is True
    assert out["cpu_1k_c32_le_0.5x_chp"] == {
        "label": "cpu 1k c=32 <= 0.5x chp",
        "value": None,
        "limit": 0.5,
        "met": None,
    }
    assert out["ws_p50_le_direct_plus_60us"]["met"] is None
