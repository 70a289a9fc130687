"""The compose files, the Dockerfile and .env.example: valid, safe by default, and complete.

`docker-compose config` (Compose v1, as on this machine) both validates the files and resolves
them, and the checks below read its resolved output, so they see what Compose would run.
"""

from __future__ import annotations

import fnmatch
import inspect
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticUndefined

from controlbot.settings import Settings as ControlbotSettings
from protocol import keys
from runner.settings import Settings as RunnerSettings

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
COMPOSE_TEST = REPO / "docker-compose.test.yml"
ENV_EXAMPLE = REPO / ".env.example"
DOCKERFILE = REPO / "Dockerfile"
FAKE_ENV = {
    "BOT_TOKEN": "123456:TEST-not-a-real-token",
    "ADMIN_IDS": "111,222",
    "REDIS_RUNNER_PASSWORD": "test-runner-password",
    "REDIS_CONTROLBOT_PASSWORD": "test-controlbot-password",
}
# Variables the compose file itself reads (not settings of either service).
COMPOSE_VARS = {
    "DOCKER_GID",
    "API_BIND",
    "BOTRUNNER_IMAGE",
    "BASE_IMAGE",
    # Redis's ACL users and memory cap (#10): read by the redis service.
    "REDIS_RUNNER_PASSWORD",
    "REDIS_CONTROLBOT_PASSWORD",
    "REDIS_MAXMEMORY",
}
# Read by `python -m controlbot` itself, outside its Settings class.
EXTRA_CONTROLBOT_VARS = {"LOG_LEVEL"}
TEST_OVERRIDE_ENV = {
    "TEST_APP_IMAGE": "botrunner-test/app:x",
    "TEST_REDIS_IMAGE": "botrunner-test/redis:x",
    "TEST_REDIS_PORT": "16379",
    "TEST_API_PORT": "18080",
    "TEST_BASE_IMAGE": "botrunner-test/python:bookworm",
    "TEST_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt",
    "TEST_SESSION_ID": "t000000",
    "TEST_TELEGRAM_API_URL": "http://127.0.0.1:1",
}


