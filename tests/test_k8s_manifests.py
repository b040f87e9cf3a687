"""deploy/k8s/ manifests are valid Kubernetes objects and agree with the app (checked offline)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from service.app import create_app
from service.settings import Settings

kubernetes_validate = pytest.importorskip("kubernetes_validate")

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = sorted((ROOT / "deploy" / "k8s").glob("*.yaml"))
K8S_VERSION = "1.33.0"     # schemas shipped inside kubernetes-validate: no network needed
NAME = "s2s-translator"


def load_documents(paths: list[Path]) -> list[dict]:
    return [doc for path in paths
            for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


@pytest.fixture(scope="module")
def objects() -> dict[str, dict]:
    return {doc["kind"]: doc for doc in load_documents(MANIFESTS)}


@pytest.fixture(scope="module")
def pod(objects) -> dict:
    return objects["Deployment"]["spec"]["template"]["spec"]


@pytest.fixture(scope="module")
def container(pod) -> dict:
    (container,) = pod["containers"]
    return container


def literal_env(container: dict) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container["env"] if "value" in item}


def test_every_document_validates_strictly():
    documents = load_documents(MANIFESTS)
    assert {doc["kind"] for doc in documents} == {
        "Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler",
        "PersistentVolumeClaim"}
    for doc in documents:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)   # raises on a bad field


def test_probes_hit_get_routes_on_the_listening_port(container, tmp_path):
    # app.routes keeps an included router as one entry; the OpenAPI paths list every route
    paths = create_app(Settings(models_dir=tmp_path)).openapi()["paths"]
    get_routes = {path for path, operations in paths.items() if "get" in operations}
    port = int(literal_env(container).get("S2S_PORT", Settings.model_fields["port"].default))
    assert port == Settings.model_fields["port"].default == 8000
    (http,) = container["ports"]
    assert (http["name"], http["containerPort"]) == ("http", port)
    probes = {kind: container[kind]["httpGet"]
              for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert {kind: probe["path"] for kind, probe in probes.items()} == {
        "startupProbe": "/health", "livenessProbe": "/health", "readinessProbe": "/ready"}
    for probe in probes.values():
        assert probe["path"] in get_routes and probe["port"] == "http"


def test_every_environment_variable_is_a_setting(container):
    fields = set(Settings.model_fields)
    names = [item["name"] for item in container["env"]]
    assert {"S2S_HOST", "S2S_PORT", "S2S_MODELS_DIR", "S2S_SHUTDOWN_GRACE_S",
            "S2S_REQUEST_TIMEOUT_S", "S2S_API_KEYS", "S2S_ADMIN_API_KEY"} <= set(names)
    for name in names:
        assert name.startswith("S2S_") and name[4:].lower() in fields, name
        assert name == name.upper(), name


def test_environment_values_are_valid_settings(container, monkeypatch):
    """Each literal value of the manifest is read into its setting without error."""
    env = literal_env(container)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert {name[4:].lower() for name in env} <= Settings().model_fields_set


def test_a_bad_manifest_value_would_be_refused(container, monkeypatch):
    for name, value in literal_env(container).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("S2S_REQUEST_TIMEOUT_S", "-1")
    with pytest.raises(ValidationError, match="request_timeout_s"):
        Settings()


def test_keys_come_from_an_optional_secret(container):
    refs = {item["name"]: item["valueFrom"]["secretKeyRef"]
            for item in container["env"] if "valueFrom" in item}
    assert set(refs) == {"S2S_API_KEYS", "S2S_ADMIN_API_KEY"}
    assert all(ref["name"] == "s2s-keys" and ref["optional"] is True for ref in refs.values())


def test_termination_grace_exceeds_shutdown_grace(pod, container):
    grace = float(literal_env(container)["S2S_SHUTDOWN_GRACE_S"])
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
    pre_stop_s = float(pre_stop[1]) if pre_stop and pre_stop[0] == "sleep" else 0.0
    assert pod["terminationGracePeriodSeconds"] > pre_stop_s + grace


def test_service_pdb_and_hpa_target_the_deployment(objects):
    deployment = objects["Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["metadata"]["name"] == NAME
    assert pod_labels["app.kubernetes.io/name"] == NAME
    selectors = [deployment["spec"]["selector"]["matchLabels"],
                 objects["Service"]["spec"]["selector"],
                 objects["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]]
    for selector in selectors:
        assert selector and selector.items() <= pod_labels.items()
    assert objects["Service"]["spec"]["ports"][0]["targetPort"] == "http"
    target = objects["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == ("apps/v1", "Deployment", NAME)


def test_models_mount_is_read_only_from_the_pvc(objects, pod, container):
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/models"]
    assert mount["readOnly"] is True
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    claim = volume["persistentVolumeClaim"]
    assert claim["claimName"] == objects["PersistentVolumeClaim"]["metadata"]["name"]
    assert claim["readOnly"] is True
    assert objects["PersistentVolumeClaim"]["spec"]["accessModes"] == ["ReadOnlyMany"]
    assert literal_env(container)["S2S_MODELS_DIR"] == mount["mountPath"]


def test_runs_as_the_image_user_on_a_read_only_root(pod, container):
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 1000
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    (tmp,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == tmp["name"])
