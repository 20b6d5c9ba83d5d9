"""No shipped file cites a document the repository does not hold: the product brief (SPEC.md) is not
shipped, so rule files, examples, templates, docs and the README say the fact itself instead."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ("rules", "examples", "reports", "docs", "schemas", "engine")
# "SPEC §3", "SPEC.md", "the brief", a bare "§2": each points at a document an analyst does not have.
CITATION = re.compile(r"\bSPEC\b|(?i:\bthe (product )?brief\b)|§")


def shipped_files() -> list[Path]:
    files = [ROOT / "README.md"]
    for folder in SHIPPED:
        files += sorted(p for p in (ROOT / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts
                        and p.suffix not in {".mo", ".pyc"})
    return files


def citations(text: str) -> list[tuple[int, str]]:
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if CITATION.search(line)]


def test_the_pattern_finds_each_form_of_citation():
    text = "ok\n# price book (SPEC §4).\n# The brief gives no date\n(see §2)\nSPEC.md says\n_SPEC = 1\nload_rule_spec(spec)\n"
    assert [n for n, _ in citations(text)] == [2, 3, 4, 5]


@pytest.mark.parametrize("path", shipped_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_shipped_file_cites_an_outside_document(path):
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return  # a binary file (a font, an image) holds no prose
    assert citations(text) == [], f"{path.relative_to(ROOT)} cites a document that is not in the repository"
