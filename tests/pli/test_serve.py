"""`pli serve`: prints where each front listens, logs JSON lines, stops on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import httpx

from tests.support.cli import Pli


def start(pli: Pli) -> tuple[subprocess.Popen[str], dict[str, str]]:
    env = pli.env() | {"PLI_HTTP_PORT": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pli", "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    fronts: dict[str, str] = {}
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line or line.startswith("ready"):
            break
        name, where = line.split()
        fronts[name] = where
    return proc, fronts


def test_serve_prints_its_fronts_and_stops_cleanly_on_sigterm(pli: Pli):
    proc, fronts = start(pli)
    try:
        assert fronts["http"].startswith("http://127.0.0.1:")
        response = httpx.get(f"{fronts['http']}/healthz", timeout=10)
        assert response.json() == {"status": "ok"}
        missing = httpx.get(f"{fronts['http']}/nope", timeout=10)
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    entries = [json.loads(line) for line in err.splitlines() if line.strip()]
    messages = [e["msg"] for e in entries]
    assert "stopped" in messages
    assert any(e.get("front") == "http" for e in entries)


def test_serve_refuses_unsafe_settings_outside_demo_mode(tmp_path):
    pli = Pli(home=tmp_path / "prod", database_url=f"sqlite+aiosqlite:///{tmp_path}/p.db")
    pli.run("init", "--domain", "pli.test")
    result = pli.run("serve", check=False)  # FAST_KDF limits are unsafe outside demo
    assert result.returncode == 1
    assert "unsafe settings" in result.stderr
