"""Preview origins in the chart (CONTRACT section 2, "Preview origins").

Subdomain mode is the default: routers and nodes get `--preview-domain`, the Ingress a
wildcard rule `*.{previewDomain}` with its own certificate, and NOTES the DNS record
to create. Path mode renders exactly what the chart rendered before subdomain mode
existed. The browser-facing flags (`--api-cors-origins`, `--frame-ancestors`,
`--default-access`) appear only when set.
"""

from __future__ import annotations

import copy
from typing import Any

import helm_python as helm
import pytest

from tests.chart.conftest import INSTALL_VALUES
from tests.chart.test_chart_lint_and_validate import validate

DOMAIN = INSTALL_VALUES["previewDomain"]
WILDCARD = f"*.{DOMAIN}"
API_HOST = "api.example.com"
PINNED_SECRETS = {"idSecrets": ["s" * 32], "apiTokens": ["t" * 16]}
INGRESS = {
    "enabled": True,
    "hosts": [API_HOST],
    "tls": [{"secretName": "api-tls", "hosts": [API_HOST]}],
}
WITH_INGRESS = {"router": {"ingress": INGRESS}, "previewTls": {"secretName": "wildcard-tls"}}
NEW_FLAGS = {
    "Deployment": {"--preview-domain", "--api-cors-origins", "--frame-ancestors"},
    "StatefulSet": {"--preview-domain", "--default-access"},
}


def domain_of_length(n: int) -> str:
    return "a" * 63 + "." + "b" * 63 + "." + "c" * (n - 132) + ".net"


def args_of(rendered: Any, kind: str) -> list[str]:
    args: list[str] = rendered.container(kind)["args"]
    return args


def flag_value(args: list[str], flag: str) -> str:
    assert args.count(flag) == 1, f"{flag} rendered {args.count(flag)} times"
    value: str = args[args.index(flag) + 1]
    return value


def without_flag(args: list[str], flag: str) -> list[str]:
    if flag not in args:
        return args
    i = args.index(flag)
    return args[:i] + args[i + 2 :]


# --- subdomain mode, the default ----------------------------------------------------


def test_default_mode_passes_the_preview_domain_to_router_and_nodes(render: Any) -> None:
    rendered = render()
    for kind in ("Deployment", "StatefulSet"):
        assert flag_value(args_of(rendered, kind), "--preview-domain") == DOMAIN


def test_an_empty_preview_domain_in_subdomain_mode_is_refused(render: Any) -> None:
    with pytest.raises(helm.HelmError, match="previewDomain is required in subdomain mode"):
        render(bare=True)  # the chart's own values.yaml: subdomain mode, no domain
    with pytest.raises(helm.HelmError, match="previewDomain is required in subdomain mode"):
        render({"previewMode": "subdomain", "previewDomain": ""})


def test_the_rendered_domain_is_one_the_programs_accept(
    render: Any, ci_values: dict[str, Any]
) -> None:
    from previewcore.config import preview_domain

    for values in (None, ci_values):
        rendered = render(values)
        for kind in ("Deployment", "StatefulSet"):
            domain = flag_value(args_of(rendered, kind), "--preview-domain")
            assert preview_domain(domain) == domain


