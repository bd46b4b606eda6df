"""The service binds loopback by default and refuses an address other machines reach without API keys."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from recommender.config import ApiSettings, public_without_keys
from tests.conftest import ROOT

OPEN = ApiSettings(api_keys=())
GUARDED = ApiSettings(api_keys=("k1",))
ALLOWED = ApiSettings(api_keys=(), allow_public_without_keys=True)
REFUSAL = ("is reachable from other machines but API_KEYS is empty: set API_KEYS, or bind 127.0.0.1 (the default), "
           "or set ALLOW_PUBLIC_WITHOUT_KEYS=true if something in front checks clients")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_needs_no_key(host: str):
    assert public_without_keys(host, OPEN) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "api.example.com"])
def test_a_public_address_needs_a_key(host: str):
    assert public_without_keys(host, OPEN) == f"HOST={host} {REFUSAL}"
    assert public_without_keys(host, OPEN, shown=f"--bind {host}:80") == f"--bind {host}:80 {REFUSAL}"
    assert public_without_keys(host, GUARDED) is None
    assert public_without_keys(host, ALLOWED) is None


def test_the_default_bind_address_is_loopback():
    assert ApiSettings().host == "127.0.0.1"
    assert "HOST ?= 127.0.0.1" in (ROOT / "Makefile").read_text()


def check(host: str, keys: str, allow: str = "") -> subprocess.CompletedProcess:
    """What ``make serve`` runs before gunicorn."""
    env = {**os.environ, "API_KEYS": keys, "ALLOW_PUBLIC_WITHOUT_KEYS": allow}
    env.pop("HOST", None)
    return subprocess.run([sys.executable, "run_server.py", "--check", "--host", host],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_the_check_refuses_with_one_error_line_and_exit_2():
    refused = check("0.0.0.0", "")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [f"error: HOST=0.0.0.0 {REFUSAL}"]
    assert check("0.0.0.0", "k1").returncode == 0
    assert check("0.0.0.0", "", allow="true").returncode == 0
    assert check("127.0.0.1", "").returncode == 0
