"""The shipped Prometheus rules and scrape config are valid, and the rules fire when they should.

promtool comes with Debian's ``prometheus`` package (.ci/run installs it); without it these are skipped
with the reason, and fail under ``FINANCEHUB_REQUIRE_SERVICES=1`` (CI).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.services import unavailable

REPO_DIR = Path(__file__).resolve().parents[3]
DEPLOY = REPO_DIR / "deploy" / "prometheus"


def promtool(*args: str, cwd: Path = REPO_DIR) -> subprocess.CompletedProcess[str]:
    path = shutil.which("promtool")
    if path is None:
        unavailable("needs promtool: not on PATH (apt-get install prometheus; .ci/run does)")
    return subprocess.run([path, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_alert_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", str(DEPLOY / "alerts.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 7 rules found" in result.stdout


def test_alert_rules_fire_as_the_promtool_unit_tests_expect() -> None:
    result = promtool("test", "rules", "alerts_test.yml", cwd=REPO_DIR / "tests" / "prometheus")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_scrape_config_is_valid(tmp_path: Path) -> None:
    # The example reads the token from /etc/prometheus; check a copy pointing at a scratch token file.
    token = tmp_path / "token"
    token.write_text("scrape-token")
    config = (DEPLOY / "prometheus.yml").read_text().replace("/etc/prometheus/financehub_metrics_token", str(token))
    assert str(token) in config
    (tmp_path / "prometheus.yml").write_text(config)
    shutil.copy(DEPLOY / "alerts.yml", tmp_path / "alerts.yml")
    result = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


ALERTS = (
    "FinanceHubStaleAssets",
    "FinanceHubDeadLettersRising",
    "FinanceHubBreakerOpen",
    "FinanceHubBeatSilent",
    "FinanceHubQueueWaitHigh",
    "FinanceHubNoWorkerForQueue",
)


@pytest.mark.parametrize("alert", ALERTS)
def test_every_alert_is_documented(alert: str) -> None:
    assert alert in (REPO_DIR / "docs" / "OPERATIONS.md").read_text()