def test_ingress_routes_the_wildcard_host_to_the_routers_with_its_certificate(
    render: Any,
) -> None:
    rendered = render(WITH_INGRESS)
    ingress = rendered.one("Ingress")
    rules = {r["host"]: r for r in ingress["spec"]["rules"]}
    assert list(rules) == [API_HOST, WILDCARD]
    router = rendered.one("Service", "rel-router")["metadata"]["name"]
    for rule in rules.values():
        assert rule["http"]["paths"] == [
            {
                "path": "/",
                "pathType": "Prefix",
                "backend": {"service": {"name": router, "port": {"name": "http"}}},
            }
        ]
    assert ingress["spec"]["tls"] == [
        {"secretName": "api-tls", "hosts": [API_HOST]},
        {"secretName": "wildcard-tls", "hosts": [WILDCARD]},
    ]
    # One Ingress for both: the WebSocket-friendly annotations cover preview hosts too.
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"
    assert annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"] == "3600"
    assert annotations["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "off"


def test_subdomain_mode_objects_validate_against_kubernetes_schemas(
    render: Any, ci_values: dict[str, Any]
) -> None:
    for values, domain in ((WITH_INGRESS, DOMAIN), (ci_values, ci_values["previewDomain"])):
        rendered = render(values)
        assert f"*.{domain}" in [r["host"] for r in rendered.one("Ingress")["spec"]["rules"]]
        for obj in rendered.objects:
            validate(obj)


def test_ci_values_render_the_wildcard_rule_and_every_new_flag(
    render: Any, ci_values: dict[str, Any]
) -> None:
    rendered = render(ci_values)
    domain = ci_values["previewDomain"]
    ingress = rendered.one("Ingress")
    assert f"*.{domain}" in [r["host"] for r in ingress["spec"]["rules"]]
    assert {
        "secretName": ci_values["previewTls"]["secretName"],
        "hosts": [f"*.{domain}"],
    } in ingress["spec"]["tls"]
    for kind, flags in NEW_FLAGS.items():
        assert flags <= set(args_of(rendered, kind)), kind


def test_without_any_ingress_tls_the_wildcard_gets_none(render: Any) -> None:
    # TLS terminated in front of the Ingress (or plain http): nothing to require.
    ingress = render({"router": {"ingress": {**INGRESS, "tls": []}}}).one("Ingress")
    assert WILDCARD in [r["host"] for r in ingress["spec"]["rules"]]
    assert "tls" not in ingress["spec"]


def test_an_ingress_terminating_tls_needs_a_certificate_for_the_wildcard(render: Any) -> None:
    with pytest.raises(helm.HelmError, match=r"previewTls\.secretName"):
        render({"router": {"ingress": INGRESS}})
    # A router.ingress.tls entry that already lists the wildcard is enough.
    listed = {**INGRESS, "tls": [{"secretName": "both", "hosts": [API_HOST, WILDCARD]}]}
    ingress = render({"router": {"ingress": listed}}).one("Ingress")
    assert ingress["spec"]["tls"] == listed["tls"]


@pytest.mark.parametrize(
    "values",
    [
        pytest.param(
            {"router": {"ingress": {**INGRESS, "hosts": [f"api.{DOMAIN}"]}}}, id="ingress"
        ),
        pytest.param(
            {"router": {"ingress": {**INGRESS, "hosts": [API_HOST, WILDCARD]}}},
            id="wildcard-listed-as-api-host",
        ),
        pytest.param({"publicUrl": f"https://api.{DOMAIN}"}, id="public-url"),
    ],
)
def test_an_api_host_one_label_under_the_preview_domain_is_refused(
    render: Any, values: dict[str, Any]
) -> None:
    # The router would take api.{domain} for session "api" and never serve the API there.
    with pytest.raises(helm.HelmError, match="one label under previewDomain"):
        render({**WITH_INGRESS, **values})


@pytest.mark.parametrize("host", [DOMAIN, f"a.b.{DOMAIN}", f"api{DOMAIN}"])
def test_api_hosts_that_are_not_preview_hosts_render(render: Any, host: str) -> None:
    ingress = {**INGRESS, "hosts": [host], "tls": []}
    rules = render({"router": {"ingress": ingress}}).one("Ingress")["spec"]["rules"]
    assert [r["host"] for r in rules] == [host, WILDCARD]


@pytest.mark.parametrize("origin", [f"https://app.{DOMAIN}", f"https://a.b.{DOMAIN}:8443"])
def test_a_cors_origin_under_the_preview_domain_is_refused(render: Any, origin: str) -> None:
    # Preview code runs on those origins: letting them call the API would let any session
    # drive it from a visitor's browser.
    with pytest.raises(helm.HelmError, match="apiCorsOrigins"):
        render({"apiCorsOrigins": ["https://app.example.com", origin]})


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param({}, "http://rel-router.previews.svc.cluster.local", id="service"),
        pytest.param(WITH_INGRESS, f"https://{API_HOST}", id="first-ingress-host"),
        pytest.param(
            {"publicUrl": "https://api.example.com:8443"},
            "https://api.example.com:8443",
            id="explicit-with-port",
        ),
    ],
)
def test_public_url_is_derived_as_in_path_mode(
    render: Any, values: dict[str, Any], expected: str
) -> None:
    # The nodes take previewUrl's scheme and port from --public-url.
    subdomain = args_of(render(values), "StatefulSet")
    path = args_of(render({**values, "previewMode": "path"}), "StatefulSet")
    assert flag_value(subdomain, "--public-url") == expected
    assert flag_value(path, "--public-url") == expected


