"""What the routers, the nodes and their Secret look like once rendered."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

SECRET_CHECKSUM = "checksum/secret"


def arg(args: list[str], flag: str) -> str:
    value: str = args[args.index(flag) + 1]
    return value


def secret_data(rendered: Any) -> dict[str, str]:
    data: dict[str, str] = rendered.one("Secret")["data"]
    return data


# --- routers ------------------------------------------------------------------------


def test_router_command_line_follows_the_contract(render: Any) -> None:
    args = render().container("Deployment")["args"]
    assert args[0] == "preview-router"
    assert arg(args, "--listen") == "0.0.0.0:8080"
    assert arg(args, "--admin-listen") == "0.0.0.0:9090"
    assert arg(args, "--ring") == "/etc/preview/ring/ring.toml"
    assert arg(args, "--secret-file") == "/etc/preview/secret/secret"
    assert arg(args, "--api-token-file") == "/etc/preview/secret/api-token"
    assert arg(args, "--drain-seconds") == "60"
    assert arg(args, "--log-format") == "json"


def test_router_mounts_ring_and_secret_as_directories_never_subpath(render: Any) -> None:
    rendered = render()
    mounts = {m["name"]: m for m in rendered.container("Deployment")["volumeMounts"]}
    assert mounts["ring"]["mountPath"] == "/etc/preview/ring"
    assert mounts["secret"]["mountPath"] == "/etc/preview/secret"
    assert not any("subPath" in m for m in mounts.values())
    volumes = {v["name"]: v for v in rendered.pod_spec("Deployment")["volumes"]}
    assert volumes["ring"]["configMap"]["name"] == rendered.one("ConfigMap")["metadata"]["name"]
    assert "items" not in volumes["ring"]["configMap"]


def test_ring_changes_do_not_roll_routers_but_secret_changes_do(render: Any) -> None:
    base = {"secrets": {"idSecrets": ["a" * 32], "apiTokens": ["t" * 16]}}
    one = render(base).one("Deployment")["spec"]["template"]
    more_nodes = render({**base, "node": {"replicas": 5, "draining": ["node-4"]}})
    assert more_nodes.one("Deployment")["spec"]["template"] == one
    rotated = render({"secrets": {"idSecrets": ["a" * 32, "b" * 32], "apiTokens": ["t" * 16]}})
    annotations = rotated.one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations[SECRET_CHECKSUM] != one["metadata"]["annotations"][SECRET_CHECKSUM]


def test_checksum_is_of_the_secret_actually_rendered(render: Any) -> None:
    # Generated values are random: the annotation must hash the same draw as the Secret.
    rendered = render()
    digest = hashlib.sha256(
        json.dumps(secret_data(rendered), sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    for kind in ("Deployment", "StatefulSet"):
        annotations = rendered.one(kind)["spec"]["template"]["metadata"]["annotations"]
        assert annotations[SECRET_CHECKSUM] == digest


@pytest.mark.parametrize("drain", [1, 60, 600])
def test_router_grace_period_covers_the_drain(render: Any, drain: int) -> None:
    rendered = render({"router": {"drainSeconds": drain}})
    grace = rendered.pod_spec("Deployment")["terminationGracePeriodSeconds"]
    assert grace >= drain + 5  # plus the default preStop sleep
    assert arg(rendered.container("Deployment")["args"], "--drain-seconds") == str(drain)


def test_a_router_grace_period_shorter_than_the_drain_fails_to_render(render: Any) -> None:
    import helm_python as helm

    with pytest.raises(helm.HelmError, match="terminationGracePeriodSeconds"):
        render({"router": {"drainSeconds": 60, "terminationGracePeriodSeconds": 30}})


def test_router_and_node_run_non_root_on_a_read_only_root(render: Any) -> None:
    rendered = render()
    for kind in ("Deployment", "StatefulSet"):
        pod = rendered.pod_spec(kind)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        ctx = rendered.container(kind)["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"]["drop"] == ["ALL"]
        probes = rendered.container(kind)
        assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert probes["resources"]["requests"]


def test_hpa_replaces_the_fixed_replica_count(render: Any) -> None:
    rendered = render({"router": {"autoscaling": {"enabled": True, "maxReplicas": 7}}})
    assert "replicas" not in rendered.one("Deployment")["spec"]
    hpa = rendered.one("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == rendered.one("Deployment")["metadata"]["name"]
    assert hpa["spec"]["maxReplicas"] == 7


def test_ingress_keeps_websockets_open(render: Any, ci_values: dict[str, Any]) -> None:
    ingress = render(ci_values).one("Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "7200"
    assert annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"] == "7200"
    assert annotations["cert-manager.io/cluster-issuer"] == "letsencrypt"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "preview-ci-router", "port": {"name": "http"}}


# --- nodes --------------------------------------------------------------------------


def test_node_statefulset_shape(render: Any) -> None:
    rendered = render()
    sts = rendered.one("StatefulSet")
    assert sts["metadata"]["name"] == "rel-node"
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    assert [t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]] == ["data"]
    service = rendered.one("Service", "rel-node")
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert {p["port"] for p in service["spec"]["ports"]} == {9000, 9090}
    assert sts["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 60


def test_node_command_line_follows_the_contract(render: Any, ci_values: dict[str, Any]) -> None:
    args = render(ci_values).container("StatefulSet")["args"]
    assert args[0] == "preview-node"
    assert arg(args, "--listen") == "0.0.0.0:9000"
    assert arg(args, "--admin-listen") == "0.0.0.0:9090"
    assert arg(args, "--public-url") == "https://preview.example.com"
    assert arg(args, "--secret-file") == "/etc/preview/secret/id-secrets"
    assert arg(args, "--api-token-file") == "/etc/preview/secret/tokens"
    assert arg(args, "--data-dir") == "/var/lib/preview"
    for flag, value in {
        "--max-sessions": "500",
        "--max-running": "40",
        "--warm-sandboxes": "1",
        "--idle-seconds": "300",
        "--hold-seconds": "45",
    }.items():
        assert arg(args, flag) == value


def test_public_url_defaults_to_the_router_service(render: Any) -> None:
    args = render().container("StatefulSet")["args"]
    assert arg(args, "--public-url") == "http://rel-router.previews.svc.cluster.local"
    explicit = render({"publicUrl": "https://p.example.com/"}).container("StatefulSet")
    assert arg(explicit["args"], "--public-url") == "https://p.example.com"


def test_without_persistence_the_data_dir_is_an_empty_dir(render: Any) -> None:
    rendered = render({"node": {"persistence": {"enabled": False}}})
    sts = rendered.one("StatefulSet")
    assert "volumeClaimTemplates" not in sts["spec"]
    assert "persistentVolumeClaimRetentionPolicy" not in sts["spec"]
    volumes = {v["name"]: v for v in rendered.pod_spec("StatefulSet")["volumes"]}
    assert "emptyDir" in volumes["data"]


@pytest.mark.parametrize("mode", ["soft", "hard", ""])
def test_node_anti_affinity_modes(render: Any, mode: str) -> None:
    pod = render({"node": {"podAntiAffinity": mode}}).pod_spec("StatefulSet")
    anti = pod.get("affinity", {}).get("podAntiAffinity", {})
    key = {
        "soft": "preferredDuringSchedulingIgnoredDuringExecution",
        "hard": "requiredDuringSchedulingIgnoredDuringExecution",
        "": None,
    }[mode]
    assert list(anti) == ([key] if key else [])


def test_network_policy_lets_only_routers_and_the_scraper_reach_nodes(
    render: Any, ci_values: dict[str, Any]
) -> None:
    rendered = render(ci_values)
    policy = rendered.one("NetworkPolicy", "preview-ci-node")
    assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "node"
    rules = policy["spec"]["ingress"]
    assert rules[0]["from"] == [
        {
            "podSelector": {
                "matchLabels": {
                    "app.kubernetes.io/name": "preview",
                    "app.kubernetes.io/instance": "rel",
                    "app.kubernetes.io/component": "router",
                }
            }
        }
    ]
    assert rules[0]["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert rules[1]["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert set(rules[1]["from"][0]) == {"namespaceSelector", "podSelector"}
    assert len(rules) == 2
    # The router pods carry the labels the policy admits.
    labels = rendered.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert rules[0]["from"][0]["podSelector"]["matchLabels"].items() <= labels.items()


# --- secrets ------------------------------------------------------------------------


def test_generated_secret_has_a_long_id_secret_and_a_token(render: Any) -> None:
    data = secret_data(render())
    secret = base64.b64decode(data["secret"]).decode()
    assert all(len(line) >= 32 for line in secret.splitlines())
    assert base64.b64decode(data["api-token"]).decode().strip()


def test_given_id_secrets_are_stored_one_per_line(render: Any, ci_values: dict[str, Any]) -> None:
    data = secret_data(render(ci_values))
    lines = base64.b64decode(data["id-secrets"]).decode().splitlines()
    assert lines == ci_values["secrets"]["idSecrets"]


def test_existing_secret_is_referenced_not_generated(render: Any) -> None:
    rendered = render({"secrets": {"existingSecret": "my-preview-secrets"}})
    assert rendered.all("Secret") == []
    for kind in ("Deployment", "StatefulSet"):
        volumes = {v["name"]: v for v in rendered.pod_spec(kind)["volumes"]}
        assert volumes["secret"]["secret"]["secretName"] == "my-preview-secrets"


def test_generated_secret_is_kept_across_upgrades(render: Any, fake_apiserver: Any) -> None:
    server, config = fake_apiserver
    first = secret_data(render())  # helm install: nothing in the cluster yet
    server.secrets[("previews", "rel-secrets")] = {k: base64.b64decode(v) for k, v in first.items()}
    upgraded = render(config=config, is_upgrade=True)
    assert secret_data(upgraded) == first
    assert "/api/v1/namespaces/previews/secrets/rel-secrets" in server.requests
    again = render(config=config, is_upgrade=True)
    checksum = again.one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert checksum == upgraded.one("Deployment")["spec"]["template"]["metadata"]["annotations"]


def test_existing_secret_changes_roll_the_routers(render: Any, fake_apiserver: Any) -> None:
    server, config = fake_apiserver
    values = {"secrets": {"existingSecret": "mine"}}

    def checksum() -> str:
        deployment = render(values, config=config).one("Deployment")
        value: str = deployment["spec"]["template"]["metadata"]["annotations"][SECRET_CHECKSUM]
        return value

    server.secrets[("previews", "mine")] = {"secret": b"a" * 32 + b"\n"}
    before = checksum()
    server.secrets[("previews", "mine")] = {"secret": b"a" * 32 + b"\n" + b"b" * 32 + b"\n"}
    assert checksum() != before
