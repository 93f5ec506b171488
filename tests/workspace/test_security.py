"""The workspace's rules over real HTTP: signing in and out, cookies, CSRF, lockout, roles on
every route, the security headers, no applicant data in URLs, and the audit log."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie

import aiohttp

from kvisa.bot.workspace.security import FAILURES_ALLOWED, IDLE, SESSION_COOKIE
from tests.workspace.conftest import CSRF, PASSWORD, Start

CHAT = 4242


async def test_signed_out_the_agency_page_is_the_sign_in_form(agency: Start) -> None:
    ag = await agency()
    visitor = await ag.staffer()
    page = await visitor.get("/agency/")
    assert visitor.status == 200
    assert 'action="/agency/signin"' in page and 'type="password"' in page
    await visitor.get("/agency/cases", allow_redirects=False)
    assert visitor.status == 303 and visitor.headers["Location"] == "/agency/"
    await visitor.get("/agency/?lang=zh")
    assert "登录" in visitor.last


async def test_signing_in_sets_a_signed_http_only_strict_cookie_for_eight_hours(
    agency: Start,
) -> None:
    ag = await agency()
    staffer = await ag.staffer()
    await staffer.get("/agency/")
    async with staffer.http.post(
        ag.base + "/agency/signin",
        data={"csrf": staffer.csrf, "name": "vera", "password": PASSWORD},
        allow_redirects=False,
    ) as response:
        assert response.status == 303
        cookie = SimpleCookie(response.headers["Set-Cookie"])[SESSION_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    assert int(cookie["max-age"]) == IDLE.total_seconds()
    assert not cookie["secure"]  # the public URL is not https here
    session_id, _, signature = cookie.value.rpartition(".")
    assert len(signature) == 32 and session_id
    sessions = [v async for v in ag.storage.values() if v.name.startswith("ws:session:")]
    assert len(sessions) == 1 and 0 < sessions[0].ttl <= IDLE.total_seconds()
    assert session_id not in sessions[0].name  # stored under a hash of the id


async def test_the_cookies_are_secure_when_the_public_url_is_https(agency: Start) -> None:
    ag = await agency(KVISA_PUBLIC_URL="https://bot.example.org")
    async with aiohttp.ClientSession() as http:  # plain HTTP here: the test carries the cookie
        async with http.get(ag.base + "/agency/") as response:
            pre = SimpleCookie(response.headers["Set-Cookie"])["kvisa_ws_pre"]
            token = CSRF.search(await response.text())
        assert pre["secure"] and token is not None
        async with http.post(
            ag.base + "/agency/signin",
            data={"csrf": token.group(1), "name": "vera", "password": PASSWORD},
            headers={"Cookie": f"kvisa_ws_pre={pre.value}"},
            allow_redirects=False,
        ) as response:
            assert response.status == 303
            assert SimpleCookie(response.headers["Set-Cookie"])[SESSION_COOKIE]["secure"]


async def test_a_forged_cookie_signature_is_not_a_session(agency: Start) -> None:
    ag = await agency()
    staffer = await ag.staffer("vera")
    value = next(c.value for c in staffer.http.cookie_jar if c.key == SESSION_COOKIE)
    forged = value[:-1] + ("0" if value[-1] != "0" else "1")
    async with aiohttp.ClientSession() as http:
        for cookie, expected in ((value, 200), (forged, 303)):
            async with http.get(
                ag.base + "/agency/cases",
                headers={"Cookie": f"{SESSION_COOKIE}={cookie}"},
                allow_redirects=False,
            ) as response:
                assert response.status == expected


async def test_signing_out_ends_the_session_for_good(agency: Start) -> None:
    ag = await agency()
    staffer = await ag.staffer("vera")
    old = {c.key: c.value for c in staffer.http.cookie_jar}
    await staffer.post("/agency/signout")
    assert 'action="/agency/signin"' in staffer.last
    staffer.http.cookie_jar.update_cookies(old)  # the old cookie, replayed
    await staffer.get("/agency/cases", allow_redirects=False)
    assert staffer.status == 303
    actions = [e["action"] for e in await ag.audit(actor="vera")]
    assert actions[:3] == ["sign-out", "list-cases", "sign-in"]


async def test_a_wrong_password_is_refused_and_logged(agency: Start) -> None:
    ag = await agency()
    staffer = await ag.staffer()
    await staffer.sign_in("vera", "not the password at all")
    assert staffer.status == 401 and "signout" not in staffer.last
    await staffer.sign_in("nobody", PASSWORD)
    assert staffer.status == 401
    actions = [e["action"] for e in await ag.audit()]
    assert actions.count("sign-in-failed") == 2


async def test_ten_failures_lock_the_account_for_fifteen_minutes(agency: Start) -> None:
    ag = await agency()
    staffer = await ag.staffer()
    for _ in range(FAILURES_ALLOWED):
        await staffer.sign_in("aaron", "wrong password, again")
        assert staffer.status == 401
    await staffer.sign_in("aaron", PASSWORD)  # the right password, too late
    assert staffer.status == 429 and "15" in staffer.last
    locks = [v async for v in ag.storage.values() if v.name.startswith("ws:fail:account:")]
    assert locks and all(v.ttl is not None and v.ttl <= 15 * 60 for v in locks)


async def test_ten_failures_from_one_address_lock_the_address(agency: Start) -> None:
    ag = await agency()
    staffer = await ag.staffer()
    for n in range(FAILURES_ALLOWED):
        await staffer.sign_in(f"guess{n}", "wrong password, again")
    await staffer.sign_in("ada", PASSWORD)  # another account, from the same address
    assert staffer.status == 429
    # Behind the proxy the client's address is the one it forwarded: another client may sign in.
    other = await ag.staffer()
    await other.get("/agency/")
    await other.post(
        "/agency/signin",
        {"name": "ada", "password": PASSWORD},
        headers={"X-Forwarded-For": "203.0.113.9"},
    )
    assert other.status == 200 and "signout" in other.last


async def test_a_form_without_the_csrf_token_is_refused(agency: Start) -> None:
    ag = await agency()
    ref = await ag.store(CHAT)
    staffer = await ag.staffer("aaron")
    await staffer.get(f"/agency/cases/{ref}")
    async with staffer.http.post(
        ag.base + f"/agency/cases/{ref}/notes", data={"note": "hi"}
    ) as response:
        assert response.status == 403
    staffer.csrf = "forged-token"
    await staffer.post(f"/agency/cases/{ref}/notes", {"note": "hi"})
    assert staffer.status == 403
    user = await ag.workspace.applicants.find(ref)
    assert user is not None and await ag.workspace.notes.of(user) == []


async def test_a_stale_csrf_token_from_an_earlier_session_is_refused(agency: Start) -> None:
    ag = await agency()
    ref = await ag.store(CHAT)
    staffer = await ag.staffer("aaron")
    await staffer.get(f"/agency/cases/{ref}")
    stale = staffer.csrf
    await staffer.post("/agency/signout")
    await staffer.sign_in("aaron")
    staffer.csrf = stale
    await staffer.post(f"/agency/cases/{ref}/tick", {"item": "passport"})
    assert staffer.status == 403


async def test_the_sign_in_form_needs_its_own_token(agency: Start) -> None:
    ag = await agency()
    staffer = await ag.staffer()
    async with staffer.http.post(
        ag.base + "/agency/signin", data={"name": "ada", "password": PASSWORD}
    ) as response:
        assert response.status == 403


async def test_every_route_refuses_a_role_below_its_own(agency: Start) -> None:
    ag = await agency()
    viewer, agent = await ag.staffer("vera"), await ag.staffer("aaron")
    signed_out = await ag.staffer()
    checked = 0
    routes = ag.workspace.routes_table()
    for route in routes:
        path = "/agency/" + PARAM.sub(sample, route.path)
        for staffer, role in ((signed_out, None), (viewer, "viewer"), (agent, "agent")):
            if route.role is None or (role is not None and rank(role) >= rank(route.role)):
                continue
            if route.method == "GET":
                await staffer.get(path, allow_redirects=False)
                expected = {303} if role is None else {403}
            else:
                await staffer.post(path, {})
                expected = {401} if role is None else {403}
            assert staffer.status in expected, (route.method, path, role, staffer.status)
            checked += 1
    assert routes and checked >= 20


PARAM = re.compile(r"\{(\w+):(?:[^{}]|\{[^}]*\})*\}")


def sample(match: re.Match[str]) -> str:
    """A value the route's pattern takes: `a` as many times as a hex pattern wants, a number
    for a version id."""
    if match.group(1) == "name":
        return "vera"
    if match.group(0).startswith("{id:[0-9]{"):
        return "1"
    return "a" * int(re.findall(r"\{(\d+)\}", match.group(0))[-1])


def rank(role: str) -> int:
    return ("viewer", "agent", "admin").index(role)


async def test_a_viewer_reads_but_cannot_tick_or_broadcast(agency: Start) -> None:
    ag = await agency()
    ref = await ag.store(CHAT)
    viewer = await ag.staffer("vera")
    page = await viewer.get(f"/agency/cases/{ref}")
    assert viewer.status == 200 and "telegram:4242" in page
    assert f"/agency/cases/{ref}/tick" not in page  # no tick buttons shown
    await viewer.post(f"/agency/cases/{ref}/tick", {"item": "passport"})
    assert viewer.status == 403
    await viewer.post("/agency/broadcasts", {"en": "News", "zh": "新闻"})
    assert viewer.status == 403
    assert (await ag.storage.get_value("bc:index")) is None


async def test_every_answer_carries_the_content_security_policy(agency: Start) -> None:
    ag = await agency()
    ref = await ag.store(CHAT)
    staffer = await ag.staffer()
    await staffer.get("/agency/")
    assert "script-src 'self'" in staffer.headers["Content-Security-Policy"]
    await staffer.get("/agency/cases", allow_redirects=False)
    assert "Content-Security-Policy" in staffer.headers
    await staffer.sign_in("vera")
    for path in ("/agency/cases", f"/agency/cases/{ref}", "/agency/deadlines", "/agency/nothing"):
        await staffer.get(path)
        assert staffer.headers["Content-Security-Policy"].startswith("default-src 'none'"), path
        assert staffer.headers["X-Frame-Options"] == "DENY"
    assert "<script>" not in staffer.last and "style=" not in staffer.last


async def test_no_applicant_data_appears_in_any_url(agency: Start) -> None:
    ag = await agency()
    await ag.store(CHAT)
    await ag.store(5151, park="zhangjiang")
    admin = await ag.staffer("ada")
    urls: list[str] = []
    for path in ("/agency/cases", "/agency/deadlines", "/agency/conversations", "/agency/staff"):
        await admin.get(path)
        urls += re.findall(r'(?:href|src|action)="([^"]*)"', admin.last)
    await admin.post("/agency/cases", {"search": "telegram:4242"})  # a search is a POST
    assert "telegram:4242" in admin.last
    urls += re.findall(r'(?:href|src|action)="([^"]*)"', admin.last)
    cases = [u for u in urls if u.startswith("/agency/cases/")]
    assert cases and not [u for u in urls if "4242" in u or "5151" in u or "telegram" in u]


async def test_the_audit_log_says_who_viewed_and_changed_which_applicant(agency: Start) -> None:
    ag = await agency()
    ref = await ag.store(CHAT)
    agent = await ag.staffer("aaron")
    await agent.get(f"/agency/cases/{ref}")
    await agent.post(f"/agency/cases/{ref}/notes", {"note": "Called her: Zhang Wei"})
    entries = await ag.audit(ref=ref)  # newest first: the page seen again after the note
    assert [(e["actor"], e["action"]) for e in entries] == [
        ("aaron", "view"),
        ("aaron", "note"),
        ("aaron", "view"),
    ]
    assert all("Zhang" not in e["detail"] for e in entries)  # what was written stays out
    admin = await ag.staffer("ada")
    page = await admin.get("/agency/staff")
    assert "aaron" in page and "note" in page
