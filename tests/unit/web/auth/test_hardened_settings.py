"""Issue 25: settings that refuse the dangerous (token strength, trusted proxies, ceilings)."""

import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from webhook_server.core.settings import Settings, SettingsError
from webhook_server.core.tokens import token_bits, token_weakness

STRONG = secrets.token_urlsafe(32)
ROOT = str(Path(__file__).resolve().parents[4])  # this checkout's code, not an install


@pytest.mark.parametrize("token,why", [
    ("x9Q", "3 characters"),
    ("tok-ci-1234", "11 characters"),
    ("a" * 40, "only 1 distinct characters"),
    ("01234567" * 4, "about 106 bits"),  # 32 digits: 32 x log2(10)
])
def test_a_weak_token_is_a_refusal_naming_only_its_name(token, why):
    (reason,) = Settings.from_env({"PODIUM_API_TOKENS": f"ci={token}"}).refusals()
    assert reason.startswith(f"the API token named 'ci' is too weak ({why}): use at least 32 "
                             "characters and 128 bits")
    assert token not in reason


def test_strong_tokens_pass_and_the_estimate_is_length_times_log2_of_the_alphabet():
    assert Settings.from_env({"PODIUM_API_TOKENS": f"ci={STRONG}",
                              "PODIUM_API_TOKEN": secrets.token_hex(16),
                              "PODIUM_METRICS_TOKEN": secrets.token_hex(20)}).refusals() == []
    assert token_bits("abcdefgh" * 4) == pytest.approx(32 * 4.7004, abs=0.01)   # 26
    assert token_bits("aB3-" * 8) == pytest.approx(32 * 6.5546, abs=0.01)       # 26+26+10+32
    assert token_weakness(secrets.token_hex(16)) is None  # 32 hex: ~165 bits


def test_a_weak_metrics_token_is_a_refusal():
    (reason,) = Settings(metrics_token="metrics").refusals()
    assert reason.startswith("PODIUM_METRICS_TOKEN is too weak (7 characters)")


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_serve_and_worker_stop_at_start_on_a_weak_token_in_one_line(tmp_path, command):
    (tmp_path / "podium.yaml").write_text("{}\n")
    proc = subprocess.run([sys.executable, "-m", "webhook_server.cli", command],
                          env={"PODIUM_DATABASE_URL": f"sqlite:///{tmp_path}/p.db",
                               "PODIUM_MLFLOW_WEBHOOK_SECRET": "s", "PATH": "",
                               "PYTHONPATH": ROOT, "PODIUM_LOG_FORMAT": "text",
                               "PODIUM_API_TOKENS": f"release={STRONG},ci=a"},
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"podium {command}: refusing to start: the API token named 'ci' is too weak "
        "(1 characters): use at least 32 characters and 128 bits, e.g. python -c 'import "
        "secrets; print(secrets.token_urlsafe(32))'"]


@pytest.mark.parametrize("entry,count", [("0.0.0.0/0", 4294967296), ("10.0.0.0/23", 512),
                                         ("::/0", 2 ** 128), ("fd00::/64", 2 ** 64),
                                         ("fd00::/119", 512)])
def test_a_trusted_proxy_range_wider_than_256_addresses_is_refused(entry, count):
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"PODIUM_UI_TRUSTED_PROXIES": f"10.0.0.5, {entry}"})
    assert str(err.value) == (
        f"PODIUM_UI_TRUSTED_PROXIES: {entry!r} covers {count} addresses, more than 256 (/24 "
        "for IPv4, /120 for IPv6): anyone in it could name any person in the single-sign-on "
        "header; list your proxies' own addresses")


def test_a_trusted_proxy_range_of_256_addresses_or_fewer_is_accepted():
    s = Settings.from_env({"PODIUM_UI_TRUSTED_PROXIES": "10.0.0.0/24, fd00::/120, 192.0.2.9"})
    assert [n.num_addresses for n in s.ui_proxies()] == [256, 256, 1]


@pytest.mark.parametrize("env,value,message", [
    ("PODIUM_UI_SESSION_HOURS", "1e308", "expected > 0 and <= 720"),
    ("PODIUM_UI_SESSION_HOURS", "721", "expected > 0 and <= 720"),
    ("PODIUM_UI_SESSION_HOURS", "inf", "is not a finite number"),
    ("PODIUM_UI_SESSION_HOURS", "nan", "is not a finite number"),
    ("PODIUM_MAX_BODY_BYTES", str(2 ** 40), "expected >= 1024 and <= 268435456"),
    ("PODIUM_JOB_LEASE", "86401", "expected >= 5 and <= 86400"),
    ("PODIUM_LEADER_LEASE", "99999999", "expected >= 5 and <= 86400"),
    ("PODIUM_JOB_MAX_ATTEMPTS", "1001", "expected >= 1 and <= 1000"),
    ("PODIUM_JOB_BACKOFF", "1e300", "expected > 0 and <= 86400"),
    ("PODIUM_WORKER_POLL", "3601", "expected > 0 and <= 3600"),
    ("PODIUM_NOTIFY_MAX_BACKOFF", "1e20", "expected > 0 and <= 86400"),
    ("PODIUM_SANDBOX_SPARES", "65", "expected >= 0 and <= 64"),
])
def test_hours_sizes_and_counts_have_ceilings(env, value, message):
    with pytest.raises(SettingsError) as err:
        Settings.from_env({env: value})
    assert str(err.value) == f"{env}={value!r} is out of range: {message}" or \
        str(err.value) == f"{env}={value!r} {message}"


def test_a_session_of_720_hours_is_accepted():
    assert Settings.from_env({"PODIUM_UI_SESSION_HOURS": "720"}).ui_session_hours == 720


@pytest.mark.parametrize("env", ["PODIUM_AUTH_LIMIT_PER_ADDRESS", "PODIUM_AUTH_LIMIT_TOTAL"])
def test_a_rate_limit_that_does_not_parse_is_refused(env):
    with pytest.raises(SettingsError, match=f"{env}='lots' is not a rate limit"):
        Settings.from_env({env: "lots"})
