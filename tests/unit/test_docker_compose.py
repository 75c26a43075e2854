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

from backend.stack.commands import APP

REPO_DIR = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_DIR / "docker-compose.yml"
ENV_EXAMPLE = REPO_DIR / ".env.example"
# One module per section; every environment read of the settings is in one of them.
SETTINGS_DIR = REPO_DIR / "backend" / "core" / "settings"

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
        assert target == APP, name
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
    sections = sorted(SETTINGS_DIR.glob("*.py"))
    assert {path.stem for path in sections} >= {"django", "celery", "market", "providers", "monitoring"}
    read = {name for path in sections for name in SETTINGS_ENV_READ.findall(path.read_text())}
    assert {"DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY", "MARKET_DATA_MODE", "METRICS_TOKEN"} <= read
    assert read - env_example.keys() == set()


# --- production web server, healthchecks, restart policies, first admin -----------------------------
LONG_RUNNING = ("postgres", "redis", *APP_SERVICES)
DOCKERFILE = REPO_DIR / "Dockerfile"
BASE_REQUIREMENTS = REPO_DIR / "requirements" / "base.txt"


def healthcheck_args(service: dict[str, Any]) -> list[str]:
    """The healthcheck's command as arguments (a CMD-SHELL string split like a shell would)."""
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        return shlex.split(test)
    kind, *rest = test
    assert kind in {"CMD", "CMD-SHELL"}, test
    return shlex.split(rest[0]) if kind == "CMD-SHELL" else [str(arg) for arg in rest]


def test_web_is_served_by_gunicorn_not_runserver(services):
    args = command_args(services["web"])
    assert args[0] == "gunicorn"
    module, _, attribute = args[1].partition(":")
    assert f"{module}:{attribute}" == "backend.stack.wsgi:application"
    assert f"{module}.{attribute}" == settings.WSGI_APPLICATION
    (bind,) = option_value(args, "--bind", "-b")
    assert bind == "0.0.0.0:8000", "gunicorn listens on the port compose publishes"
    assert any(str(port).endswith(":8000") for port in services["web"]["ports"])
    for name, service in services.items():
        assert "runserver" not in command_args(service), f"{name} runs Django's development server"


def dockerfile_instructions() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    instructions: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            instructions.append(pending.strip())
            pending = ""
    return instructions


def test_the_image_runs_gunicorn_and_collects_static_files_at_build():
    instructions = dockerfile_instructions()
    (collect,) = [i for i in instructions if i.startswith("RUN ") and "collectstatic --noinput" in i]
    # Build-time settings must not generate a secret (or the filesystem broker's folders) into a layer.
    assert "DJANGO_SECRET_KEY=" in collect and "REDIS_URL=" in collect
    assert any(i.startswith("ENV ") and "DJANGO_STATIC_ROOT=" in i for i in instructions)
    (cmd,) = [i for i in instructions if i.startswith("CMD ")]
    assert "gunicorn" in cmd and "runserver" not in cmd


def test_gunicorn_and_whitenoise_are_pinned_and_whitenoise_serves_static_files():
    pins = dict(
        line.split("==", 1) for line in BASE_REQUIREMENTS.read_text().splitlines() if "==" in line and line[0] != "#"
    )
    assert pins.get("gunicorn") and pins.get("whitenoise")
    middleware = settings.MIDDLEWARE
    # Right after SecurityMiddleware, as WhiteNoise requires, so no session or auth work runs for a file.
    assert middleware.index("whitenoise.middleware.WhiteNoiseMiddleware") == 1
    assert middleware[0] == "django.middleware.security.SecurityMiddleware"
    assert settings.STATIC_ROOT
    assert settings.STORAGES["staticfiles"]["BACKEND"].startswith("whitenoise.")


def test_every_long_running_service_has_a_healthcheck_and_a_restart_policy(services):
    for name in LONG_RUNNING:
        service = services[name]
        assert healthcheck_args(service), f"{name} has no healthcheck"
        assert service.get("restart") in {"always", "unless-stopped", "on-failure"}, name
        for key in ("interval", "timeout", "retries"):
            assert service["healthcheck"].get(key), f"{name}.healthcheck.{key}"


def test_web_healthcheck_asks_health_live_on_gunicorn(services):
    from django.urls import resolve

    from backend.monitoring.views import health_live

    args = healthcheck_args(services["web"])
    assert args[:3] == ["python", "-m", "backend.monitoring.probe"]
    assert importlib.util.find_spec("backend.monitoring.probe") is not None
    url = urlsplit(args[3])
    (bind,) = option_value(command_args(services["web"]), "--bind", "-b")
    assert url.hostname == "127.0.0.1" and url.port == int(bind.rsplit(":", 1)[1])
    assert url.path == "/health/live"
    assert resolve(url.path).func is health_live


def test_worker_healthcheck_pings_its_own_node(services, traced_env):
    worker_args = command_args(services["worker"])
    (hostname,) = option_value(worker_args, "--hostname", "-n")
    args = [interpolate(arg, traced_env) for arg in healthcheck_args(services["worker"])]
    assert args[0] == "celery" and option_value(args, "-A", "--app") == [APP]
    assert args[args.index("-A") + 2 : args.index("-A") + 4] == ["inspect", "ping"]
    (destination,) = option_value(args, "-d", "--destination")
    # %h is the container's hostname for celery; the healthcheck's shell spells it $HOSTNAME.
    assert destination in {hostname.replace("%h", "${HOSTNAME}"), hostname.replace("%h", "$HOSTNAME")}
    assert services["worker"]["healthcheck"]["test"][0] == "CMD-SHELL", "$HOSTNAME needs a shell"


