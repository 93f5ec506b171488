"""Cases (search, filters, pages), one case, and the deadlines of the next 14 days."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import math
from typing import Any

from aiohttp import web

from kvisa.bot.attachments.picture import render_timeline_png
from kvisa.bot.broadcasts.segment import choices
from kvisa.bot.cases.applicants import Filters
from kvisa.bot.cases.notes import Note
from kvisa.bot.engine import render
from kvisa.bot.i18n import N_
from kvisa.bot.policy.answers import answer_values
from kvisa.bot.policy.eligibility import assess
from kvisa.bot.policy.reminders import timeline_of
from kvisa.bot.session import Session
from kvisa.bot.workspace.app import Route, Workspace, actor
from kvisa.identity import UserKey

PAGE = 50
HORIZON = 14  # days the deadlines page looks ahead
FILTERS = ("reached", "park", "plan", "channel", "verdict", "handover")
FILTER_NAMES = {
    "reached": N_("Step reached"),
    "park": N_("Park"),
    "plan": N_("Plan"),
    "channel": N_("Channel"),
    "verdict": N_("Verdict"),
    "handover": N_("Handed over"),
}


def routes(ws: Workspace) -> list[Route]:
    pages = CasePages(ws)
    return [
        Route("GET", "cases", pages.listing, "viewer"),
        Route("POST", "cases", pages.listing, "viewer"),
        Route("GET", r"cases/{ref:[0-9a-f]{20}}", pages.case, "viewer"),
        Route("GET", r"cases/{ref:[0-9a-f]{20}}/timeline.png", pages.picture, "viewer"),
        Route("POST", r"cases/{ref:[0-9a-f]{20}}/tick", pages.tick, "agent"),
        Route("POST", r"cases/{ref:[0-9a-f]{20}}/notes", pages.add_note, "agent"),
        Route("GET", "deadlines", pages.deadlines, "viewer"),
        Route("GET", "deadlines.csv", pages.deadlines_csv, "viewer"),
    ]


def days_left(today: dt.date, doc: dict[str, Any]) -> int | None:
    due = doc.get("next")
    return (dt.date.fromisoformat(due["act_by"]) - today).days if due else None


class CasePages:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def filter_choices(self) -> dict[str, tuple[str, ...]]:
        found = choices(self.ws.flows)
        return {
            "reached": found["reached"],
            "park": found["park"],
            "plan": found["plan"],
            "channel": found["channel"],
            "verdict": ("eligible", "not_eligible", "pending"),
            "handover": ("queued", "held"),
        }

    async def listing(self, request: web.Request) -> web.StreamResponse:
        """GET: filters in the query (they name no one); POST: a search too, kept out of URLs."""
        source: Any = await request.post() if request.method == "POST" else request.query
        allowed = self.filter_choices()
        chosen = {
            name: tuple(v for v in source.getall(name, []) if v in allowed[name])
            for name in FILTERS
        }
        search = str(source.get("search", ""))[:200].strip()
        try:
            page = max(1, int(str(source.get("page", "1"))))
        except ValueError:
            page = 1
        filters = Filters(**chosen, search=search)
        found = await self.ws.applicants.page(filters, (page - 1) * PAGE, PAGE)
        staff = actor(request)
        await self.ws.audit.record(
            staff.name,
            "list-cases",
            detail=f"{found.total} found" + (" (search)" if search else ""),
        )
        today = self.ws.applicants.today()
        rows = [(ref, doc, days_left(today, doc)) for ref, doc in found.docs]
        return self.ws.render(
            request,
            "cases.html",
            rows=rows,
            total=found.total,
            page=page,
            pages=max(1, math.ceil(found.total / PAGE)),
            chosen=chosen,
            allowed=allowed,
            search=search,
            labels=self.labels(request),
            filter_names=FILTER_NAMES,
        )

    def labels(self, request: web.Request) -> dict[str, str]:
        """Readable names of filter values and steps, in the reader's language."""
        t, flows = self.ws.text(request), self.ws.flows
        names: dict[str, str] = {
            "eligible": t("eligible"),
            "not_eligible": t("not eligible"),
            "pending": t("interview not finished"),
            "queued": t("waiting for a person"),
            "held": t("with a person"),
            "telegram": "Telegram",
            "wechat": t("WeChat"),
        }
        for event in flows.timeline.events:
            names[event.id] = t(event.done)
        for qid in ("park", "plan"):
            question = flows.find_question(qid)
            for option in question.options if question else ():
                names[option.id] = t(option.label)
        return names

    async def _case(self, request: web.Request) -> tuple[UserKey, dict[str, Any]]:
        user = await self.ws.applicants.find(request.match_info["ref"])
        data = await self.ws.applicants.record(user) if user else None
        if user is None or data is None:
            raise web.HTTPNotFound()
        return user, data

    async def case(self, request: web.Request) -> web.StreamResponse:
        user, data = await self._case(request)
        ref = request.match_info["ref"]
        staff = actor(request)
        await self.ws.audit.record(staff.name, "view", ref)
        t, flows = self.ws.text(request), self.ws.flows
        session = Session.from_json(data)
        today = self.ws.applicants.today()
        answers = [
            (t(q.short), render.answer_label(t, q, session.answers[q.id]))
            for q in flows.questions
            if q.id in session.answers
        ]
        events = [
            (t(e.done), t.date(dt.date.fromisoformat(session.events[e.id])))
            for e in flows.timeline.events
            if e.id in session.events
        ]
        verdict, checklist = None, []
        if session.finished:
            try:
                values = answer_values(flows, session.answers)
                result = assess(flows, values, today)
                verdict = render.verdict(t, flows, result, values)
                checklist = [
                    (e.item.id, t(e.item.title), t(e.detail), e.item.id in session.ticked)
                    for e in result.checklist
                ]
            except Exception:  # an answer the policy cannot read: the page still shows
                verdict = t("The verdict cannot be computed from these answers.")
        timeline = timeline_of(flows, data, today)
        deadlines = [
            (t(d.title), t.date(d.act_by), (d.act_by - today).days, d.met)
            for d in timeline.deadlines
            if d.kind == "action"
        ]
        reminders = sorted(
            (value.split(" ", 1)[-1], key.split("|")[1] if "|" in key else key)
            for key, value in session.reminders_sent.items()
        )
        notes = await self.ws.notes.of(user)
        return self.ws.render(
            request,
            "case.html",
            ref=ref,
            key=str(user),
            session=session,
            answers=answers,
            events=events,
            verdict=verdict,
            checklist=checklist,
            deadlines=deadlines,
            reminders=reminders,
            channels=self.ws.applicants.linked_channels(user, data),
            notes=notes,
            handover=session.handover,
        )

    async def picture(self, request: web.Request) -> web.StreamResponse:
        user, data = await self._case(request)
        t = self.ws.text(request)
        timeline = timeline_of(self.ws.flows, data, self.ws.applicants.today())
        png = await asyncio.to_thread(render_timeline_png, timeline, t)
        return web.Response(body=png, content_type="image/png")

    async def tick(self, request: web.Request) -> web.StreamResponse:
        user, _ = await self._case(request)
        form = await request.post()
        item = str(form.get("item", ""))
        if item not in {i.id for i in self.ws.flows.items}:
            raise web.HTTPBadRequest()

        def change(data: dict[str, Any] | None) -> tuple[dict[str, Any] | None, bool]:
            if data is None:
                return None, False
            ticked = list(data.get("ticked") or [])
            now_ticked = item not in ticked
            ticked = [*ticked, item] if now_ticked else [i for i in ticked if i != item]
            return {**data, "ticked": ticked}, now_ticked

        now_ticked = await self.ws.engine.apply(user, change)
        await self.ws.audit.record(
            actor(request).name,
            "tick" if now_ticked else "untick",
            request.match_info["ref"],
            detail=item,
        )
        raise web.HTTPSeeOther(f"/agency/cases/{request.match_info['ref']}#checklist")

    async def add_note(self, request: web.Request) -> web.StreamResponse:
        user, _ = await self._case(request)
        form = await request.post()
        text = str(form.get("note", "")).strip()
        if text:
            staff = actor(request)
            await self.ws.notes.add(user, Note(staff.name, self.ws.now().isoformat(), text))
            await self.ws.applicants.refresh(user)  # the note's words become search terms
            await self.ws.audit.record(staff.name, "note", request.match_info["ref"])
        raise web.HTTPSeeOther(f"/agency/cases/{request.match_info['ref']}#notes")

    # --- deadlines ----------------------------------------------------------------------------

    async def _due(self, offset: int, limit: int) -> tuple[int, list[tuple[str, dict[str, Any]]]]:
        today = self.ws.applicants.today()
        found = await self.ws.applicants.due(today + dt.timedelta(days=HORIZON), offset, limit)
        return found.total, found.docs

    async def deadlines(self, request: web.Request) -> web.StreamResponse:
        try:
            page = max(1, int(request.query.get("page", "1")))
        except ValueError:
            page = 1
        total, docs = await self._due((page - 1) * PAGE, PAGE)
        today = self.ws.applicants.today()
        calendar = self.ws.flows.calendar
        rows = []
        for ref, doc in docs:
            act_by = dt.date.fromisoformat(doc["next"]["act_by"])
            working = calendar.working_days_between(today, act_by)
            rows.append((ref, doc, (act_by - today).days, working))
        await self.ws.audit.record(actor(request).name, "list-deadlines", detail=f"{total} due")
        return self.ws.render(
            request,
            "deadlines.html",
            rows=rows,
            total=total,
            page=page,
            pages=max(1, math.ceil(total / PAGE)),
            horizon=HORIZON,
            today=today,
        )

    async def deadlines_csv(self, request: web.Request) -> web.StreamResponse:
        t = self.ws.text(request)
        today = self.ws.applicants.today()
        calendar = self.ws.flows.calendar
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            [
                t("Applicant"),
                t("Deadline"),
                t("Act by"),
                t("Days left"),
                t("Working days left"),
                t("Estimated"),
            ]
        )
        offset, total = 0, 1
        while offset < total:
            total, docs = await self._due(offset, 1000)
            for _, doc in docs:
                due = doc["next"]
                act_by = dt.date.fromisoformat(due["act_by"])
                writer.writerow(
                    [
                        doc["key"],
                        t(due["title"]),
                        due["act_by"],
                        (act_by - today).days,
                        calendar.working_days_between(today, act_by),
                        "yes" if due.get("estimated") else "",
                    ]
                )
            offset += 1000
            if not docs:
                break
        await self.ws.audit.record(actor(request).name, "export-deadlines", detail=f"{total} rows")
        return web.Response(
            body=("\ufeff" + out.getvalue()).encode(),  # a BOM: Excel reads it as UTF-8
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="deadlines-{today}.csv"'},
        )
