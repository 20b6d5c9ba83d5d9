"""The real server: `ratecard serve` started as a process on a free loopback port, and stopped, by the test."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

from conftest import ROOT  # noqa: E402
from serving import READ, READ_TOKEN, WRITE_TOKEN, copy_rules, free_port, make_ledger, server  # noqa: E402


def test_the_real_server_answers_on_loopback(tmp_path):
    rules = copy_rules(tmp_path)
    db = make_ledger(tmp_path, rules)
    tokens = tmp_path / "tokens"
    tokens.write_text(f"read:{READ_TOKEN}\nwrite:{WRITE_TOKEN}\n", encoding="utf-8")
    with server(["--rules", rules, "--db", db, "--tokens", tokens]) as (base, proc):
        r = httpx.get(f"{base}/v1/accounts/acme/status", headers=READ)
        assert r.status_code == 200 and r.json()["state"] == "suspended"
        assert httpx.get(f"{base}/v1/accounts/acme/status").status_code == 401
        quote = httpx.post(f"{base}/v1/quote", json={"usage": {"SearchFaces": 3000001}, "period": "2020-09"},
                           headers=READ)
        cli = subprocess.run([sys.executable, "-m", "ratecard", "quote", "SearchFaces=3000001", "--period", "2020-09",
                              "--format", "json", "--rules", str(rules)], capture_output=True, check=True)
        assert quote.content == cli.stdout
        assert "server" not in {k.lower() for k in quote.headers}  # no banner
        page = httpx.get(f"{base}/v1/rule-sets/face-recognition/ratecard", headers=READ)
        assert page.status_code == 200 and "<svg" not in page.text and "Face search" in page.text
        # The process binds the loopback address only.
        assert proc.poll() is None
    assert proc.returncode is not None  # stopped


def test_the_server_does_not_start_without_tokens_or_with_bad_rules(tmp_path):
    env = {k: v for k, v in __import__("os").environ.items() if k != "RATECARD_TOKENS"}
    done = subprocess.run([sys.executable, "-m", "ratecard", "serve", "--port", str(free_port())],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1 and "RATECARD_TOKENS" in done.stderr and "Traceback" not in done.stderr
    broken = copy_rules(tmp_path)
    (broken / "pricing.yaml").write_text("kind: pricing\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "ratecard", "serve", "--port", str(free_port()), "--rules", str(broken)],
                          capture_output=True, text=True, env=env | {"RATECARD_TOKENS": f"read:{READ_TOKEN}"},
                          timeout=60)
    assert done.returncode == 1 and "pricing.yaml:1:1: error:" in done.stderr and "Traceback" not in done.stderr


def test_two_worker_processes_serve_the_same_answers(tmp_path):
    rules = copy_rules(tmp_path)
    db = make_ledger(tmp_path, rules)
    env = dict(__import__("os").environ, RATECARD_TOKENS=f"read:{READ_TOKEN}")
    with server(["--rules", rules, "--db", db, "--workers", "2"], env=env) as (base, _):
        answers = {httpx.get(f"{base}/v1/accounts/globex/status", headers=READ).text for _ in range(20)}
        assert len(answers) == 1 and json.loads(answers.pop())["state"] == "active"