# --- path mode ----------------------------------------------------------------------


def test_path_mode_renders_no_wildcard_and_no_preview_domain(render: Any) -> None:
    rendered = render({**WITH_INGRESS, "previewMode": "path"})
    for kind in ("Deployment", "StatefulSet"):
        assert "--preview-domain" not in args_of(rendered, kind)
    ingress = rendered.one("Ingress")
    assert [r["host"] for r in ingress["spec"]["rules"]] == [API_HOST]
    assert ingress["spec"]["tls"] == INGRESS["tls"]
    assert DOMAIN not in rendered.notes and "*." not in rendered.notes


def test_path_mode_needs_no_domain(render: Any) -> None:
    rendered = render({"previewMode": "path"}, bare=True)
    assert "--preview-domain" not in args_of(rendered, "Deployment")


def test_path_mode_differs_from_subdomain_mode_only_in_the_domain(render: Any) -> None:
    """What path mode renders is the subdomain rendering minus --preview-domain, the
    wildcard rule and its TLS entry: nothing else moved (the chart before subdomain mode
    rendered exactly this)."""
    values = {**WITH_INGRESS, "secrets": PINNED_SECRETS}
    path = render({**values, "previewMode": "path"})
    subdomain = render(values)
    stripped = copy.deepcopy(subdomain.objects)
    for obj in stripped:
        if obj["kind"] in ("Deployment", "StatefulSet"):
            container = obj["spec"]["template"]["spec"]["containers"][0]
            container["args"] = without_flag(container["args"], "--preview-domain")
        if obj["kind"] == "Ingress":
            spec = obj["spec"]
            spec["rules"] = [r for r in spec["rules"] if r["host"] != WILDCARD]
            spec["tls"] = [t for t in spec["tls"] if t["hosts"] != [WILDCARD]]
    assert stripped == path.objects
    assert stripped != subdomain.objects
    # NOTES: the same text, less the subdomain block.
    head, _, block = subdomain.notes.partition("\n\nSubdomain mode:")
    assert block
    assert head + block[block.index("\n\n/kontext/") :] == path.notes


# --- the browser-facing flags -------------------------------------------------------


def test_new_flags_are_absent_when_unset(render: Any) -> None:
    rendered = render({"previewMode": "path"})
    for kind, flags in NEW_FLAGS.items():
        assert flags & set(args_of(rendered, kind)) == set(), kind


def test_new_flags_appear_when_set_and_only_on_their_program(render: Any) -> None:
    from previewcore.cors import parse_origins

    origins = ["https://app.example.com", "http://localhost:5173"]
    rendered = render(
        {
            "previewMode": "path",
            "apiCorsOrigins": origins,
            "frameAncestors": "'self' https://app.example.com",
            "node": {"defaultAccess": "private"},
        }
    )
    router, node = args_of(rendered, "Deployment"), args_of(rendered, "StatefulSet")
    assert (
        flag_value(router, "--api-cors-origins") == "https://app.example.com,http://localhost:5173"
    )
    assert parse_origins(flag_value(router, "--api-cors-origins")) == frozenset(origins)
    assert flag_value(router, "--frame-ancestors") == "'self' https://app.example.com"
    assert flag_value(node, "--default-access") == "private"
    assert {"--api-cors-origins", "--frame-ancestors"} & set(node) == set()
    assert "--default-access" not in router


