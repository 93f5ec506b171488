"""The catalog contract, on both backends: facets, score ranges, pages, order, replacing and
removing entries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from kvisa.bot.cases.catalog import Catalog, Entry, RedisCatalog, SqliteCatalog


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Catalog]:
    if request.param == "sqlite":
        found: Catalog = SqliteCatalog(tmp_path / "workspace.db")
        yield found
        await found.close()
        return
    url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
    client = Redis.from_url(url)
    yield RedisCatalog(client, prefix)
    await client.aclose()


def entry(member: str, score: float, *facets: str) -> Entry:
    return Entry(member, score, frozenset(facets), {"member": member})


async def test_a_query_intersects_groups_and_unites_within_a_group(catalog: Catalog) -> None:
    await catalog.put(
        "cases",
        [
            entry("a", 3, "park:lingang", "lang:en"),
            entry("b", 1, "park:zhangjiang", "lang:en"),
            entry("c", 2, "park:lingang", "lang:zh"),
            entry("d", 4, "park:other", "lang:en"),
        ],
    )
    everyone = await catalog.query("cases")
    assert everyone.total == 4 and [m for m, _ in everyone.docs] == ["b", "c", "a", "d"]
    lingang = await catalog.query("cases", [["park:lingang"]])
    assert [m for m, _ in lingang.docs] == ["c", "a"]
    parks_in_english = await catalog.query(
        "cases", [["park:lingang", "park:zhangjiang"], ["lang:en"]]
    )
    assert parks_in_english.total == 2 and [m for m, _ in parks_in_english.docs] == ["b", "a"]
    assert (await catalog.query("cases", [["park:nowhere"]])).total == 0
    assert (await catalog.query("cases", [[]])).total == 0


async def test_score_ranges_pages_and_reverse_order(catalog: Catalog) -> None:
    await catalog.put("log", [entry(f"m{n:02d}", n, "all") for n in range(30)])
    page = await catalog.query("log", high=9, offset=5, limit=3)
    assert page.total == 10 and [m for m, _ in page.docs] == ["m05", "m06", "m07"]
    newest = await catalog.query("log", [["all"]], limit=2, reverse=True)
    assert [m for m, _ in newest.docs] == ["m29", "m28"]
    window = await catalog.query("log", [["all"]], low=10, high=12)
    assert window.total == 3 and window.docs[0][1] == {"member": "m10"}


async def test_an_entry_put_again_drops_the_facets_it_lost(catalog: Catalog) -> None:
    await catalog.put("cases", [entry("a", 1, "handover:queued", "park:lingang")])
    await catalog.put("cases", [entry("a", 5, "park:lingang")])
    assert (await catalog.query("cases", [["handover:queued"]])).total == 0
    page = await catalog.query("cases", [["park:lingang"]], high=4)
    assert page.total == 0  # the score moved too
    assert await catalog.get("cases", "a") == {"member": "a"}


async def test_removed_and_cleared_entries_are_gone_everywhere(catalog: Catalog) -> None:
    await catalog.put("cases", [entry("a", 1, "x"), entry("b", 2, "x")])
    await catalog.put("audit", [entry("z", 1, "x")])
    await catalog.remove("cases", "a")
    assert [m for m, _ in (await catalog.query("cases", [["x"]])).docs] == ["b"]
    assert await catalog.get("cases", "a") is None
    await catalog.clear("cases")
    assert (await catalog.query("cases")).total == 0
    assert (await catalog.query("audit")).total == 1  # another collection is untouched
    await catalog.remove("cases", "never-there")
