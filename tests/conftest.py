"""Shared fixtures: the shipped rule set, and rule sets written by the tests themselves."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "rules" / "face-recognition"

# A small rule set the engine has never seen: its own categories, APIs, currency and policy.
# Tests copy it and change one thing at a time.
TOY_PRICING = """\
kind: pricing
effective_from: 2024-01-01
currency: EUR
unit: request
tier_mode: volume
categories:
  widgets:
    name: Widget rendering
    tiers:
      - { up_to: 100, unit_price: 0.10 }
      - { up_to: 1000, unit_price: 0.05 }
      - { unit_price: 0.01 }
  gadgets:
    name: Gadget lookups
    tiers:
      - { up_to: 10, unit_price: 1.5 }
      - { unit_price: 1.25 }
"""

TOY_APIS = """\
kind: api-mapping
effective_from: 2024-01-01
api_version: "v9"
billable_outcomes:
  success: true
  error_codes: [Quota.Partial]
unknown_outcome: billable
unknown_api: error
categories:
  widgets:
    billable: [RenderWidget, RenderWidgetBatch]
    free: [ListWidgets]
  gadgets:
    billable: [LookupGadget]
"""

TOY_SETTLEMENT = """\
kind: settlement
effective_from: 2024-01-01
billing_cycle: calendar-month
time_zone: Europe/Berlin
bill_issue_day: 2
deduction_window: { first_day: 5, last_day: 9 }
rounding: { quantum: 0.01, mode: half-even, apply: per-line }
arrears: { action: suspend-service, resume_when: balance-not-negative }
"""


def write_rule_set(directory: Path, pricing: str = TOY_PRICING, apis: str = TOY_APIS,
                   settlement: str = TOY_SETTLEMENT, **extra: str) -> Path:
    """Write a rule set folder; `extra` adds more files (name without .yaml → text)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {"pricing": pricing, "apis": apis, "settlement": settlement, **extra}
    for name, text in files.items():
        if text is not None:
            (directory / f"{name}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return directory


@pytest.fixture
def toy_rules_dir(tmp_path) -> Path:
    return write_rule_set(tmp_path / "toy")


@pytest.fixture(scope="session")
def shipped_rules():
    import ratecard

    return ratecard.load_rules(SHIPPED)


# -- snapshots: one readable file per snapshot, with its own extension ------------------------------

from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode  # noqa: E402


class _TextSnapshot(SingleFileSnapshotExtension):
    _write_mode = WriteMode.TEXT


class TxtSnapshot(_TextSnapshot):
    file_extension = "txt"


class MarkdownSnapshot(_TextSnapshot):
    file_extension = "md"


class HtmlSnapshot(_TextSnapshot):
    file_extension = "html"


@pytest.fixture
def snapshot_txt(snapshot):
    return snapshot.use_extension(TxtSnapshot)


@pytest.fixture
def snapshot_md(snapshot):
    return snapshot.use_extension(MarkdownSnapshot)


@pytest.fixture
def snapshot_html(snapshot):
    return snapshot.use_extension(HtmlSnapshot)


@pytest.fixture
def meanwhile(monkeypatch):
    """``meanwhile(after, write)``: run `write` (another process's change to the ledger) once, when
    the `after`-th account of a settlement has been rated and before it is written."""
    import ratecard.ledger as ledger_module

    def arm(after: int, write) -> None:
        rated = []

        def hook(step):
            if step == "rated":
                rated.append(step)
                if len(rated) == after:
                    monkeypatch.setattr(ledger_module, "_checkpoint_hook", None)
                    write()

        monkeypatch.setattr(ledger_module, "_checkpoint_hook", hook)

    return arm


@pytest.fixture(scope="session")
def spark_session():
    """One local SparkSession for the whole run: starting the JVM is the slow part."""
    pytest.importorskip("pyspark")
    import shutil

    if shutil.which("java") is None:
        pytest.skip("Spark needs Java")
    from ratecard.usage.spark import session

    spark = session("local[2]")
    yield spark
