"""The node pod as bubblewrap needs it (chart README, "Sandboxed dev servers").

`node.sandbox` is passed as `--sandbox`, `required` by default. Unless it is `off`, the
pod gets its own user namespace (`hostUsers: false`) and the node container an unmasked
/proc, a seccomp profile that allows namespaces and mounts, and an AppArmor profile
other than the runtime's (which denies mount); `off` renders none of that, and neither
does `node.sandboxPod.enabled: false`. The per-session limits are flags in every mode.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest

from tests.chart.test_chart_lint_and_validate import validate

README = Path(__file__).resolve().parents[2] / "charts" / "preview" / "README.md"
SANDBOX_KEYS = {"procMount", "seccompProfile", "appArmorProfile"}
DEFAULT_SECCOMP = {"type": "Localhost", "localhostProfile": "profiles/preview-node-bwrap.json"}
# What bubblewrap calls to build the node's sandbox (each one alone, refused, fails it).
BWRAP_SYSCALLS = {"clone", "unshare", "mount", "umount2", "pivot_root", "sethostname"}


def node_args(rendered: Any) -> list[str]:
    args: list[str] = rendered.container("StatefulSet")["args"]
    return args


def flag(args: list[str], name: str) -> str:
    assert args.count(name) == 1, f"{name} rendered {args.count(name)} times"
    value: str = args[args.index(name) + 1]
    return value


def node_context(rendered: Any) -> dict[str, Any]:
    ctx: dict[str, Any] = rendered.container("StatefulSet")["securityContext"]
    return ctx


def sandbox_values(**pod: Any) -> dict[str, Any]:
    return {"node": {"sandboxPod": pod}}


# --- the defaults: required, and the pod settings -----------------------------------


def test_default_is_required_with_what_bubblewrap_needs_of_the_pod(render: Any) -> None:
    rendered = render()
    assert flag(node_args(rendered), "--sandbox") == "required"
    assert rendered.pod_spec("StatefulSet")["hostUsers"] is False
    ctx = node_context(rendered)
    assert ctx["procMount"] == "Unmasked"
    assert ctx["seccompProfile"] == DEFAULT_SECCOMP
    assert ctx["appArmorProfile"] == {"type": "Unconfined"}


def test_the_sandbox_adds_no_capability_and_keeps_the_node_unprivileged(render: Any) -> None:
    rendered = render()
    ctx = node_context(rendered)
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["readOnlyRootFilesystem"] is True
    assert "privileged" not in ctx
    pod = rendered.pod_spec("StatefulSet")
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_auto_gets_the_same_pod_settings(render: Any) -> None:
    required, auto = render(), render({"node": {"sandbox": "auto"}})
    assert flag(node_args(auto), "--sandbox") == "auto"
    assert node_context(auto) == node_context(required)
    assert auto.pod_spec("StatefulSet")["hostUsers"] is False


def test_routers_get_none_of_the_sandbox_settings(render: Any) -> None:
    rendered = render()
    assert "hostUsers" not in rendered.pod_spec("Deployment")
    assert not SANDBOX_KEYS & set(rendered.container("Deployment")["securityContext"])


# --- off, and the pod settings switched off -----------------------------------------


@pytest.mark.parametrize(
    ("values", "mode"),
    [
        pytest.param({"node": {"sandbox": "off"}}, "off", id="sandbox-off"),
        pytest.param(
            {"node": {"sandbox": "auto", "sandboxPod": {"enabled": False}}},
            "auto",
            id="auto-without-pod-settings",
        ),
        pytest.param(
            {"node": {"sandbox": "off", "sandboxPod": {"enabled": True}}},
            "off",
            id="off-even-with-pod-settings-on",
        ),
    ],
)
def test_without_the_pod_settings_the_node_pod_is_as_before(
    render: Any, values: dict[str, Any], mode: str
) -> None:
    rendered = render(values)
    assert flag(node_args(rendered), "--sandbox") == mode
    assert "hostUsers" not in rendered.pod_spec("StatefulSet")
    assert node_context(rendered) == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    for obj in rendered.objects:
        validate(obj)


# --- each setting behind its value --------------------------------------------------


def test_seccomp_unconfined_is_rendered_without_a_localhost_path(render: Any) -> None:
    # The default's localhostProfile stays in the merged values; only Localhost uses it.
    ctx = node_context(render(sandbox_values(seccompProfile={"type": "Unconfined"})))
    assert ctx["seccompProfile"] == {"type": "Unconfined"}


def test_a_localhost_apparmor_profile_is_named_by_its_value(render: Any) -> None:
    profile = {"type": "Localhost", "localhostProfile": "preview-node-bwrap"}
    ctx = node_context(render(sandbox_values(appArmorProfile=profile)))
    assert ctx["appArmorProfile"] == profile


@pytest.mark.parametrize("key", ["seccompProfile", "appArmorProfile"])
def test_a_null_profile_leaves_the_container_field_out(render: Any, key: str) -> None:
    rendered = render(sandbox_values(**{key: None}))
    ctx = node_context(rendered)
    assert key not in ctx
    assert ctx["procMount"] == "Unmasked"
    validate(rendered.one("StatefulSet"))


def test_sandbox_settings_win_over_the_same_keys_of_the_security_context(render: Any) -> None:
    values = {
        "node": {
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "seccompProfile": {"type": "RuntimeDefault"},
                "runAsUser": 10002,
            }
        }
    }
    ctx = node_context(render(values))
    assert ctx["seccompProfile"] == DEFAULT_SECCOMP
    assert ctx["runAsUser"] == 10002


def test_host_users_true_with_a_default_proc_renders_no_host_users(render: Any) -> None:
    rendered = render(sandbox_values(hostUsers=True, procMount="Default"))
    assert "hostUsers" not in rendered.pod_spec("StatefulSet")
    assert node_context(rendered)["procMount"] == "Default"


def test_an_unmasked_proc_without_a_user_namespace_is_refused(render: Any) -> None:
    expected = r"procMount Unmasked needs node\.sandboxPod\.hostUsers false"
    with pytest.raises(helm.HelmError, match=expected):
        render(sandbox_values(hostUsers=True))


def test_ci_values_render_every_sandbox_setting(render: Any, ci_values: dict[str, Any]) -> None:
    rendered = render(ci_values)
    assert flag(node_args(rendered), "--sandbox") == "required"
    assert rendered.pod_spec("StatefulSet")["hostUsers"] is False
    ctx = node_context(rendered)
    assert ctx["seccompProfile"]["localhostProfile"] == "profiles/example/preview-node-bwrap.json"
    assert ctx["appArmorProfile"] == {"type": "Localhost", "localhostProfile": "preview-node-bwrap"}


# --- the per-session limits ---------------------------------------------------------


def test_session_limits_are_passed_as_the_three_flags(render: Any) -> None:
    args = node_args(render())
    assert flag(args, "--session-memory-bytes") == str(2 * 1024**3)  # not 2.147483648e+09
    assert flag(args, "--session-max-pids") == "512"
    assert flag(args, "--session-cpus") == "1"


@pytest.mark.parametrize("mode", ["required", "auto", "off"])
def test_session_limits_are_passed_in_every_sandbox_mode(render: Any, mode: str) -> None:
    limits = {"memoryBytes": 536870912, "maxPids": 64, "cpus": 0.25}
    args = node_args(render({"node": {"sandbox": mode, "sessionLimits": limits}}))
    assert flag(args, "--session-memory-bytes") == "536870912"
    assert flag(args, "--session-max-pids") == "64"
    assert flag(args, "--session-cpus") == "0.25"


def test_zero_cpus_means_unthrottled_and_is_passed_as_zero(render: Any) -> None:
    args = node_args(render({"node": {"sessionLimits": {"cpus": 0}}}))
    assert flag(args, "--session-cpus") == "0"


# --- NOTES and the README's profile -------------------------------------------------


def test_notes_say_the_mode_and_where_the_seccomp_profile_goes(render: Any) -> None:
    notes = render().notes
    assert "Dev servers: --sandbox required." in notes
    assert "/var/lib/kubelet/seccomp/profiles/preview-node-bwrap.json" in notes
    assert "--set node.sandbox=auto --set node.sandboxPod.enabled=false" in notes
    off = render({"node": {"sandbox": "off"}}).notes
    assert "Dev servers: --sandbox off: no sandbox" in off
    assert "seccomp" not in off


def readme_seccomp_profile() -> dict[str, Any]:
    section = README.read_text().split("## Sandboxed dev servers", 1)[1]
    match = re.search(r"```json\n(.*?)```", section, re.S)
    assert match, "no JSON profile in the README's sandbox section"
    profile: dict[str, Any] = json.loads(match.group(1))
    return profile


def refused(profile: dict[str, Any]) -> set[str]:
    """Names a deny-list profile (default allow) refuses without looking at arguments."""
    assert profile["defaultAction"] == "SCMP_ACT_ALLOW"
    return {
        name
        for rule in profile["syscalls"]
        if rule["action"] != "SCMP_ACT_ALLOW" and not rule.get("args")
        for name in rule["names"]
    }


def test_the_readme_profile_allows_what_bubblewrap_needs_and_refuses_the_rest() -> None:
    denied = refused(readme_seccomp_profile())
    assert not BWRAP_SYSCALLS & denied
    assert {"bpf", "keyctl", "init_module", "kexec_load", "setns", "io_uring_setup"} <= denied


def test_refused_reads_a_deny_list_profile() -> None:
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["bpf", "mount"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["clone"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0}]},
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
        ],
    }
    assert refused(profile) == {"bpf", "mount"}


@pytest.mark.parametrize("mechanism", ["auto", "bwrap", "landlock"])
def test_the_mechanism_is_passed_and_landlock_needs_none_of_the_pod_settings(
    render: Any, mechanism: str
) -> None:
    values = {"node": {"sandboxMechanism": mechanism, "sandboxPod": {"enabled": False}}}
    rendered = render(values)
    assert flag(node_args(rendered), "--sandbox-mechanism") == mechanism
    assert flag(node_args(rendered), "--sandbox") == "required"
    assert "hostUsers" not in rendered.pod_spec("StatefulSet")
    for obj in rendered.objects:
        validate(obj)


def test_an_unknown_mechanism_is_refused_by_the_schema(render: Any) -> None:
    with pytest.raises(helm.HelmError, match="sandboxMechanism"):
        render({"node": {"sandboxMechanism": "chroot"}})
