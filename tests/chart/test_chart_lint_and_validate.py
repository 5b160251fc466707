"""The chart lints cleanly and every object it renders is valid Kubernetes.

Built-in kinds are checked against the newest Kubernetes schema kubernetes-validate
ships (strict: unknown fields fail). ServiceMonitor is a CRD kubernetes-validate does
not know; it is checked against the schema kept in tests/chart/schemas.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest

from tests.chart.conftest import INSTALL_VALUES

HERE = Path(__file__).resolve().parent
CHART_DIR = HERE.parents[1] / "charts" / "preview"
CI_VALUES = HERE / "ci-values.yaml"
SCHEMAS = HERE / "schemas"
K8S_VERSION = kubernetes_validate.latest_version()
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SCHEMAS
    / "servicemonitor-monitoring.coreos.com-v1.json",
}
# Every kind the chart can render, so that a new template is not silently unvalidated.
EXPECTED_KINDS = {
    "ConfigMap",
    "Secret",
    "Deployment",
    "Service",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "Ingress",
    "StatefulSet",
    "NetworkPolicy",
    "ServiceMonitor",
}


def validate(obj: dict[str, Any]) -> None:
    crd_schema = CRD_SCHEMAS.get((obj["apiVersion"], obj["kind"]))
    if crd_schema is not None:
        schema = json.loads(crd_schema.read_text())
        jsonschema.Draft202012Validator(schema).validate(obj)
        return
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


@pytest.mark.parametrize("values_file", [None, CI_VALUES], ids=["defaults", "ci-values"])
def test_helm_lint_strict_passes(values_file: Path | None, ci_values: dict[str, Any]) -> None:
    values = ci_values if values_file else INSTALL_VALUES
    report = helm.lint(CHART_DIR, values, strict=True, namespace="previews")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], report


def test_defaults_render_valid_objects(render: Any) -> None:
    rendered = render()
    kinds = {o["kind"] for o in rendered.objects}
    assert kinds == {
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "StatefulSet",
        "NetworkPolicy",
    }
    for obj in rendered.objects:
        validate(obj)


def test_ci_values_render_every_kind_and_all_validate(
    render: Any, ci_values: dict[str, Any]
) -> None:
    rendered = render(ci_values)
    assert {o["kind"] for o in rendered.objects} == EXPECTED_KINDS
    for obj in rendered.objects:
        validate(obj)


def test_kubernetes_schema_version_is_current() -> None:
    major, minor = (int(p) for p in K8S_VERSION.split(".")[:2])
    assert (major, minor) >= (1, 30)


def test_servicemonitor_schema_rejects_a_misspelled_endpoint_field(
    render: Any, ci_values: dict[str, Any]
) -> None:
    monitor = render(ci_values).all("ServiceMonitor")[0]
    monitor["spec"]["endpoints"][0]["intervall"] = "15s"
    with pytest.raises(jsonschema.ValidationError):
        validate(monitor)


def test_strict_kubernetes_validation_rejects_an_unknown_field(render: Any) -> None:
    deployment = render().one("Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["argz"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)
