"""Broadcasts (compose in both languages with a live preview, the recipient count before
sending, live progress, cancel: kvisa/bot/broadcasts does the work) and staff accounts with
the audit log."""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web

from kvisa.bot.broadcasts import texts
from kvisa.bot.broadcasts.segment import Segment, choices
from kvisa.bot.i18n import LANGS, N_
from kvisa.bot.workspace.accounts import ROLES
from kvisa.bot.workspace.app import Route, Workspace, actor
from kvisa.errors import InputError

STATUS_NAMES = (N_("queued"), N_("running"), N_("done"), N_("cancelled"))
SEGMENT_KEYS = ("lang", "park", "plan", "eligible", "reached", "not_reached", "channel")
AUDIT_PAGE = 50


def routes(ws: Workspace) -> list[Route]:
    pages = AdminPages(ws)
    return [
        Route("GET", "broadcasts", pages.broadcasts, "viewer"),
        Route("POST", "broadcasts/preview", pages.preview, "admin"),
        Route("POST", "broadcasts", pages.send, "admin"),
        Route("GET", r"broadcasts/{id:[0-9a-f]{6}|cv[0-9]{1,9}}.json", pages.progress, "viewer"),
        Route("POST", r"broadcasts/{id:[0-9a-f]{6}|cv[0-9]{1,9}}/cancel", pages.cancel, "admin"),
        Route("GET", "staff", pages.staff, "admin"),
        Route("POST", "staff", pages.add_staff, "admin"),
        Route("POST", r"staff/{name:[a-z0-9][a-z0-9._-]{1,31}}/disable", pages.disable, "admin"),
        Route("POST", r"staff/{name:[a-z0-9][a-z0-9._-]{1,31}}/enable", pages.enable, "admin"),
        Route("POST", r"staff/{name:[a-z0-9][a-z0-9._-]{1,31}}/reset", pages.reset, "admin"),
    ]


