"""The admin API's content routes (`Authorization: Bearer <KVISA_ADMIN_TOKEN>`, checked by the
admin API's middleware, bot/broadcasts/admin.py, for every /admin/ path):

- `GET /admin/content/versions`: every version, oldest first, and the current id;
- `GET /admin/content/diff?a=A&b=B`: the changes from A to B (ids, `current`, `draft`);
- `POST /admin/content/publish` `{"note": ..., "dry_run": false}`: publish the flows
  directory in effect (201), or re-check every applicant and send nothing (`dry_run`);
- `POST /admin/content/rollback/ID` `{"note": ...}`: publish version ID's content again.

After a publish the serving processes' change job re-checks the applicants and queues their
notices within seconds (job.py). Bad input is 400 naming the field.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from kvisa.bot.clock import Clock
from kvisa.bot.policy.zones import SHANGHAI
from kvisa.bot.publishing.recheck import Summary
from kvisa.bot.publishing.service import Plan, Publisher, parse_id
from kvisa.errors import FlowError, InputError
from kvisa.storage.base import ContentVersion

log = logging.getLogger(__name__)


def summary_json(summary: Summary) -> dict[str, Any]:
    return {
        "checked": summary.checked,
        "affected": summary.affected,
        "verdict": summary.verdict,
        "checklist": summary.checklist,
        "dates": summary.dates,
        "samples": summary.samples,
    }


def plan_json(publisher: Publisher, plan: Plan) -> dict[str, Any]:
    return {"current": plan.current, "changes": publisher.report(plan.old, plan.new)}


async def body_of(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError("body", "a JSON object") from exc
    if not isinstance(body, dict):
        raise InputError("body", "a JSON object", type(body).__name__)
    note = body.get("note", "")
    if not isinstance(note, str) or len(note) > 500:
        raise InputError("note", "text of at most 500 characters", note)
    return body


def content_routes(app: web.Application, publisher: Callable[[], Publisher], clock: Clock) -> None:
    """Mounted next to the broadcasts' routes (whose middleware authorises them)."""

    async def versions(request: web.Request) -> web.Response:
        found = publisher()
        listed = await found.storage.content_versions()
        current = await found.storage.current_content_id()
        return web.json_response({"current": current, "versions": [v.to_json() for v in listed]})

    async def show_diff(request: web.Request) -> web.Response:
        found = publisher()
        a, b = request.query.get("a", "current"), request.query.get("b", "draft")
        old, new = await found.side(a, "a"), await found.side(b, "b")
        return web.json_response({"a": a, "b": b, "changes": found.report(old, new)})

    async def publish(request: web.Request, rollback_of: int | None) -> web.Response:
        body = await body_of(request)
        found = publisher()
        plan = await found.plan(rollback_of)
        if plan.unchanged:
            return web.json_response({"unchanged": True, "current": plan.current})
        if body.get("dry_run"):
            today = clock.now().astimezone(SHANGHAI).date()
            summary = await found.dry_run(plan, today)
            return web.json_response(
                {"dry_run": True, **plan_json(found, plan), "summary": summary_json(summary)}
            )
        version: ContentVersion = await found.publish(plan, "http", body.get("note", ""))
        log.info("content version %s published over HTTP", version.id)
        return web.json_response(
            {"version": version.to_json(), **plan_json(found, plan)},
            status=201,
            headers={"Location": "/admin/content/versions"},
        )

    def guarded(handler: Callable[..., Any]) -> Callable[[web.Request], Any]:
        async def run(request: web.Request) -> web.Response:
            try:
                response: web.Response = await handler(request)
                return response
            except InputError as exc:
                return web.json_response({"error": exc.expected, "field": exc.field}, status=400)
            except FlowError as exc:
                return web.json_response({"error": f"invalid content: {exc}"}, status=400)

        return run

    async def rollback(request: web.Request) -> web.Response:
        return await publish(request, parse_id(request.match_info["id"], "id"))

    app.router.add_get("/admin/content/versions", guarded(versions))
    app.router.add_get("/admin/content/diff", guarded(show_diff))
    app.router.add_post("/admin/content/publish", guarded(lambda r: publish(r, None)))
    app.router.add_post(r"/admin/content/rollback/{id}", guarded(rollback))
