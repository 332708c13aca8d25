"""infra/compose.yaml, infra/docker/Dockerfile and infra/otel/ checked against the code they run.

No container is started here (this project's CI has no image registry). Each check guards a way a real
deployment breaks, and ``test_check_catches`` shows each one failing on a broken copy of the files.
"""

from __future__ import annotations

import asyncio
import copy
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
import typer
import yaml
from fastapi.testclient import TestClient
from pydantic import BaseModel, ValidationError
from streamlit.web.server.starlette.starlette_routes import ROUTE_HEALTH
from typer.testing import CliRunner

from app.cli import cli
from app.errors import ConfigurationError
from app.settings import REPO_ROOT, Settings
from app.worker import SHUTDOWN_GRACEFUL_TIMEOUT_S
from app.worker_health import WorkerHealth, database_check, respond
from gateway.api import create_app as gateway_app
from infra.crm.app import create_app as crm_app

INFRA = REPO_ROOT / "infra"
REF = re.compile(r"\$\{(\w+)(?::([?-])([^}]*))?\}")  # ${VAR}, ${VAR:?message}, ${VAR:-default}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|KEY|TOKEN")
UNUSED_DB = "postgresql://unused@127.0.0.1:1/unused"
# The port setting of each long-running command, and how its healthcheck path is proven to exist.
PORTS = {
    "api": "api_port",
    "worker": "worker_health_port",
    "dashboard": "dashboard_port",
    "crm serve": "crm_port",
}


@dataclass
class Deployment:
    compose: dict[str, Any]
    collector: dict[str, Any]
    jaeger: dict[str, Any]
    dockerfile: str
    dockerignore: str


def _deployment() -> Deployment:
    def load(p: str) -> Any:
        return yaml.safe_load((INFRA / p).read_text())

    return Deployment(
        load("compose.yaml"),
        load("otel/collector.yaml"),
        load("otel/jaeger.yaml"),
        (INFRA / "docker" / "Dockerfile").read_text(),
        (REPO_ROOT / ".dockerignore").read_text(),
    )


def _mailspine(d: Deployment) -> dict[str, tuple[list[str], dict[str, Any]]]:
    """Service name -> (command, environment) for every service whose command runs mailspine."""
    return {
        name: (s["command"], s.get("environment") or {})
        for name, s in d.compose["services"].items()
        if (s.get("command") or [""])[0] == "mailspine"
    }


def _leaf(words: list[str]) -> tuple[Any, str]:
    """The command a mailspine argv names, and its path ("crm serve"); None if it names a group or nothing."""
    command: Any = typer.main.get_command(cli)
    path: list[str] = []
    for word in words:
        if word.startswith("-") or not hasattr(
            command, "list_commands"
        ):  # a leaf: the rest are its arguments
            break
        command = command.get_command(command.context_class(command), word)
        path.append(word)
    return (None if hasattr(command, "list_commands") else command), " ".join(path)


def _interpolate(value: str) -> str:
    """What compose substitutes, given an operator who set every required variable to a strong value."""
    return REF.sub(lambda m: m[3] if m[2] == "-" else f"{m[1].lower()}-Zq8vN3kW5rT1yU7pL2xC9mB4", value)