def test_beat_healthcheck_checks_the_heartbeat_age(services):
    from backend.tasks.schedules import SCHEDULES

    args = healthcheck_args(services["beat"])
    assert args[:3] == ["python", "backend/manage.py", "beat_alive"]
    (max_age,) = option_value(args, "--max-age")
    heartbeat = next(entry for entry in SCHEDULES if entry.task == "maintenance.heartbeat")
    # Stale only after several missed heartbeats, never between two of them.
    assert float(max_age) >= 2 * heartbeat.every_seconds
    assert importlib.util.find_spec("backend.monitoring.management.commands.beat_alive") is not None


def test_flower_healthcheck_needs_no_credentials(services):
    args = healthcheck_args(services["flower"])
    assert args[:3] == ["python", "-m", "backend.monitoring.probe"]
    assert urlsplit(args[3]).path == "/healthcheck"
    assert not any("FLOWER_BASIC_AUTH" in arg for arg in args)


def test_migrate_creates_the_first_admin_after_the_schema(services):
    script = " ".join(command_args(services["migrate"]))
    assert "manage.py ensure_superuser" in script
    assert script.index("manage.py migrate") < script.index("manage.py ensure_superuser")
    assert importlib.util.find_spec("backend.core.management.commands.ensure_superuser") is not None


def test_the_stack_is_served_over_https_behind_a_tls_proxy_unless_told_otherwise(services, env_example):
    reference = VARIABLE.fullmatch(environment(services["web"])["DJANGO_BEHIND_TLS_PROXY"])
    assert reference and reference["op"] == ":-" and reference["arg"] == "true"
    assert env_example["DJANGO_BEHIND_TLS_PROXY"] == (True, "true")
    assert env_example["DJANGO_HSTS_SECONDS"] == (True, "0")  # off until asked


# --- docker-compose.rabbitmq.yml: the same stack with RabbitMQ as the broker ----------------------

RABBITMQ_FILE = REPO_DIR / "docker-compose.rabbitmq.yml"


@pytest.fixture(scope="module")
def rabbitmq_override() -> dict[str, Any]:
    return yaml.safe_load(RABBITMQ_FILE.read_text())


def app_services(services: dict[str, dict[str, Any]]) -> list[str]:
    """Every service built from this repository (the ones that talk to the broker)."""
    return [name for name, service in services.items() if service.get("build")]


def test_the_rabbitmq_override_moves_every_app_service_and_only_those_to_rabbitmq(
    services, rabbitmq_override, traced_env
):
    over = rabbitmq_override["services"]
    assert set(over) == {"rabbitmq", *app_services(services)}
    rabbit = environment(over["rabbitmq"])
    for name in app_services(services):
        # compose merges an override's environment into the base file's, key by key.
        env = {**environment(services[name]), **environment(over[name])}
        broker = urlsplit(interpolate(env["CELERY_BROKER_URL"], traced_env))
        assert broker.scheme == "amqp" and broker.hostname == "rabbitmq", name
        assert broker.username == interpolate(rabbit["RABBITMQ_DEFAULT_USER"], traced_env), name
        assert broker.password == interpolate(rabbit["RABBITMQ_DEFAULT_PASS"], traced_env), name
        assert broker.path.lstrip("/") == rabbit["RABBITMQ_DEFAULT_VHOST"], name
        # Redis stays the store of quotas, breakers, pauses and liveness.
        assert urlsplit(interpolate(env["REDIS_URL"], traced_env)).hostname == "redis", name
        assert over[name]["depends_on"]["rabbitmq"]["condition"] == "service_healthy", name


def test_rabbitmq_keeps_its_queues_reports_health_and_publishes_only_its_ui_on_loopback(rabbitmq_override, env_example):
    rabbitmq = rabbitmq_override["services"]["rabbitmq"]
    assert "management" in rabbitmq["image"]
    assert rabbitmq["volumes"] and rabbitmq["volumes"][0].endswith(":/var/lib/rabbitmq")
    assert rabbitmq["restart"] == "unless-stopped" and rabbitmq["healthcheck"]["test"]
    values = {name: value for name, (is_set, value) in env_example.items() if is_set}
    (port,) = [interpolate(str(p), values) for p in rabbitmq["ports"]]
    assert port.startswith("127.0.0.1:") and port.endswith(":15672"), "only the management UI, on loopback"


def test_the_broker_and_the_app_read_one_consumer_timeout(services, rabbitmq_override):
    over = rabbitmq_override["services"]
    erl_args = environment(over["rabbitmq"])["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"]
    broker_ms = int(interpolate(erl_args, {}).split("consumer_timeout", 1)[1].split()[0])
    for name in app_services(services):
        app_seconds = int(interpolate(environment(over[name])["RABBITMQ_CONSUMER_TIMEOUT"], {}))
        assert app_seconds * 1000 == broker_ms, name
    assert settings.RABBITMQ_CONSUMER_TIMEOUT * 1000 == broker_ms  # RabbitMQ's own default, 30 min


def test_the_rabbitmq_override_holds_no_literal_secret_and_documents_every_variable(
    rabbitmq_override, env_example, traced_env
):
    test_it_holds_no_literal_secret(rabbitmq_override, traced_env)
    test_every_compose_variable_is_documented_in_env_example(rabbitmq_override, env_example)
    assert env_example["RABBITMQ_PASSWORD"][1] == "change-me"


def test_the_rabbitmq_override_says_how_to_switch_an_existing_deployment():
    header = RABBITMQ_FILE.read_text().split("\nx-on-rabbitmq", 1)[0]
    assert "-f docker-compose.rabbitmq.yml" in header
    # Queues declared without x-max-priority refuse the new declaration until deleted.
    assert "x-max-priority" in header and "PRECONDITION_FAILED" in header and "delete" in header