class AdminPages:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    # --- broadcasts ---------------------------------------------------------------------------

    def _segment(self, form: Any) -> Segment:
        values = {
            key: {str(v) for v in form.getall(key, []) if str(v)}
            for key in SEGMENT_KEYS
            if form.getall(key, [])
        }
        return Segment.from_values(self.ws.flows, values)

    async def broadcasts(self, request: web.Request, problem: str = "") -> web.Response:
        store = self.ws.broadcasts
        recent = await store.recent(20) if store is not None else []
        return self.ws.render(
            request,
            "broadcasts.html",
            recent=recent,
            segment_choices={k: v for k, v in choices(self.ws.flows).items() if k in SEGMENT_KEYS},
            problem=problem,
            previews={
                lang: (
                    self.ws.catalogs[lang](
                        "📢 Policy update from {agency}", agency=self.ws.agency.get(lang, "")
                    ),
                    self.ws.catalogs[lang](
                        "Send /news off to stop these updates (your deadline reminders continue)."
                    ),
                )
                for lang in LANGS
            },
            available=self.ws.composer is not None,
        )

    async def preview(self, request: web.Request) -> web.StreamResponse:
        """The recipients the segment selects now, and each language's message as sent."""
        composer = self.ws.composer
        form = await request.post()
        if composer is None:
            return web.json_response({"error": "broadcasts are not running"}, status=503)
        try:
            segment = self._segment(form)
        except InputError as exc:
            return web.json_response({"error": exc.expected, "field": exc.field}, status=400)
        audience = await composer.audience(segment)
        t = self.ws.text(request)
        problems = {
            lang: texts.text_problem(t, lang, str(form.get(lang, ""))) for lang in ("en", "zh")
        }
        return web.json_response(
            {"segment": str(segment), **audience.to_json(), "problems": problems}
        )

    async def send(self, request: web.Request) -> web.StreamResponse:
        composer, t = self.ws.composer, self.ws.text(request)
        if composer is None:
            return self.ws.refuse(request, 503, t("Broadcasts are not running."))
        form = await request.post()
        staff = actor(request)
        try:
            segment = self._segment(form)
            broadcast = await composer.create(
                str(form.get("en", "")),
                str(form.get("zh", "")),
                segment,
                author=f"staff:{staff.name}",
            )
        except InputError as exc:
            t = self.ws.text(request)
            problem = t("{field}: expected {expected}", field=exc.field, expected=t(exc.expected))
            return await self.broadcasts(request, problem)
        await self.ws.audit.record(
            staff.name,
            "broadcast",
            detail=f"{broadcast.id} to {broadcast.total} ({broadcast.segment or 'everyone'})",
        )
        raise web.HTTPSeeOther(f"/agency/broadcasts#b{broadcast.id}")

    async def progress(self, request: web.Request) -> web.StreamResponse:
        store = self.ws.broadcasts
        broadcast = await store.get(request.match_info["id"]) if store else None
        if broadcast is None:
            raise web.HTTPNotFound()
        data = broadcast.to_json()
        return web.json_response(
            {
                key: data[key]
                for key in ("id", "status", "total", "counts", "remaining", "seconds_left")
            }
        )

    async def cancel(self, request: web.Request) -> web.StreamResponse:
        store = self.ws.broadcasts
        broadcast = await store.cancel(request.match_info["id"]) if store else None
        if broadcast is None:
            raise web.HTTPNotFound()
        await self.ws.audit.record(actor(request).name, "broadcast-cancel", detail=broadcast.id)
        raise web.HTTPSeeOther("/agency/broadcasts")

    # --- staff --------------------------------------------------------------------------------

    async def staff(
        self, request: web.Request, problem: str = "", status: int = 200
    ) -> web.Response:
        try:
            page = max(1, int(request.query.get("page", "1")))
        except ValueError:
            page = 1
        log = await self.ws.audit.recent((page - 1) * AUDIT_PAGE, AUDIT_PAGE)
        return self.ws.render(
            request,
            "staff.html",
            status=status,
            accounts=await self.ws.staff.all(),
            roles=ROLES,
            log=[doc for _, doc in log.docs],
            page=page,
            pages=max(1, math.ceil(log.total / AUDIT_PAGE)),
            problem=problem,
        )

    def _problem(self, request: web.Request, exc: InputError) -> str:
        t = self.ws.text(request)
        return t("{field}: expected {expected}", field=t(exc.field), expected=t(exc.expected))

    async def add_staff(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        name, role = str(form.get("name", "")).strip().lower(), str(form.get("role", ""))
        password = str(form.get("password", ""))
        if password != str(form.get("again", "")):
            t = self.ws.text(request)
            return await self.staff(request, t("The two passwords differ."), 400)
        try:
            await self.ws.staff.add(name, role, password, self.ws.now())
        except InputError as exc:
            return await self.staff(request, self._problem(request, exc), 400)
        await self.ws.audit.record(actor(request).name, "staff-add", detail=f"{name} ({role})")
        raise web.HTTPSeeOther("/agency/staff")

    async def _set(self, request: web.Request, disabled: bool) -> web.StreamResponse:
        name = request.match_info["name"]
        if disabled and name == actor(request).name:
            t = self.ws.text(request)
            return await self.staff(request, t("You cannot disable your own account."), 400)
        try:
            await self.ws.staff.set_disabled(name, disabled)
        except InputError as exc:
            return await self.staff(request, self._problem(request, exc), 404)
        action = "staff-disable" if disabled else "staff-enable"
        await self.ws.audit.record(actor(request).name, action, detail=name)
        raise web.HTTPSeeOther("/agency/staff")

    async def disable(self, request: web.Request) -> web.StreamResponse:
        return await self._set(request, True)

    async def enable(self, request: web.Request) -> web.StreamResponse:
        return await self._set(request, False)

    async def reset(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        name, password = request.match_info["name"], str(form.get("password", ""))
        if password != str(form.get("again", "")):
            t = self.ws.text(request)
            return await self.staff(request, t("The two passwords differ."), 400)
        try:
            await self.ws.staff.reset(name, password)
        except InputError as exc:
            return await self.staff(request, self._problem(request, exc), 400)
        await self.ws.audit.record(actor(request).name, "staff-reset", detail=name)
        raise web.HTTPSeeOther("/agency/staff")
