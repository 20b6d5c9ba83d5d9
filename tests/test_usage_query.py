"""The compiled query's shortcuts give what the long way gives (DuckDB)."""

from __future__ import annotations

import duckdb
import pytest

from ratecard.usage.compile import Dialect
from ratecard.usage.duck import engine_memory

# Zones with the largest UTC offsets the time zone database has, and some with odd historical ones.
ZONES = ["Asia/Shanghai", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Kathmandu", "America/Sitka",
         "Asia/Manila", "America/St_Johns", "Europe/Dublin", "Australia/Lord_Howe", "UTC"]


@pytest.mark.parametrize("zone", ZONES)
def test_the_local_month_shortcut_is_the_month_in_the_zone(zone):
    # Every hour (and the odd second) from 1800 to 2100, with the month's turn, where the shortcut
    # steps aside, included: the month the query reads equals the month by the zone's rules.
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    d = Dialect()
    quick = d.local_month("instant", zone)
    exact = f"date_trunc('month', timezone({d.lit(zone)}, instant))"
    wrong = con.execute(f"""
        WITH instants AS (
          SELECT to_timestamp(s) AS instant FROM range(-5364662400, 4102444800, 3599) AS t(s)
          UNION ALL SELECT to_timestamp(s) + to_microseconds(999999) FROM range(-5364662400, 4102444800, 86400 * 7 + 1) AS t(s))
        SELECT count(*), min(instant) FILTER (WHERE ({quick}) IS DISTINCT FROM ({exact}))
        FROM instants WHERE ({quick}) IS DISTINCT FROM ({exact})""").fetchone()
    assert wrong[0] == 0, wrong


@pytest.mark.parametrize("cap, engine", [("2GiB", 1717986918), ("64MiB", 53687091), ("512MB", 409600000),
                                         ("1.5 GiB", 1288490188), (None, 1717986918)])
def test_duckdb_gets_four_fifths_of_the_memory_cap(cap, engine):
    # The rest of the cap is the process's own: Python, the rating, what DuckDB allocates past its buffers.
    assert engine_memory(cap) == f"{engine}B"
    con = duckdb.connect(config={"memory_limit": engine_memory(cap)})
    assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0].endswith("iB")


def test_a_memory_size_duckdb_reads_its_own_way_is_handed_to_it():
    assert engine_memory("75%") == "75%"