@pytest.mark.parametrize("access", ["public", "private"])
def test_default_access_is_passed_as_given(render: Any, access: str) -> None:
    args = args_of(render({"node": {"defaultAccess": access}}), "StatefulSet")
    assert flag_value(args, "--default-access") == access


# --- NOTES --------------------------------------------------------------------------


def test_notes_name_the_wildcard_record_and_its_certificate(render: Any) -> None:
    notes = render(WITH_INGRESS).notes
    assert f"https://{{id}}.{DOMAIN}/" in notes
    assert f"wildcard record {WILDCARD}: A/AAAA (or a CNAME)" in notes
    assert "get ingress rel-router" in notes
    assert f"must cover {WILDCARD}" in notes
    assert "Secret wildcard-tls in namespace previews" in notes
    assert "registrable domain of their own" in notes
    assert "set cookies for its parent domain" in notes
    assert "WARNING" not in notes


def test_notes_carry_the_port_of_the_public_url(render: Any) -> None:
    notes = render({"publicUrl": "https://api.example.com:8443"}).notes
    assert f"https://{{id}}.{DOMAIN}:8443/" in notes


@pytest.mark.parametrize(
    ("domain", "api_host", "product", "neighbour"),
    [
        ("previews.example.com", API_HOST, "app.example.org", API_HOST),  # siblings
        ("example.com", "example.com", "app.example.org", "example.com"),  # API at the apex
        ("x.previews.example.net", "previews.example.net", "example.org", "previews.example.net"),
        ("previews.app.example.com", "api.example.org", "app.example.com", "app.example.com"),
    ],
)
def test_notes_warn_when_previews_share_a_parent_domain_with_the_api_or_product(
    render: Any, domain: str, api_host: str, product: str, neighbour: str
) -> None:
    values = {
        "previewDomain": domain,
        "router": {"ingress": {**INGRESS, "hosts": [api_host], "tls": []}},
        "apiCorsOrigins": [f"https://{product}"],
    }
    notes = render(values).notes
    assert f"WARNING: {domain} shares a parent domain with" in notes
    assert neighbour in notes.split("WARNING:")[1].split("\n")[0]


def test_notes_do_not_warn_for_a_domain_of_its_own(render: Any) -> None:
    values = {"previewDomain": "example-previews.net", "apiCorsOrigins": ["https://example.com"]}
    notes = render({**WITH_INGRESS, **values}).notes
    assert "WARNING" not in notes
    assert "*.example-previews.net" in notes


# --- values.schema.json -------------------------------------------------------------

