"""The analyst's page in a real browser: headless Chromium (Debian's `chromium`, installed by .ci/run).

The page that `ratecard diff --format html` writes is opened from a file, and the page `ratecard
serve` gives at /v1/diff is opened from the real server on loopback (the browser sending the token
as HTTP Basic credentials, as it does when a person types it in); any other address goes to a
closed proxy port. The DOM Chromium builds must hold every chart with its curves and cliff marks,
and a screenshot must be drawn.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from ratecard.cli import main

from conftest import ROOT
from serving import READ_TOKEN, USAGE, server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
SHIPPED = ROOT / "rules" / "face-recognition"


def chromium(tmp_path, *args) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
                           f"--user-data-dir={profile}",
                           "--proxy-server=127.0.0.1:9",  # anything but loopback goes to a closed port
                           *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("page")
    new = tmp / "face-recognition"
    shutil.copytree(SHIPPED, new)
    pricing = new / "pricing.yaml"
    pricing.write_text(pricing.read_text("utf-8").replace("up_to: 3000000", "up_to: 2500000"), encoding="utf-8")
    usage = tmp / "usage.csv"
    usage.write_text(USAGE, encoding="utf-8")
    out = tmp / "impact.html"
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["diff", "--base", str(SHIPPED), "--rules", str(new), "--usage", str(usage), "--format", "html"]) == 0
    out.write_text(buffer.getvalue(), encoding="utf-8")
    return out


def test_chromium_builds_every_chart(page, tmp_path):
    done = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert dom.count("<svg") == 9  # revenue per category, accounts, one cost curve for each of 7 categories
    assert len(re.findall(r'<polyline class="series"', dom)) == 14  # base and new curve in each
    assert len(re.findall(r'<g class="cliff">', dom)) >= 14
    assert len(re.findall(r'<rect class="bar"', dom)) == 2 * 2 + 2  # 2 categories used × base, new; 2 accounts
    assert "Tier crossings" in dom and "Face search" in dom


def test_chromium_draws_the_page(page, tmp_path):
    shot = tmp_path / "impact.png"
    done = chromium(tmp_path, "--hide-scrollbars", "--window-size=1100,2400", f"--screenshot={shot}", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1100, 2400)
    assert len(data) > 50_000  # text and charts, not a blank page


def test_chromium_opens_the_page_from_the_real_server(page, tmp_path):
    import os

    folder = page.parent / "served" / "face-recognition-next"
    shutil.copytree(page.parent / "face-recognition", folder)
    env = dict(os.environ, RATECARD_TOKENS=f"read:{READ_TOKEN}")
    with server(["--rules", SHIPPED, "--rules", folder, "--usage", page.parent / "usage.csv"], env=env) as (base, _):
        url = base.replace("http://", f"http://analyst:{READ_TOKEN}@") + \
            "/v1/diff?base=face-recognition&rules=face-recognition-next"
        done = chromium(tmp_path, "--dump-dom", url)
        refused = chromium(tmp_path / "no-token", "--dump-dom", base + "/v1/diff?base=face-recognition")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("<svg") == 9 and len(re.findall(r'<polyline class="series"', done.stdout)) == 14
    # Without the token the browser gets only the challenge (a person would be asked for the token).
    assert "<svg" not in refused.stdout
    assert "ERR_INVALID_AUTH_CREDENTIALS" in refused.stderr or "unauthorized" in refused.stdout
