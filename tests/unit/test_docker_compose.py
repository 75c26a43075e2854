"""docker-compose.yml: the production stack's shape, checked without a Docker engine.

No machine here runs Docker, so the file is read as data (``yaml.safe_load`` resolves the
``<<: *app`` merge keys as compose does) and checked against the settings and .env.example.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from django.conf import settings

REPO_DIR = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_DIR / "docker-compose.yml"
ENV_EXAMPLE = REPO_DIR / ".env.example"
SETTINGS_FILE = REPO_DIR / "backend" / "core" / "settings.py"

APP_SERVICES = ("web", "worker", "beat", "flower")
CELERY_SERVICES = ("worker", "beat", "flower")

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message};
# `$${...}` is compose's escape for a literal `${...}` left to the container's shell.
VARIABLE = re.compile(r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
# NAME=value lines of .env.example; a leading `# ` marks a documented but unset variable.
ENV_LINE = re.compile(r"^(?P<commented>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")
SECRET_NAME = re.compile(r"PASSWORD|KEY|SECRET|TOKEN|AUTH", re.IGNORECASE)
SETTINGS_ENV_READ = re.compile(r"""(?:env_(?:str|int|float|bool|list)\(|os\.environ\.get\()\s*["']([A-Z0-9_]+)["']""")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def env_example() -> dict[str, tuple[bool, str]]:
    """Map each documented variable to (set, value); `set` is False for a commented line."""
    documented = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = ENV_LINE.match(line.strip())
        if match:
            documented[match["name"]] = (not match["commented"], match["value"])
    return documented


@pytest.fixture(scope="module")
def traced_env(env_example) -> dict[str, str]:
    """A .env giving every documented variable a value that names it, to trace where it lands."""
    return {name: f"from-env-{name.lower()}" for name in env_example}


def command_args(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]


def option_value(args: list[str], *names: str) -> list[str]:
    """Every value given to one of the option names, as `-X value` or `--name=value`."""
    values = []
    for index, arg in enumerate(args):
        for name in names:
            if arg == name and index + 1 < len(args):
                values.append(args[index + 1])
            elif arg.startswith(f"{name}="):
                values.append(arg.split("=", 1)[1])
    return values


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: str(value) for key, value in env.items()}


def interpolate(value: str, env: dict[str, str]) -> str:
    """Fill ${...} as compose would, given the variables of a .env made from .env.example."""

    def fill(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        given = env.get(name)
        if op and op.startswith(":") and not given:
            given = None
        if given is not None:
            return given
        if op and op.endswith("-"):
            return arg
        raise AssertionError(f"${{{name}}} has no value in .env.example and no default")

    return VARIABLE.sub(fill, value).replace("$$", "$")


def reference_name(value: str) -> str | None:
    """The variable a value consists of, when the whole value is one ${...} reference."""
    match = VARIABLE.fullmatch(value)
    return match["name"] if match else None


def walk(node: Any, key: str = ""):
    """Yield (key, value) for every scalar in the document, `KEY=value` list items split."""
    if isinstance(node, dict):
        for child_key, child in node.items():
            yield from walk(child, str(child_key))
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, str) and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", item):
                yield tuple(item.split("=", 1))
            else:
                yield from walk(item, key)
    elif node is not None:
        yield key, str(node)


def test_it_defines_the_stack_services(services):
    assert {"postgres", "redis", "migrate", *APP_SERVICES} <= services.keys()


def test_worker_consumes_exactly_the_queues_declared_in_settings(services):
    args = command_args(services["worker"])
    assert args[args.index("-A") + 2] == "worker"
    queues = option_value(args, "-Q", "--queues")
    assert len(queues) == 1, "the worker names its queues exactly once"
    # Order matters: Redis serves the queues in the listed order (priority strategy).
    assert queues[0].split(",") == ["high", "medium", "low"]
    assert queues[0].split(",") == list(settings.TASK_QUEUES)


def test_celery_commands_target_an_importable_app(services):
    for name in CELERY_SERVICES:
        args = command_args(services[name])
        assert args[0] == "celery", name
        (target,) = option_value(args, "-A", "--app")
        assert target == "backend.core", name
        assert importlib.util.find_spec(target) is not None, name


def test_beat_uses_the_database_scheduler_as_a_single_replica(services):
    beat = services["beat"]
    args = command_args(beat)
    assert args[args.index("-A") + 2] == "beat"
    assert option_value(args, "-S", "--scheduler") == ["django_celery_beat.schedulers:DatabaseScheduler"]
    assert option_value(args, "-S", "--scheduler") == [settings.CELERY_BEAT_SCHEDULER]
    # A second beat would send every periodic task twice.
    assert beat.get("deploy", {}).get("replicas", 1) == 1
    assert "replicas" not in beat and "scale" not in beat


def test_flower_takes_required_basic_auth_from_the_environment(services):
    flower = services["flower"]
    args = command_args(flower)
    assert args[args.index("-A") + 2] == "flower"
    sources = option_value(args, "--basic_auth", "--basic-auth")
    if "FLOWER_BASIC_AUTH" in environment(flower):
        sources.append(environment(flower)["FLOWER_BASIC_AUTH"])
    assert sources, "Flower must be given basic auth"
    for source in sources:
        match = VARIABLE.fullmatch(source)
        assert match, f"Flower's auth must be a ${{...}} reference, got {source!r}"
        # `:?` makes compose refuse to start rather than run Flower without a password.
        assert match["op"] == ":?", f"Flower's auth must be required (${{VAR:?...}}), got {source!r}"


def test_flower_never_opens_its_unauthenticated_api(services):
    flower = services["flower"]
    assert not any("unauthenticated" in arg.lower() for arg in command_args(flower))
    assert not any("UNAUTHENTICATED" in key.upper() for key in environment(flower))


def test_app_services_share_one_build_and_environment(services):
    web = services["web"]
    assert web.get("build"), "the app services are built from this repository"
    for name in APP_SERVICES[1:]:
        for key in ("build", "image", "env_file", "environment"):
            assert services[name].get(key) == web.get(key), f"{name}.{key} differs from web.{key}"
    assert services["migrate"].get("build") == web["build"]
    assert services["migrate"].get("environment") == web["environment"]


def test_app_urls_point_at_the_postgres_and_redis_services(services, traced_env):
    env = environment(services["web"])
    postgres_env = environment(services["postgres"])

    database = urlsplit(interpolate(env["DATABASE_URL"], traced_env))
    assert database.scheme in {"postgres", "postgresql"}
    assert database.hostname == "postgres" and "postgres" in services
    # Same variables on both sides, so the app and the server cannot disagree.
    assert database.username == interpolate(postgres_env["POSTGRES_USER"], traced_env)
    assert database.password == interpolate(postgres_env["POSTGRES_PASSWORD"], traced_env)
    assert database.path.lstrip("/") == interpolate(postgres_env["POSTGRES_DB"], traced_env)

    broker = urlsplit(interpolate(env["REDIS_URL"], traced_env))
    assert broker.scheme in {"redis", "rediss"}
    assert broker.hostname == "redis" and "redis" in services
    (requirepass,) = option_value(command_args(services["redis"]), "--requirepass")
    assert broker.password == interpolate(requirepass, traced_env)


def test_migrate_runs_before_web_worker_and_beat(services):
    migrate = services["migrate"]
    script = " ".join(command_args(migrate))
    assert "manage.py migrate" in script and "manage.py sync_schedules" in script
    assert migrate.get("restart", "no") == "no", "a one-shot job must not be restarted"
    for name in ("web", "worker", "beat"):
        depends_on = services[name]["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully", name
    for name in (*APP_SERVICES, "migrate"):
        depends_on = services[name]["depends_on"]
        assert depends_on["postgres"]["condition"] == "service_healthy", name
        assert depends_on["redis"]["condition"] == "service_healthy", name


def test_postgres_and_redis_report_health_and_keep_data(services):
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"], name
        assert services[name].get("volumes"), name
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert option_value(command_args(services["redis"]), "--requirepass")


def test_published_ports_bind_to_loopback(services, env_example):
    values = {name: value for name, (is_set, value) in env_example.items() if is_set}
    published = 0
    for name, service in services.items():
        for port in service.get("ports", []):
            published += 1
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", name
            else:
                assert interpolate(str(port), values).startswith("127.0.0.1:"), f"{name}: {port}"
    assert published, "web and Flower publish a port"


def test_it_holds_no_literal_secret(compose, traced_env):
    for key, value in walk(compose):
        if SECRET_NAME.search(key):
            assert reference_name(value), f"{key} must come from .env as ${{...}}, got a literal"
    for service in compose["services"].values():
        args = command_args(service)
        for value in option_value(args, "--requirepass", "--basic_auth", "--basic-auth"):
            assert reference_name(value), f"a command passes a literal secret: {value!r}"
        for value in [*args, *environment(service).values()]:
            for url in re.findall(r"[a-z+]+://\S+", value):
                password = urlsplit(interpolate(url, traced_env)).password
                assert password is None or password.startswith("from-env-"), f"literal password in {url}"


def test_every_compose_variable_is_documented_in_env_example(compose, env_example):
    used = {match["name"] for _, value in walk(compose) for match in VARIABLE.finditer(value)}
    assert used, "the compose file takes its configuration from variables"
    assert used - env_example.keys() == set()


def test_env_example_sets_every_variable_compose_requires(compose, env_example):
    required = {
        match["name"] for _, value in walk(compose) for match in VARIABLE.finditer(value) if match["op"] in {":?", "?"}
    }
    assert {"POSTGRES_PASSWORD", "REDIS_PASSWORD", "FLOWER_BASIC_AUTH"} <= required
    for name in required:
        is_set, value = env_example[name]
        assert is_set and value, f"{name} is required by compose: give it a placeholder in .env.example"


def test_every_setting_read_from_the_environment_is_documented(env_example):
    read = set(SETTINGS_ENV_READ.findall(SETTINGS_FILE.read_text()))
    assert {"DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY"} <= read
    assert read - env_example.keys() == set()
