"""SeenIds: a set of request ids that spills to a temporary SQLite file and keeps memory bounded."""

from __future__ import annotations

import gc
import sqlite3
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratecard.errors import RatecardError
from ratecard.seen import SeenIds
from ratecard.usage import UsageReader

from conftest import ROOT


def _files(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_below_the_limit_it_is_a_set_and_touches_no_disk(tmp_path):
    with SeenIds(memory_limit=10, directory=tmp_path) as seen:
        for i in range(10):
            seen.add(f"id-{i}")
        seen.add("id-3")  # again: still one
        assert len(seen) == 10 and "id-0" in seen and "id-9" in seen and "id-10" not in seen
        assert not seen.spilled and seen.path is None
        assert _files(tmp_path) == []


def test_answers_stay_right_across_the_spill_boundary(tmp_path):
    with SeenIds(memory_limit=100, batch=7, directory=tmp_path) as seen:
        for i in range(1_000):
            key = f"id-{i}"
            assert key not in seen
            seen.add(key)
            assert key in seen
            seen.add(key)  # a second add of a stored or pending id changes nothing
            assert len(seen) == i + 1
            if i == 100:
                assert seen.spilled  # the 101st id spilled the store
        assert seen.spilled and all(f"id-{i}" in seen for i in range(1_000))
        assert "id-1000" not in seen and "" not in seen and "ID-1" not in seen
        # Ids already in the database, in the pending batch, and re-added after a miss.
        before = len(seen)
        for i in (0, 99, 100, 101, 995, 999):
            seen.add(f"id-{i}")
        assert len(seen) == before


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from(["add", "in"]), st.text(max_size=6)), max_size=120),
       limit=st.integers(0, 12), batch=st.integers(1, 9))
def test_behaves_like_a_set(ops, limit, batch):
    model: set[str] = set()
    with SeenIds(memory_limit=limit, batch=batch) as seen:
        for op, key in ops:
            if op == "add":
                seen.add(key)
                model.add(key)
            else:
                assert (key in seen) == (key in model)
            assert len(seen) == len(model)
        assert all(key in seen for key in model)
        assert bool(seen) == bool(model)


def test_many_ids(tmp_path):
    n = 120_000
    with SeenIds(memory_limit=5_000, batch=1_000, directory=tmp_path) as seen:
        for i in range(n):
            seen.add(f"{i:08x}-0b7a-4c1e-9a01-{i * 7919:012d}")
        assert len(seen) == n and seen.spilled
        assert all(f"{i:08x}-0b7a-4c1e-9a01-{i * 7919:012d}" in seen for i in range(0, n, 997))
        assert sum(f"{i:08x}-0b7a-4c1e-9a01-{i * 7919 + 1:012d}" in seen for i in range(0, n, 997)) == 0


def test_close_deletes_the_temporary_file(tmp_path):
    seen = SeenIds(memory_limit=3, directory=tmp_path)
    for i in range(10):
        seen.add(str(i))
    path = seen.path
    assert seen.spilled and _files(tmp_path) == [path.rsplit("/", 1)[-1]]
    assert path.endswith(".sqlite")
    seen.close()
    assert _files(tmp_path) == [] and seen.path is None and len(seen) == 0
    seen.close()  # twice is harmless
    with pytest.raises(ValueError, match="closed"):
        seen.add("x")
    with pytest.raises(ValueError, match="closed"):
        "x" in seen  # noqa: B015


def test_the_context_manager_deletes_the_file_even_on_error(tmp_path):
    with pytest.raises(RuntimeError):
        with SeenIds(memory_limit=0, directory=tmp_path) as seen:
            seen.add("a")
            assert _files(tmp_path)
            raise RuntimeError("boom")
    assert _files(tmp_path) == []


def test_a_forgotten_store_is_deleted_when_collected(tmp_path):
    seen = SeenIds(memory_limit=0, directory=tmp_path)
    seen.add("a")
    assert _files(tmp_path)
    del seen
    gc.collect()
    assert _files(tmp_path) == []