class Compose:
    """docker-compose with only the given variables: no .env of the checkout, no shell leftovers."""

    def __init__(self, empty_env_file: Path) -> None:
        exe = shutil.which("docker-compose")
        if exe is None:
            pytest.fail("docker-compose is not installed (scripts/test.sh installs it)", pytrace=False)
        self.exe = exe
        self.env_file = empty_env_file

    def run(
        self, *args: str, files: tuple[Path, ...] = (COMPOSE,), env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        argv = [self.exe, "--env-file", str(self.env_file), "--project-directory", str(REPO)]
        for f in files:
            argv += ["-f", str(f)]
        base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
        return subprocess.run(
            [*argv, *args],
            env={**base, **(env or {})},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def config(
        self, env: dict[str, str] | None = None, files: tuple[Path, ...] = (COMPOSE,)
    ) -> dict[str, Any]:
        """The resolved configuration, as Compose would run it (with the fake required values)."""
        proc = self.run("config", files=files, env={**FAKE_ENV, **(env or {})})
        assert proc.returncode == 0, proc.stderr
        config: dict[str, Any] = yaml.safe_load(proc.stdout)
        return config


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> Compose:
    empty = tmp_path_factory.mktemp("compose") / "empty.env"
    empty.touch()
    return Compose(empty)


@pytest.fixture(scope="module")
def config(compose: Compose) -> dict[str, Any]:
    return compose.config()


@pytest.fixture(scope="module")
def services(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What a plain `up` starts: the services of no profile."""
    found: dict[str, dict[str, Any]] = {
        name: svc for name, svc in config["services"].items() if not svc.get("profiles")
    }
    return found


def env_keys(service: dict[str, Any]) -> set[str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return {item.split("=", 1)[0] for item in env}
    return set(env)


def fields(settings: type[BaseModel]) -> set[str]:
    return {name.upper() for name in settings.model_fields}


# --- the compose file ----------------------------------------------------------------------


def test_compose_file_validates(config: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {"redis", "runner", "controlbot"}
    assert "version" not in yaml.safe_load(COMPOSE.read_text()), "version-less, for Compose v1 and v2"


@pytest.mark.parametrize("missing", ["BOT_TOKEN", "ADMIN_IDS"])
def test_compose_refuses_to_start_without_required_settings(compose: Compose, missing: str) -> None:
    env = {k: v for k, v in FAKE_ENV.items() if k != missing}
    proc = compose.run("config", "-q", env=env)
    assert proc.returncode != 0
    assert f"set {missing} in .env" in proc.stderr


def test_only_the_runner_holds_the_docker_socket(services: dict[str, dict[str, Any]]) -> None:
    holders = {
        name
        for name, svc in services.items()
        for vol in svc.get("volumes") or []
        if "docker.sock" in (vol if isinstance(vol, str) else str(vol.get("source", "")))
    }
    assert holders == {"runner"}
    assert not any(svc.get("privileged") for svc in services.values())


def test_runner_reaches_the_socket_through_its_group(
    compose: Compose, services: dict[str, dict[str, Any]]
) -> None:
    assert [str(g) for g in services["runner"]["group_add"]] == ["999"]
    custom = compose.config({"DOCKER_GID": "106"})["services"]["runner"]
    assert [str(g) for g in custom["group_add"]] == ["106"]


def test_redis_port_is_not_published(services: dict[str, dict[str, Any]]) -> None:
    assert not services["redis"].get("ports")
    assert services["redis"].get("network_mode") is None


def test_redis_persists_to_a_named_volume(
    config: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    redis = services["redis"]
    command = " ".join(redis["command"]) if isinstance(redis["command"], list) else redis["command"]
    assert "--appendonly yes" in command
    sources = {v.split(":", 1)[0] if isinstance(v, str) else v["source"] for v in redis["volumes"]}
    assert sources & set(config["volumes"]), "Redis data must live in a named volume"


def _published(svc: dict[str, Any]) -> list[tuple[str, str, str]]:
    out = []
    for port in svc.get("ports") or []:
        if isinstance(port, dict):
            out.append((str(port.get("host_ip", "")), str(port["published"]), str(port["target"])))
        else:
            ip, published, target = re.fullmatch(r"(?:(.*):)?(\d+):(\d+)(?:/\w+)?", str(port)).groups()  # type: ignore[union-attr]
            out.append((ip or "", published, target))
    return out


def test_api_is_published_on_loopback_by_default(
    compose: Compose, services: dict[str, dict[str, Any]]
) -> None:
    assert _published(services["controlbot"]) == [("127.0.0.1", "8080", "8080")]
    env = services["controlbot"]["environment"]
    assert env["API_HOST"] == "0.0.0.0" and env["API_PORT"] == "8080"  # inside its container
    custom = compose.config({"API_BIND": "0.0.0.0", "API_PORT": "9000"})["services"]["controlbot"]
    assert _published(custom) == [("0.0.0.0", "9000", "8080")]
    assert not services["runner"].get("ports")


def test_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert services["runner"]["healthcheck"]["test"] == ["CMD", "python", "-m", "runner", "--check"]
    assert services["controlbot"]["healthcheck"]["test"][:2] == ["CMD", "python"]
    for svc in services.values():
        assert svc["healthcheck"].get("disable") is not True


def test_start_order_waits_for_health(services: dict[str, dict[str, Any]]) -> None:
    assert services["runner"]["depends_on"] == {"redis": {"condition": "service_healthy"}}
    assert services["controlbot"]["depends_on"] == {
        "redis": {"condition": "service_healthy"},
        "runner": {"condition": "service_healthy"},
    }


def test_restart_policies_and_hardening(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        assert svc.get("restart") in ("unless-stopped", "always"), name
        assert svc["logging"]["options"]["max-size"], name
    for name in ("runner", "controlbot"):
        svc = services[name]
        assert svc["read_only"] is True and svc["init"] is True, name
        assert svc["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in svc["security_opt"], name
        assert svc["command"][:3] == ["python", "-m", name], name
        assert svc["image"] == services["runner"]["image"], "one image for both services"


@pytest.mark.parametrize(
    ("service", "settings", "extra"),
    [("runner", RunnerSettings, set()), ("controlbot", ControlbotSettings, EXTRA_CONTROLBOT_VARS)],
)
def test_every_setting_reaches_its_service(
    services: dict[str, dict[str, Any]], service: str, settings: type[BaseModel], extra: set[str]
) -> None:
    """A setting in .env does nothing unless compose passes it into the container by name."""
    missing = (fields(settings) | extra) - env_keys(services[service])
    assert not missing, f"add to {service}.environment in docker-compose.yml: {sorted(missing)}"


def test_monitoring_is_an_optional_profile_on_loopback(
    config: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    monitoring = {n: s for n, s in config["services"].items() if s.get("profiles")}
    assert set(monitoring) == {"prometheus", "grafana"}
    for name, svc in monitoring.items():
        assert svc["profiles"] == ["monitoring"], name
        assert all(ip == "127.0.0.1" for ip, _, _ in _published(svc)), name
    # The runner's /metrics listens inside the project's network only.
    assert services["runner"]["environment"]["RUNNER_METRICS_HOST"] == "0.0.0.0"
    assert not services["runner"].get("ports")


def test_test_override_puts_every_service_on_the_host_network(compose: Compose) -> None:
    config = compose.config(TEST_OVERRIDE_ENV, files=(COMPOSE, COMPOSE_TEST))
    for name, svc in config["services"].items():
        if svc.get("profiles"):
            continue
        assert svc["network_mode"] == "host", name
        assert not svc.get("networks"), name
        assert svc["labels"]["botrunner.instance"] == "t000000", name
    runner = config["services"]["runner"]["environment"]
    assert runner["RUNNER_NETWORK_MODE"] == "host" and runner["RUNNER_BUILD_NETWORK"] == "host"
    assert runner["RUNNER_INSTANCE"] == "t000000"


# --- .env.example --------------------------------------------------------------------------

_LINE = re.compile(r"^#?\s?([A-Z][A-Z0-9_]*)=(.*)$")


def example_values() -> dict[str, tuple[str, bool]]:
    """KEY -> (value, commented out) for every KEY=value line of .env.example."""
    found: dict[str, tuple[str, bool]] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if m := _LINE.match(line):
            assert m.group(1) not in found, f"{m.group(1)} appears twice in .env.example"
            found[m.group(1)] = (m.group(2), line.startswith("#"))
    return found


def test_env_example_documents_every_setting() -> None:
    documented = set(example_values())
    wanted = fields(RunnerSettings) | fields(ControlbotSettings) | COMPOSE_VARS | EXTRA_CONTROLBOT_VARS
    assert not wanted - documented, f"document in .env.example: {sorted(wanted - documented)}"
    assert not documented - wanted, f"unknown keys in .env.example: {sorted(documented - wanted)}"


def test_env_example_required_values_are_blank_and_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BOT_TOKEN", raising=False)
    monkeypatch.delenv("ADMIN_IDS", raising=False)
    values = example_values()
    for key in ("BOT_TOKEN", "ADMIN_IDS"):
        assert values[key] == ("", False), f"{key} must be an uncommented, empty line"
    with pytest.raises(ValidationError) as e:
        ControlbotSettings(_env_file=ENV_EXAMPLE)
    assert {err["loc"][0] for err in e.value.errors()} >= {"bot_token", "admin_ids"}


@pytest.mark.parametrize("settings", [RunnerSettings, ControlbotSettings])
def test_env_example_shows_the_real_defaults(settings: type[BaseModel]) -> None:
    """Each commented-out `# KEY=value` is the built-in default, parsed the way the service parses it."""
    values = example_values()
    required = {"bot_token": FAKE_ENV["BOT_TOKEN"], "admin_ids": FAKE_ENV["ADMIN_IDS"]}
    for name, field in settings.model_fields.items():
        value, commented = values[name.upper()]
        if field.is_required() or field.default is PydanticUndefined:
            continue  # required, or computed at start-up (RUNNER_ID: the hostname)
        assert commented, f"{name.upper()} has a default, so its example line is commented out"
        if value == "":
            assert field.default in (None, []), f"{name.upper()}= is empty but defaults to {field.default!r}"
            continue
        parsed = settings(_env_file=None, **{**required, name: value})
        assert getattr(parsed, name) == field.default, f"{name.upper()}={value} is not the default"


# --- Dockerfile and build context ----------------------------------------------------------


def test_dockerfile_shape() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.12-slim$", text, re.M)
    assert len(re.findall(r"^FROM ", text, re.M)) == 2, "multi-stage: builder and final"
    assert "COPY --from=builder /opt/venv /opt/venv" in text
    assert re.search(r"^USER 10001", text, re.M), "runs as non-root"
    assert re.search(r"^HEALTHCHECK ", text, re.M)
    assert re.search(r"apt-get install[^\n]*\bgit\b", text), "clone jobs run git from the runner's own image"


def test_dockerignore_keeps_the_context_small_but_complete() -> None:
    lines = [ln.strip() for ln in (REPO / ".dockerignore").read_text().splitlines()]
    rules = [ln for ln in lines if ln and not ln.startswith("#")]
    assert rules[0] == "*", "exclude everything, then allow what the image needs"
    for needed in ("pyproject.toml", "README.md", "protocol/", "runner/", "controlbot/", "cli/", "deploy/"):
        assert f"!{needed}" in rules, needed


# --- README --------------------------------------------------------------------------------


def test_readme_shows_the_two_commands_and_every_setting() -> None:
    readme = (REPO / "README.md").read_text()
    assert "docker compose up -d" in readme
    assert "scripts/test.sh" in readme and "scripts/test.sh" in (REPO / ".ci" / "run").read_text()
    wanted = fields(RunnerSettings) | fields(ControlbotSettings) | COMPOSE_VARS | EXTRA_CONTROLBOT_VARS
    missing = sorted(name for name in wanted if f"`{name}`" not in readme)
    assert not missing, f"add to the README's configuration tables: {missing}"


# What the control bot reaches through the protocol modules it shares with the runner.
SHARED_KEYS = {
    "COMMANDS_STREAM",
    "replies",
    "upload",
    "archive",
    "heartbeat",
    "RUNNERS",
    "RUNNER_PUBKEY",
}


def sample_key(name: str) -> str | None:
    """A key of protocol/keys.py by its constant's or function's name, with made-up arguments;
    None for a name there that is no key (a TTL, a group name)."""
    value = getattr(keys, name, None)
    if isinstance(value, str):
        return value if value.startswith(keys.PREFIX + ":") else None
    if not callable(value):
        return None
    params = inspect.signature(value).parameters.values()
    return str(value(*["0" * 32 if p.annotation in ("str", str) else 1 for p in params]))


def test_the_control_bots_redis_user_may_touch_every_key_it_names() -> None:
    """Its ACL user lists key patterns one by one (docker-compose.yml): a key added to the control
    bot's code and not to that list fails only in the shipped stack, with NOPERM. So every `keys.X`
    the control bot's code names must match one of its patterns."""
    line = next(
        ln for ln in (REPO / "docker-compose.yml").read_text().splitlines() if "user controlbot on" in ln
    )
    patterns = [token.split("~", 1)[1] for token in line.split() if "~" in token]
    names = set(SHARED_KEYS)
    for path in (REPO / "controlbot").rglob("*.py"):
        names |= set(re.findall(r"\bkeys\.([A-Za-z_]+)\b", path.read_text()))
    samples = {name: key for name in sorted(names) if (key := sample_key(name)) is not None}
    assert SHARED_KEYS | {"verdict", "gate_message", "api_token"} <= set(samples)
    refused = {n: k for n, k in samples.items() if not any(fnmatch.fnmatchcase(k, p) for p in patterns)}
    assert not refused, f"keys the controlbot ACL user may not touch (docker-compose.yml): {refused}"
