"""Helpers for the `ratecard serve` tests: tokens, a ledger with a suspended and an active account, the app."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

from conftest import ROOT

READ_TOKEN = "read-token-0123456789abcdef"
WRITE_TOKEN = "write-token-0123456789abcdef"
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
WRITE = {"Authorization": f"Bearer {WRITE_TOKEN}"}
CST = timezone(timedelta(hours=8))

USAGE = """\
account,period,api,calls,outcome
acme,2020-09,SearchFaces,3000000,success
globex,2020-09,SearchFaces,3000001,success
globex,2020-09,DetectFace,1000,success
"""


def tokens():
    from ratecard.http.auth import Tokens

    return Tokens.parse([(1, f"read:{READ_TOKEN}"), (2, f"write:{WRITE_TOKEN}")], "test tokens")


def copy_rules(tmp_path: Path, name: str = "face-recognition") -> Path:
    target = tmp_path / "rules" / name
    shutil.copytree(ROOT / "rules" / name, target)
    return target


def make_ledger(tmp_path: Path, rules_dir: Path) -> Path:
    """acme: 1,000 USD topped up, then a 2,400 bill for 2020-09 → suspended in arrears.
    globex: 5,000 USD, its 1,800.50 bill paid → active. Both settled on 2020-10-02 (in the window)."""
    import ratecard
    from ratecard.ledger import Ledger
    from ratecard.usage import UsageReader

    db = tmp_path / "ledger.db"
    usage = tmp_path / "usage.csv"
    usage.write_text(USAGE, encoding="utf-8")
    rules = ratecard.load_rules(rules_dir)
    start = datetime(2020, 9, 1, tzinfo=CST)
    with Ledger(db, create=True) as ledger:
        for account, amount in (("acme", "1000"), ("globex", "5000")):
            ledger.create_account(account, account.title(), "USD", start)
            ledger.activate(account, rules.name, "2020-09", start)
            ledger.top_up(account, amount, start + timedelta(days=1))
        reader = UsageReader(rules, period="2020-09").read(usage)
        ledger.settle(rules, reader.accounts(), "2020-09", datetime(2020, 10, 2, 9, tzinfo=CST))
    return db


def make_app(tmp_path: Path, *, db: Path | None = None, rules=None, **options):
    from ratecard.http.app import ServeOptions, build_server, create_app

    rules = rules or (ROOT / "rules" / "face-recognition", ROOT / "rules" / "face-recognition-cn")
    opts = ServeOptions(rules=tuple(rules), db=db, tokens=tokens(), **options)
    return create_app(build_server(opts))


def client(app):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    return TestClient(app, raise_server_exceptions=False)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(args, env=None, timeout: float = 30.0):
    """Start `ratecard serve ARGS` on a free port; yield its base URL; stop it however the test ends."""
    import httpx

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ratecard", "serve", "--port", str(port), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"the server exited with {proc.returncode}: {proc.stderr.read().decode()}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("the server did not answer /health in time")
            time.sleep(0.1)
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
