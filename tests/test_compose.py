"""docker-compose.yml agrees with the app: ports, healthcheck route, entry points, settings names
(Docker itself cannot run here)."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from service.app import create_app
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
TRANSLATORS = ("translator", "translator-cpu")


class ComposeLoader(yaml.SafeLoader):
    """Knows Compose's !reset and !override tags."""


ComposeLoader.add_constructor("!reset", lambda loader, node: None)
ComposeLoader.add_constructor("!override", lambda loader, node: loader.construct_object(node))


def load(name: str) -> dict:
    return yaml.load((ROOT / name).read_text(encoding="utf-8"), Loader=ComposeLoader)


@pytest.fixture(scope="module")
def services() -> dict:
    return load("docker-compose.yml")["services"]


@pytest.fixture(scope="module")
def routes(tmp_path_factory) -> dict[str, set[str]]:
    app = create_app(Settings(models_dir=tmp_path_factory.mktemp("none")))
    return {path: {method.upper() for method in operations}
            for path, operations in app.openapi()["paths"].items()}


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def service_port(service: dict) -> int:
    return int(environment(service).get("S2S_PORT", Settings.model_fields["port"].default))


def container_port(mapping: str) -> int:
    return int(str(mapping).rsplit(":", 1)[-1].split("/")[0])


def command_of(service: dict) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


def test_translators_publish_the_port_the_app_listens_on(services):
    assert Settings.model_fields["port"].default == 8000
    for name in TRANSLATORS:
        port = service_port(services[name])
        assert [container_port(m) for m in services[name]["ports"]] == [port]


def test_every_environment_variable_is_a_setting(services):
    fields = set(Settings.model_fields)
    for name in TRANSLATORS:
        env = environment(services[name])
        assert env, name
        for key in env:
            assert key.startswith("S2S_") and key[4:].lower() in fields, (name, key)


def test_environment_values_are_valid_settings(services, monkeypatch):
    """Each variable's value (its compose default) is read into its setting without error."""
    for name in TRANSLATORS:
        env = environment(services[name])
        for key, value in env.items():
            monkeypatch.setenv(key, re.sub(r"\$\{[^}:]+:-([^}]*)\}", r"\1", value))
        settings = Settings()
        assert {key[4:].lower() for key in env} <= settings.model_fields_set, name


def test_a_bad_environment_value_is_refused(monkeypatch):
    monkeypatch.setenv("S2S_PORT", "not-a-port")
    with pytest.raises(ValidationError, match="port"):
        Settings()


def test_healthcheck_calls_the_readiness_route(services, routes):
    for name in TRANSLATORS:
        test = " ".join(services[name]["healthcheck"]["test"])
        match = re.search(r"http://[^/:]+:(\d+)(/[\w/-]*)", test)
        assert match, test
        assert int(match[1]) == service_port(services[name])
        assert match[2] == "/ready" and "GET" in routes[match[2]]


def test_dockerfile_agrees(routes):
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "EXPOSE 8000" in dockerfile and "S2S_PORT=8000" in dockerfile
    assert "/ready" in dockerfile
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE)
    assert cmd and yaml.safe_load(cmd[1]) == ["s2s-serve"]


def test_commands_run_real_entry_points(services):
    installed = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for name in (*TRANSLATORS, "trainer"):
        command = command_of(services[name])
        module, function = installed[command[0]].split(":")
        script = ROOT / "scripts" / (module.split(".")[-1] + ".py")
        assert f"def {function}(" in script.read_text(encoding="utf-8"), command
        if "--config" in command:
            assert (ROOT / command[command.index("--config") + 1]).is_file()
    assert command_of(services["translator"])[0] == "s2s-serve"
    assert command_of(services["trainer"])[0] == "s2s-train"


def test_stop_grace_period_exceeds_the_shutdown_grace(services):
    from service.http.server import SHUTDOWN_MARGIN_S

    for name in TRANSLATORS:
        grace = float(environment(services[name])["S2S_SHUTDOWN_GRACE_S"])
        stop = services[name]["stop_grace_period"]
        assert stop.endswith("s") and float(stop[:-1]) > grace + SHUTDOWN_MARGIN_S, name


def test_gpu_reservation_and_cpu_fallback(services):
    devices = services["translator"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert devices[0]["count"] in (1, "all")
    assert environment(services["translator"])["S2S_DEVICE"] == "cuda"
    cpu = services["translator-cpu"]
    assert cpu["profiles"] == ["cpu"] and "deploy" not in cpu
    assert environment(cpu)["S2S_DEVICE"] == "cpu"
    assert any(str(v).endswith(":/models:ro") for v in services["translator"]["volumes"])


def test_trainer_and_balancer_profiles(services):
    assert services["trainer"]["profiles"] == ["train"]
    balancer = services["lb"]
    assert balancer["profiles"] == ["replicas"]
    config_mount = next(v for v in balancer["volumes"] if "nginx.conf" in v)
    config = (ROOT / config_mount.split(":")[0]).read_text(encoding="utf-8")
    assert f"server translator:{service_port(services['translator'])}" in config
    listen = int(re.search(r"listen (\d+);", config)[1])
    assert [container_port(m) for m in balancer["ports"]] == [listen]
    body_limit = Settings.model_fields["max_body_bytes"].default
    assert "client_max_body_size 1m;" in config and body_limit <= 1024 * 1024


def test_replicas_override_frees_the_host_port():
    override = load("docker-compose.replicas.yml")["services"]
    assert override["translator"]["ports"] is None     # !reset []