BAD_VALUES = [
    pytest.param({"previewMode": "subdomains"}, id="mode-typo"),
    pytest.param({"previewDomain": "Previews.Example.net"}, id="domain-upper-case"),
    pytest.param({"previewDomain": "previews.example.net."}, id="domain-trailing-dot"),
    pytest.param({"previewDomain": "https://previews.example.net"}, id="domain-with-scheme"),
    pytest.param({"previewDomain": "*.previews.example.net"}, id="domain-wildcard"),
    pytest.param({"previewDomain": "previews.example.net/x"}, id="domain-with-path"),
    pytest.param({"previewDomain": "10.0.0.1"}, id="domain-ip-address"),
    pytest.param({"previewDomain": "previews..example.net"}, id="domain-empty-label"),
    pytest.param({"previewDomain": "-previews.example.net"}, id="domain-leading-dash"),
    pytest.param({"previewDomain": "a" * 64 + ".net"}, id="domain-label-over-63"),
    pytest.param({"previewDomain": domain_of_length(190)}, id="domain-over-189"),
    pytest.param({"previewTls": {"secret": "x"}}, id="tls-misspelled-key"),
    pytest.param({"previewTls": {"secretName": "Wildcard_TLS"}}, id="tls-bad-secret-name"),
    pytest.param({"apiCorsOrigins": "https://app.example.com"}, id="origins-not-a-list"),
    pytest.param({"apiCorsOrigins": ["app.example.com"]}, id="origin-without-scheme"),
    pytest.param({"apiCorsOrigins": ["ftp://app.example.com"]}, id="origin-ftp"),
    pytest.param({"apiCorsOrigins": ["https://app.example.com/"]}, id="origin-trailing-slash"),
    pytest.param({"apiCorsOrigins": ["https://app.example.com/ui"]}, id="origin-with-path"),
    pytest.param({"apiCorsOrigins": ["https://app.example.com?x"]}, id="origin-with-query"),
    pytest.param({"apiCorsOrigins": ["*"]}, id="origin-star"),
    pytest.param({"apiCorsOrigins": ["https://*.example.com"]}, id="origin-wildcard"),
    pytest.param({"apiCorsOrigins": ["https://a.example.com,https://b"]}, id="origins-joined"),
    pytest.param({"apiCorsOrigins": ["https://a.example", "https://a.example"]}, id="dup-origin"),
    pytest.param({"frameAncestors": "'self'; script-src *"}, id="frame-ancestors-semicolon"),
    pytest.param({"frameAncestors": "'self', https://x"}, id="frame-ancestors-comma"),
    pytest.param({"frameAncestors": "'self'\nhttps://x"}, id="frame-ancestors-newline"),
    pytest.param({"frameAncestors": ["'self'"]}, id="frame-ancestors-list"),
    pytest.param({"node": {"defaultAccess": "secret"}}, id="default-access-unknown"),
    pytest.param({"node": {"defaultAccess": True}}, id="default-access-boolean"),
]


@pytest.mark.parametrize("values", BAD_VALUES)
def test_schema_refuses_bad_origin_values(
    render: Any, chart: helm.Chart, values: dict[str, Any]
) -> None:
    with pytest.raises(helm.HelmValuesError, match="schema"):
        render(values)
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema(chart.merge_values({**INSTALL_VALUES, **values}))


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({"previewDomain": "example-previews.net"}, id="domain"),
        pytest.param({"previewDomain": "p1.a-b.example.co.uk"}, id="domain-many-labels"),
        pytest.param({"previewDomain": "localhost"}, id="domain-one-label"),
        pytest.param({"previewDomain": domain_of_length(189)}, id="domain-189"),
        pytest.param({"previewMode": "path", "previewDomain": ""}, id="path-mode-no-domain"),
        pytest.param({"apiCorsOrigins": ["http://localhost:5173"]}, id="origin-port"),
        pytest.param({"apiCorsOrigins": ["https://[::1]:8443"]}, id="origin-ipv6"),
        pytest.param({"apiCorsOrigins": ["https://app.example.com"]}, id="origin"),
        pytest.param({"frameAncestors": "'none'"}, id="frame-ancestors-none"),
        pytest.param({"frameAncestors": "'self' https://app.example.com"}, id="frame-ancestors"),
        pytest.param({"node": {"defaultAccess": "private"}}, id="default-access"),
        pytest.param({"node": {"defaultAccess": ""}}, id="default-access-unset"),
    ],
)
def test_schema_accepts_good_origin_values(render: Any, values: dict[str, Any]) -> None:
    render(values)


@pytest.mark.parametrize(
    "domain",
    ["example-previews.net", "p1.a-b.example.co.uk", "localhost", domain_of_length(189)],
)
def test_every_domain_the_schema_accepts_the_programs_accept(domain: str) -> None:
    from previewcore.config import preview_domain

    assert len(domain) <= 189
    assert preview_domain(domain) == domain
