"""The compiled query's shortcuts give what the long way gives (DuckDB)."""

from __future__ import annotations

import duckdb
import pytest

from ratecard.usage.compile import Dialect

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