def test_only_text_is_stored():
    with SeenIds(memory_limit=0) as seen:
        seen.add("1")
        with pytest.raises(TypeError):
            seen.add(1)
        assert 1 not in seen and "1" in seen


def test_a_store_that_cannot_be_created_is_a_clear_error(tmp_path):
    seen = SeenIds(memory_limit=0, directory=tmp_path / "missing")
    with pytest.raises((RatecardError, OSError)):
        seen.add("a")
    seen.close()


def test_a_disk_error_is_a_ratecard_error_naming_the_store(tmp_path, monkeypatch):
    seen = SeenIds(memory_limit=0, batch=1, directory=tmp_path)
    seen.add("a")  # spilled

    class Full:
        def execute(self, sql, *args):
            raise sqlite3.OperationalError("database or disk is full")

        executemany = execute

    monkeypatch.setattr(seen, "_db", Full())
    with pytest.raises(RatecardError, match=r"ratecard-seen-.*\.sqlite: cannot write .*disk is full.*TMPDIR"):
        seen.add("b")
    monkeypatch.undo()
    seen.close()
    assert _files(tmp_path) == []


def _peak_while_adding(count: int, tmp_path) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        with SeenIds(memory_limit=2_000, batch=500, directory=tmp_path) as seen:
            for i in range(count):
                seen.add(f"6f1d2c3e-0b7a-4c1e-9a01-{i:012d}")
            assert len(seen) == count
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_python_memory_stays_bounded_as_ids_grow(tmp_path):
    small, large = _peak_while_adding(10_000, tmp_path), _peak_while_adding(100_000, tmp_path)
    # Ten times the ids, the same Python heap (SQLite's bounded page cache is outside it)...
    assert large < small * 1.1 + 16_384, (small, large)
    # ...where a set would hold every one of them: at least 40 bytes an id.
    tracemalloc.start()
    try:
        ids = {f"6f1d2c3e-0b7a-4c1e-9a01-{i:012d}" for i in range(100_000)}
        as_set = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(ids) == 100_000 and as_set > large + 100_000 * 40


def test_the_reader_counts_duplicates_the_same_with_a_spilled_store(shipped_rules, tmp_path):
    rows = ["request_id,account,api,timestamp,outcome"]
    for i in range(300):
        rows.append(f"id-{i % 250},acct-{i % 7},DetectFace,2020-09-10T10:00:00Z,success")  # 50 repeats
    path = tmp_path / "calls.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    plain = UsageReader(shipped_rules).read(path)
    with SeenIds(memory_limit=20, batch=8, directory=tmp_path) as seen:
        spilled = UsageReader(shipped_rules, seen_ids=seen).read(path)
        assert seen.spilled and len(seen) == 250
    assert spilled.reconciliation == plain.reconciliation
    assert spilled.reconciliation.rows_duplicate == 50
    assert list(spilled.accounts()) == list(plain.accounts())


def test_the_example_duplicate_is_found_by_a_spilled_store(shipped_rules, tmp_path):
    with SeenIds(memory_limit=0, batch=1, directory=tmp_path) as seen:
        reader = UsageReader(shipped_rules, seen_ids=seen).read(ROOT / "examples" / "calls-2020-09-30.jsonl")
        assert seen.spilled
    assert reader.reconciliation.rows_duplicate == 1


def test_ids_with_lone_surrogates_are_kept_apart_after_the_spill(tmp_path):
    # issue 11 item 12: a JSON request id may hold "\ud800"; once the ids spilled to SQLite, storing
    # it raised UnicodeEncodeError.
    odd = ["\ud800", "\udfff", "a\ud800b", "\ud83d"]
    with SeenIds(memory_limit=2, batch=2, directory=tmp_path) as seen:
        for item in ["x", "y", "z", *odd]:
            seen.add(item)
        assert seen.spilled
        for item in odd:
            assert item in seen
            seen.add(item)  # a second time: a duplicate, not a new id
        assert "\udbff" not in seen and "\U0001f600" not in seen
        assert len(seen) == 3 + len(odd)
