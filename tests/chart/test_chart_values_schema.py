"""values.schema.json rejects bad values before anything renders."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest

BAD_VALUES = [
    pytest.param({"node": {"replicas": -1}}, id="negative-node-replicas"),
    pytest.param({"node": {"replicas": "3"}}, id="replicas-as-string"),
    pytest.param({"node": {"namePrefix": "Node_"}}, id="prefix-uppercase-underscore"),
    pytest.param({"node": {"namePrefix": "a--b"}}, id="prefix-double-dash"),
    pytest.param({"node": {"namePrefix": "-node"}}, id="prefix-leading-dash"),
    pytest.param({"node": {"namePrefix": "node-"}}, id="prefix-trailing-dash"),
    pytest.param({"node": {"namePrefix": "ab"}}, id="prefix-too-short"),
    pytest.param({"node": {"namePrefix": "a" * 17}}, id="prefix-too-long"),
    pytest.param({"node": {"draining": ["Node-1"]}}, id="draining-bad-name"),
    pytest.param({"node": {"weight": 0}}, id="weight-zero"),
    pytest.param(
        {"node": {"persistence": {"retentionPolicy": {"whenScaled": "Keep"}}}},
        id="bad-retention-policy",
    ),
    pytest.param({"node": {"podAntiAffinity": "sometimes"}}, id="bad-anti-affinity"),
    pytest.param({"router": {"replicas": 0}}, id="zero-routers"),
    pytest.param({"router": {"drainSeconds": 0}}, id="zero-drain"),
    pytest.param({"router": {"logLevel": "loud"}}, id="bad-log-level"),
    pytest.param({"router": {"service": {"type": "Headless"}}}, id="bad-service-type"),
    pytest.param({"secrets": {"idSecrets": ["too-short"]}}, id="id-secret-under-32-chars"),
    pytest.param({"secrets": {"idSecrets": ["x" * 32 + "\n" + "y" * 32]}}, id="id-secret-newline"),
    pytest.param({"publicUrl": "preview.example.com"}, id="public-url-without-scheme"),
    pytest.param({"node": {"replicsa": 3}}, id="misspelled-key"),
    # The sandbox and the per-session limits.
    pytest.param({"node": {"sandbox": "yes"}}, id="sandbox-unknown-mode"),
    pytest.param({"node": {"sandbox": "Required"}}, id="sandbox-mode-case"),
    pytest.param({"node": {"sandbox": False}}, id="sandbox-as-boolean"),
    pytest.param({"node": {"sessionLimits": {"memoryBytes": 0}}}, id="session-memory-zero"),
    pytest.param({"node": {"sessionLimits": {"memoryBytes": "2Gi"}}}, id="session-memory-quantity"),
    pytest.param({"node": {"sessionLimits": {"memoryBytes": 1.5}}}, id="session-memory-fraction"),
    pytest.param({"node": {"sessionLimits": {"maxPids": 0}}}, id="session-pids-zero"),
    pytest.param({"node": {"sessionLimits": {"cpus": -1}}}, id="session-cpus-negative"),
    pytest.param({"node": {"sessionLimits": {"cpus": "1"}}}, id="session-cpus-string"),
    pytest.param({"node": {"sessionLimits": {"cpu": 1}}}, id="session-limits-misspelled"),
    pytest.param({"node": {"sandboxPod": {"enabled": "yes"}}}, id="sandbox-pod-enabled-string"),
    pytest.param({"node": {"sandboxPod": {"hostUsers": "false"}}}, id="host-users-string"),
    pytest.param({"node": {"sandboxPod": {"procMount": "Masked"}}}, id="proc-mount-unknown"),
    pytest.param(
        {"node": {"sandboxPod": {"seccompProfile": {"type": "Default"}}}}, id="seccomp-type-unknown"
    ),
    pytest.param(
        {"node": {"sandboxPod": {"seccompProfile": {"type": "Localhost", "localhostProfile": ""}}}},
        id="seccomp-localhost-empty-path",
    ),
    pytest.param(
        {"node": {"sandboxPod": {"seccompProfile": {"localhostProfile": "/etc/seccomp.json"}}}},
        id="seccomp-absolute-path",
    ),
    pytest.param(
        {"node": {"sandboxPod": {"seccompProfile": {"localhostProfile": "profiles/../x.json"}}}},
        id="seccomp-path-climbs",
    ),
    pytest.param(
        {"node": {"sandboxPod": {"appArmorProfile": {"type": "unconfined"}}}},
        id="apparmor-type-case",
    ),
    pytest.param(
        {"node": {"sandboxPod": {"appArmorProfile": {"type": "Localhost"}}}},
        id="apparmor-localhost-without-name",
    ),
    pytest.param(
        {"node": {"sandboxPod": {"appArmorProfile": {"type": "Unconfined", "profile": "x"}}}},
        id="apparmor-unknown-key",
    ),
    pytest.param({"node": {"sandboxPod": {"hostusers": False}}}, id="sandbox-pod-misspelled"),
]


@pytest.mark.parametrize("values", BAD_VALUES)
def test_schema_invalid_values_fail_to_render(render: Any, values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmValuesError, match="schema"):
        render(values)


@pytest.mark.parametrize("values", BAD_VALUES)
def test_schema_invalid_values_are_rejected_by_the_schema_itself(
    chart: helm.Chart, values: dict[str, Any]
) -> None:
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema(chart.merge_values(values))


@pytest.mark.parametrize("prefix", ["node", "pv-node", "a1b", "preview-node-pool"[:16]])
def test_ring_name_prefixes_that_follow_the_rule_render(render: Any, prefix: str) -> None:
    render({"node": {"namePrefix": prefix}})


def test_ci_values_pass_the_schema(chart: helm.Chart, ci_values: dict[str, Any]) -> None:
    chart.validate_schema(chart.merge_values(ci_values))