def _settings(env: dict[str, Any]) -> Settings:
    """Settings exactly as a container with this environment (and no .env file) builds them."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(("MAILSPINE_", "DATABASE_URL", "OTEL_")):
                mp.delenv(name)
        for name, value in env.items():
            if value is not None:  # no value: passed through from the operator's shell, unset here
                mp.setenv(name, _interpolate(str(value)))
        return Settings(_env_file=None)  # type: ignore[call-arg]


def is_setting(name: str) -> bool:
    """Whether pydantic-settings maps this variable to a field (prefix, ``__`` nesting, aliases)."""
    fields = Settings.model_fields.values()
    if name in {c for f in fields if f.validation_alias for c in f.validation_alias.choices}:  # type: ignore[union-attr]
        return True
    model: type[BaseModel] = Settings
    parts = name.removeprefix("MAILSPINE_").lower().split("__") if name.startswith("MAILSPINE_") else []
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None or field.validation_alias is not None:  # an aliased field takes its alias only
            return False
        if i == len(parts) - 1:
            return True
        annotation = field.annotation
        nested = [
            t for t in (annotation, *get_args(annotation)) if isinstance(t, type) and issubclass(t, BaseModel)
        ]
        if not nested:  # a dict field takes any key, one level down (MAILSPINE_TOOLS__CREDENTIALS__CRM_WRITE)
            return get_origin(annotation) is dict and i == len(parts) - 2
        model = nested[0]
    return False


def cli_problems(d: Deployment) -> list[str]:
    problems = []
    for name, (command, _) in _mailspine(d).items():
        leaf, _path = _leaf(command[1:])
        result = CliRunner().invoke(cli, [*command[1:], "--help"])
        if leaf is None or result.exit_code != 0:
            problems.append(f"{name}: `{' '.join(command)}` is no mailspine command ({result.output[-200:]})")
    return problems


def env_problems(d: Deployment) -> list[str]:
    problems = []
    for name, (_, env) in _mailspine(d).items():
        problems += [
            f"{name}: {k} is no setting" for k in env if k.startswith("MAILSPINE_") and not is_setting(k)
        ]
        try:
            settings = _settings(env)
        except (ConfigurationError, ValidationError) as exc:
            problems.append(f"{name}: settings refused: {exc}")
            continue
        if settings.env != "prod":
            problems.append(f"{name}: MAILSPINE_ENV={settings.env}: the dev defaults would be accepted")
    return problems


def health_problems(d: Deployment) -> list[str]:
    problems = []
    for name, (command, env) in _mailspine(d).items():
        _, path = _leaf(command[1:])
        if path not in PORTS:
            continue
        probe = " ".join(d.compose["services"][name].get("healthcheck", {}).get("test", []))
        url = re.search(r"http://(?:127\.0\.0\.1|localhost):(\d+)(/[^'\"\s]*)", probe)
        settings = _settings(env)
        if url is None or int(url[1]) != getattr(settings, PORTS[path]):
            problems.append(f"{name}: no healthcheck on its port {getattr(settings, PORTS[path])}: {probe!r}")
            continue
        if path == "api":
            ok = (
                TestClient(gateway_app(settings=settings, database_url=UNUSED_DB)).get(url[2]).status_code
                == 200
            )
        elif path == "crm serve":
            ok = TestClient(crm_app(database_url=UNUSED_DB)).get(url[2]).status_code == 200
        elif path == "worker":
            health = WorkerHealth(concurrency=1, check_database=database_check(UNUSED_DB))
            ok = asyncio.run(respond(health, "GET", url[2]))[0] != HTTPStatus.NOT_FOUND
        else:
            ok = url[2] == f"/{ROUTE_HEALTH}"
        if not ok:
            problems.append(f"{name}: {url[2]} does not exist in the {path} process")
    return problems


def _seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(float(n) * units[u] for n, u in re.findall(r"([\d.]+)(ms|h|m|s)", duration))


def structure_problems(d: Deployment) -> list[str]:
    services, problems = d.compose["services"], []
    commands = {name: " ".join(s.get("command") or []) for name, s in services.items()}
    for name, s in services.items():
        image = str(s.get("image", ""))
        if ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
            problems.append(f"{name}: image {image!r} has no pinned tag")
        for dep, how in (s.get("depends_on") or {}).items():
            if dep not in services:
                problems.append(f"{name}: depends on unknown service {dep}")
            elif (
                commands[dep] == "mailspine db upgrade"
                and how.get("condition") != "service_completed_successfully"
            ):
                problems.append(f"{name}: starts before the migrations completed")
        for volume in s.get("volumes") or []:
            source = volume.split(":")[0]
            if source.startswith(".") and not (INFRA / source).exists():
                problems.append(f"{name}: mounts missing {source}")
        if "build" in s and not (INFRA / s["build"]["context"] / s["build"]["dockerfile"]).is_file():
            problems.append(f"{name}: no Dockerfile at {s['build']}")
        if commands[name] in ("mailspine api", "mailspine worker") and not any(
            commands[dep] == "mailspine db upgrade" for dep in s.get("depends_on") or {}
        ):
            problems.append(f"{name}: does not wait for `mailspine db upgrade`")
        grace = _seconds(str(s.get("stop_grace_period", "10s")))
        if commands[name].startswith("mailspine worker") and grace <= SHUTDOWN_GRACEFUL_TIMEOUT_S:
            problems.append(f"{name}: stop_grace_period must exceed {SHUTDOWN_GRACEFUL_TIMEOUT_S} s")
    return problems


def _endpoint(value: str) -> tuple[str, int]:
    host, port = re.sub(r"^\w+://", "", value).split("/")[0].rsplit(":", 1)
    return host, int(port)


def telemetry_problems(d: Deployment) -> list[str]:
    services, problems = d.compose["services"], []
    protocols = d.collector["receivers"]["otlp"]["protocols"]
    jaeger_ports = {_endpoint(p["endpoint"])[1] for p in d.jaeger["receivers"]["otlp"]["protocols"].values()}
    for name, (_, env) in _mailspine(d).items():
        target = _endpoint(_interpolate(str(env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "none:0"))))
        if target != ("otel-collector", _endpoint(protocols["http"]["endpoint"])[1]):  # OTLP/HTTP exporter
            problems.append(f"{name}: OTLP endpoint {target} is not the collector's HTTP receiver")
    for pipeline in d.collector["service"]["pipelines"].values():
        for kind in ("receivers", "processors", "exporters"):
            problems += [
                f"collector: {c} not defined" for c in pipeline.get(kind, []) if c not in d.collector[kind]
            ]
        for exporter in pipeline.get("exporters", []):
            host, port = _endpoint(d.collector["exporters"][exporter]["endpoint"])
            if host not in services or (host == "jaeger" and port not in jaeger_ports):
                problems.append(f"collector: exporter {exporter} sends to {host}:{port}, no compose service")
    return problems


def dockerfile_problems(d: Deployment) -> list[str]:
    ignored = [p.strip().rstrip("/") for p in d.dockerignore.splitlines() if p.strip() and p[0] not in "#!"]
    problems = []
    for line in re.sub(r"\\\n", " ", d.dockerfile).splitlines():
        words = line.split()
        if not words or words[0] != "COPY" or any(w.startswith("--from") for w in words):
            continue
        for source in [w for w in words[1:-1] if not w.startswith("--")]:
            source = source.rstrip("/")
            if not (REPO_ROOT / source).exists():
                problems.append(f"Dockerfile: COPY {source}: not in the repository")
            if any(source == p or source.startswith(p + "/") for p in ignored):
                problems.append(f"Dockerfile: COPY {source}: excluded by .dockerignore")
    return problems


def secret_problems(d: Deployment) -> list[str]:
    problems = []
    for name, s in d.compose["services"].items():
        for key, value in (s.get("environment") or {}).items():
            literal = REF.sub("", str(value or ""))
            if SECRET_NAME.search(key) and not key.endswith(("_DIR", "_FILE")):
                if value is not None and not re.fullmatch(r"\$\{\w+:\?[^}]+\}", str(value)):
                    problems.append(f"{name}: {key} must be a required ${{VAR:?...}} or a pass-through")
            elif re.search(r"://[^/@\s]*:[^/@\s]+@", literal):
                problems.append(f"{name}: {key} holds a literal password")
    return problems


CHECKS = [cli_problems, env_problems, health_problems, structure_problems, telemetry_problems]
CHECKS += [dockerfile_problems, secret_problems]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_deployment(check: Any) -> None:
    assert check(_deployment()) == []


def _env(service: str, **changes: Any) -> Any:
    return lambda d: d.compose["services"][service]["environment"].update(changes)


def _service(service: str, **changes: Any) -> Any:
    return lambda d: d.compose["services"][service].update(changes)


def _probe(service: str, url: str) -> Any:
    return lambda d: d.compose["services"][service]["healthcheck"].update(test=["CMD", "curl", "-f", url])


def _exporter(endpoint: str) -> Any:
    return lambda d: d.collector["exporters"]["otlp/jaeger"].update(endpoint=endpoint)


def _append(attribute: str, line: str) -> Any:
    return lambda d: setattr(d, attribute, f"{getattr(d, attribute)}\n{line}\n")


BROKEN = {
    "command typo": (cli_problems, _service("api", command=["mailspine", "apii"])),
    "group, not a command": (cli_problems, _service("migrate", command=["mailspine", "db"])),
    "unknown option": (cli_problems, _service("worker", command=["mailspine", "worker", "--bogus"])),
    "unknown setting": (env_problems, _env("api", MAILSPINE_API_PROT="8080")),
    "unknown nested setting": (env_problems, _env("api", MAILSPINE_AUTH__JWT_SECRETS="x")),
    "alias-only setting by prefix": (env_problems, _env("api", MAILSPINE_OTEL_EXPORTER_OTLP_ENDPOINT="x")),
    "dev mode": (env_problems, _env("worker", MAILSPINE_ENV="dev")),
    "weak jwt secret": (env_problems, _env("worker", MAILSPINE_AUTH__JWT_SECRET="${J:-short}")),
    "api path": (health_problems, _probe("api", "http://127.0.0.1:8080/healthz")),
    "api port": (health_problems, _probe("api", "http://127.0.0.1:9090/health")),
    "worker path": (health_problems, _probe("worker", "http://127.0.0.1:8081/ready")),
    "worker health off": (health_problems, _env("worker", MAILSPINE_WORKER_HEALTH_PORT="0")),
    "crm path": (health_problems, _probe("crm", "http://127.0.0.1:8090/healthz")),
    "dashboard path": (health_problems, _probe("dashboard", "http://127.0.0.1:8501/health")),
    "latest tag": (structure_problems, _service("jaeger", image="jaegertracing/jaeger:latest")),
    "no migration wait": (structure_problems, _service("api", depends_on={"postgres": {}})),
    "short grace": (structure_problems, _service("worker", stop_grace_period="30s")),
    "missing mount": (structure_problems, _service("jaeger", volumes=["./otel/nope.yaml:/etc/x"])),
    "collector target": (telemetry_problems, _exporter("tempo:4317")),
    "jaeger port": (telemetry_problems, _exporter("jaeger:14250")),
    "app endpoint": (telemetry_problems, _env("api", OTEL_EXPORTER_OTLP_ENDPOINT="http://jaeger:4318")),
    "copy missing": (dockerfile_problems, _append("dockerfile", "COPY nope/ nope/")),
    "copy ignored": (dockerfile_problems, _append("dockerignore", "agent")),
    "literal secret": (secret_problems, _env("api", MAILSPINE_AUTH__JWT_SECRET="hunter2-hunter2-hunter2")),
    "secret default": (secret_problems, _env("api", MAILSPINE_REVIEWER_API_KEY="${K:-dev-reviewer-key}")),
    "password in url": (secret_problems, _env("api", DATABASE_URL="postgresql://u:pw@postgres/db")),
}


@pytest.mark.parametrize("case", BROKEN, ids=str)
def test_check_catches(case: str) -> None:
    check, breaks = BROKEN[case]
    deployment = copy.deepcopy(_deployment())
    breaks(deployment)
    assert check(deployment) != []


@pytest.mark.skipif(
    shutil.which("docker-compose") is None and not os.environ.get("CI"),
    reason="Debian's docker-compose is not installed (.ci/run installs it; in CI this test never skips)",
)
def test_docker_compose_v1_validates(tmp_path: Path) -> None:
    """The schema, offline. 1.29 predates the top-level ``name`` key (the only v2 key used): dropped."""
    compose = _deployment().compose
    del compose["name"]
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / "compose.yaml").write_text(yaml.safe_dump(compose))
    shell = {name: "/set" for name in re.findall(r"\$\{(\w+):\?", (INFRA / "compose.yaml").read_text())}
    run = subprocess.run(
        ["docker-compose", "-f", "infra/compose.yaml", "config", "-q"],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], **shell},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr


def test_documented_commands_run() -> None:
    """The one-off commands of docs/operations.md, "Deploying with compose": real services, real commands."""
    docs = (REPO_ROOT / "docs" / "operations.md").read_text().split("## Deploying with compose")[1]
    found = re.findall(
        r"compose -f infra/compose\.yaml (?:run --rm(?: -T)?|exec) (\S+) mailspine ([^>#\n]*)", docs
    )
    assert len(found) >= 5
    for service, argv in found:
        assert service in _deployment().compose["services"]
        words = argv.split()
        assert _leaf(words)[0] is not None, argv
        assert CliRunner().invoke(cli, [*words, "--help"]).exit_code == 0, argv
