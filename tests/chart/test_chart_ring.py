"""The ring ConfigMap (CONTRACT section 4) rendered from node.replicas and node.draining."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest


def entries(ring_toml: str) -> list[str]:
    """The `[[nodes]]` blocks of the ring file as text, in file order (blank lines between
    blocks dropped)."""
    return ["[[nodes]]" + block.strip("\n") for block in ring_toml.split("[[nodes]]")[1:]]


def nodes(ring_toml: str) -> list[dict[str, Any]]:
    parsed: list[dict[str, Any]] = tomllib.loads(ring_toml)["nodes"]
    return parsed


def test_default_ring_lists_each_node_by_its_pod_dns_name(render: Any) -> None:
    assert nodes(render().ring_toml) == [
        {
            "name": f"node-{i}",
            "url": f"http://rel-node-{i}.rel-node.previews.svc.cluster.local:9000",
            "state": "active",
            "weight": 1,
        }
        for i in range(2)
    ]


def test_raising_replicas_from_3_to_4_appends_node_3_and_keeps_the_rest_byte_identical(
    render: Any,
) -> None:
    before = render({"node": {"replicas": 3}}).ring_toml
    after = render({"node": {"replicas": 4}}).ring_toml
    # Byte for byte: the old file is a prefix of the new one, the rest is one entry.
    assert after.startswith(before)
    assert entries(after[len(before) :]) == entries(after)[3:]
    assert entries(after)[:3] == entries(before)
    assert len(entries(after)) == 4
    assert nodes(after)[3] == {
        "name": "node-3",
        "url": "http://rel-node-3.rel-node.previews.svc.cluster.local:9000",
        "state": "active",
        "weight": 1,
    }


def test_draining_list_sets_the_state_of_exactly_those_nodes(render: Any) -> None:
    ring = nodes(render({"node": {"replicas": 4, "draining": ["node-3", "node-1"]}}).ring_toml)
    assert {n["name"]: n["state"] for n in ring} == {
        "node-0": "active",
        "node-1": "draining",
        "node-2": "active",
        "node-3": "draining",
    }


def test_draining_a_node_changes_only_its_own_entry(render: Any) -> None:
    before = entries(render({"node": {"replicas": 4}}).ring_toml)
    after = entries(render({"node": {"replicas": 4, "draining": ["node-3"]}}).ring_toml)
    assert before[:3] == after[:3]
    assert before[3].replace('"active"', '"draining"') == after[3]


def test_scale_down_after_draining_leaves_the_remaining_entries_identical(render: Any) -> None:
    draining = render({"node": {"replicas": 4, "draining": ["node-3"]}}).ring_toml
    # The documented order: drain, wait, then lower replicas (the stale name is ignored).
    lowered = render({"node": {"replicas": 3, "draining": ["node-3"]}}).ring_toml
    assert entries(lowered) == entries(draining)[:3]


def test_weights_and_name_prefix_are_rendered(render: Any) -> None:
    values = {
        "node": {"replicas": 3, "namePrefix": "pv-a1", "weight": 2, "weights": {"pv-a1-1": 5}}
    }
    ring = nodes(render(values).ring_toml)
    assert [(n["name"], n["weight"]) for n in ring] == [
        ("pv-a1-0", 2),
        ("pv-a1-1", 5),
        ("pv-a1-2", 2),
    ]


def test_ring_names_follow_the_session_id_rule(render: Any, ci_values: dict[str, Any]) -> None:
    from previewcore.session_id import is_valid_node_name

    for values in (None, ci_values):
        for node in nodes(render(values).ring_toml):
            assert is_valid_node_name(node["name"]), node["name"]


def test_rendered_ring_is_accepted_by_the_routers_parser(
    render: Any, ci_values: dict[str, Any]
) -> None:
    from router.ring import parse_ring

    ring = parse_ring(render(ci_values).ring_toml)
    assert ring.states() == {"active": 3, "draining": 1}


def test_statefulset_passes_the_ring_name_from_the_pod_index_label(render: Any) -> None:
    rendered = render({"node": {"namePrefix": "pv-node"}})
    node = rendered.container("StatefulSet")
    env = {e["name"]: e for e in node["env"]}
    assert env["POD_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.labels['apps.kubernetes.io/pod-index']"
    )
    args = node["args"]
    assert args[args.index("--name") + 1] == "pv-node-$(POD_INDEX)"
    # The ring URL of ordinal i is the StatefulSet pod i behind the headless Service.
    sts = rendered.one("StatefulSet")
    service = rendered.one("Service", sts["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None"
    host = nodes(rendered.ring_toml)[1]["url"].split("//")[1].split(":")[0]
    pod, headless = sts["metadata"]["name"] + "-1", service["metadata"]["name"]
    assert host == f"{pod}.{headless}.previews.svc.cluster.local"


@pytest.mark.parametrize("name", ["node3", "Node-3", "other-3", "node-03"])
def test_draining_names_outside_the_ring_pattern_fail_to_render(render: Any, name: str) -> None:
    import helm_python as helm

    with pytest.raises(helm.HelmError):
        render({"node": {"draining": [name]}})


def test_the_longest_prefix_and_replica_count_still_give_20_character_names(
    render: Any,
) -> None:
    ring = nodes(render({"node": {"namePrefix": "a" * 16, "replicas": 1000}}).ring_toml)
    assert max(len(n["name"]) for n in ring) == 20
