"""A private RabbitMQ node for the chaos suite: started, stopped and restarted on purpose.

It runs from the machine's RabbitMQ install (Debian's ``/usr/lib/rabbitmq/bin``) with a node name,
ports, data directory, config and Erlang cookie of its own under the session's temporary directory,
so a scenario can stop it without touching the machine's node (5672) that other tests use.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

from tests.fixtures.brokers import amqp_answers, rabbitmqctl

from .services import free_port, wait_until

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")


def rabbitmq_program(name: str) -> str:
    """Path of a RabbitMQ program, preferring the unwrapped one (Debian's /usr/sbin wrapper switches user)."""
    direct = RABBITMQ_BIN / name
    if direct.exists():
        return str(direct)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"RabbitMQ's {name} not found under {RABBITMQ_BIN} nor on PATH")
    return found


class RabbitNode:
    """One RabbitMQ node on free loopback ports; its queues and messages survive a restart (same data dir)."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "rabbitmq"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.dist_port = free_port()
        self.node = f"fh_chaos_{uuid.uuid4().hex[:8]}@localhost"
        self.process: subprocess.Popen[bytes] | None = None
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\nloopback_users = none\n"
        )
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq-env.conf").write_text("")

    @property
    def url(self) -> str:
        """AMQP URL of the node's default vhost (the scenarios use vhosts of their own beside it)."""
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def env(self) -> dict[str, str]:
        """Environment of the node and of rabbitmqctl talking to it: its own names, ports, files, cookie."""
        return {
            **os.environ,
            "HOME": str(self.dir),  # the Erlang cookie: created here on first start, read by rabbitmqctl
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(self.dir / "plugins-expand"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def start(self) -> None:
        """Start the node (again, on the same ports and data) and wait until it serves AMQP."""
        log = (self.dir / "server.out").open("ab")
        self.process = subprocess.Popen(
            [rabbitmq_program("rabbitmq-server")],
            env=self.env(),
            cwd=self.dir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        wait_until(lambda: self.process.poll() is None and amqp_answers(self.url), 90, "RabbitMQ did not listen")
        self.ctl("await_startup", "--timeout", "60")

    def ctl(self, *args: str) -> str:
        """``rabbitmqctl`` against this node (the unwrapped program: the wrapper would change HOME, so the cookie)."""
        return rabbitmqctl(*args, node=self.node, env=self.env(), program=rabbitmq_program("rabbitmqctl"))

    def answers(self) -> bool:
        """Whether the node runs and serves AMQP."""
        return self.process is not None and self.process.poll() is None and amqp_answers(self.url)

    def stop(self) -> None:
        """Shut the node down cleanly (messages on disk stay for the restart)."""
        if self.process is None or self.process.poll() is not None:
            self.process = None
            return
        try:
            self.ctl("shutdown")
        except (RuntimeError, subprocess.TimeoutExpired):
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None
