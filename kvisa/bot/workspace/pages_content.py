"""Content versions in the workspace: the list, what changed between two versions (both
languages), and for admins a dry run, publishing the flows directory in effect and rolling
back; every publish and rollback is audited. The work is bot/publishing's."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from aiohttp import web

from kvisa.bot.i18n import N_
from kvisa.bot.policy.zones import SHANGHAI
from kvisa.bot.publishing.service import CURRENT, DRAFT, Publisher, parse_id
from kvisa.bot.workspace.app import Route, Section, Workspace, actor
from kvisa.errors import FlowError, InputError

SECTION = Section("content", N_("Content"), "viewer")


def install(ws: Workspace, publisher: Callable[[], Publisher]) -> None:
    """Add the page to the workspace's navigation and routes (before it is mounted)."""
    pages = ContentPages(ws, publisher)
    ws.sections.insert(len(ws.sections) - 1, SECTION)  # before Staff
    ws.extra_routes += [
        Route("GET", "content", pages.show, "viewer"),
        Route("POST", "content/preview", pages.preview, "admin"),
        Route("POST", "content/publish", pages.publish, "admin"),
        Route("POST", r"content/{id:[0-9]{1,9}}/rollback", pages.rollback, "admin"),
    ]


class ContentPages:
    def __init__(self, ws: Workspace, publisher: Callable[[], Publisher]) -> None:
        self.ws, self.publisher = ws, publisher

    async def show(
        self,
        request: web.Request,
        problem: str = "",
        preview: dict[str, object] | None = None,
    ) -> web.Response:
        found, t = self.publisher(), self.ws.text(request)
        versions = await found.storage.content_versions()
        current = await found.storage.current_content_id()
        a = request.query.get("a", str(versions[-2].id) if len(versions) > 1 else DRAFT)
        b = request.query.get("b", CURRENT if current else DRAFT)
        changes: dict[str, list[str]] = {}
        try:
            changes = found.report(await found.side(a, "a"), await found.side(b, "b"))
        except InputError as exc:
            problem = problem or t(
                "{field}: expected {expected}", field=exc.field, expected=exc.expected
            )
        except FlowError as exc:
            problem = problem or str(exc)
        return self.ws.render(
            request,
            "content.html",
            versions=list(reversed(versions)),
            current=current,
            a=a,
            b=b,
            changes=changes,
            problem=problem,
            preview=preview,
            when=lambda v: self.ws.catalogs[t.lang].date(
                dt.datetime.fromtimestamp(v.published_at, SHANGHAI).date()
            ),
        )

    async def preview(self, request: web.Request) -> web.Response:
        """A dry run: what publishing the flows directory would change, for whom."""
        found, t = self.publisher(), self.ws.text(request)
        try:
            plan = await found.plan()
        except FlowError as exc:
            return await self.show(request, problem=str(exc))
        if plan.unchanged:
            return await self.show(request, problem=t("Nothing to publish: no change."))
        today = self.ws.now().astimezone(SHANGHAI).date()
        summary = await found.dry_run(plan, today)
        await self.ws.audit.record(actor(request).name, "content-dry-run")
        shown = {"summary": summary, "changes": found.report(plan.old, plan.new)}
        return await self.show(request, preview=shown)

    async def publish(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        return await self._publish(request, None, str(form.get("note", ""))[:500])

    async def rollback(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        version = parse_id(request.match_info["id"], "id")
        return await self._publish(request, version, str(form.get("note", ""))[:500])

    async def _publish(
        self, request: web.Request, rollback_of: int | None, note: str
    ) -> web.StreamResponse:
        found, t, staff = self.publisher(), self.ws.text(request), actor(request)
        try:
            plan = await found.plan(rollback_of)
        except (FlowError, InputError) as exc:
            return await self.show(request, problem=str(exc))
        if plan.unchanged:
            return await self.show(request, problem=t("Nothing to publish: no change."))
        version = await found.publish(plan, f"staff:{staff.name}", note)
        action = "content-rollback" if rollback_of else "content-publish"
        detail = f"version {version.id}" + (f" (content of {rollback_of})" if rollback_of else "")
        await self.ws.audit.record(staff.name, action, detail=f"{detail}: {note}"[:200])
        raise web.HTTPSeeOther("/agency/content")
