"""The agency's workspace: server-rendered pages under /agency/ for the staff.

`Workspace` holds what the pages use; `Workspace.app()` builds the aiohttp sub-application
that `kvisa serve` mounts at /agency/. Every route declares the least role it needs (None:
signed out too); the middleware below signs the staff member in from the session cookie,
checks the CSRF token of every state-changing request, refuses a role that is not enough,
and adds the security headers (Content-Security-Policy first) to every answer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from kvisa.bot.broadcasts.compose import Composer
from kvisa.bot.broadcasts.store import BroadcastStore
from kvisa.bot.cases.applicants import Applicants
from kvisa.bot.cases.audit import AuditLog
from kvisa.bot.cases.notes import Notes
from kvisa.bot.clock import Clock
from kvisa.bot.content.model import Flows
from kvisa.bot.engine.engine import Engine
from kvisa.bot.i18n import N_, Catalogs, Lang, Text, lang_from_hint
from kvisa.bot.messages import Outbound
from kvisa.bot.workspace.accounts import Role, Staff, StaffStore, may
from kvisa.bot.workspace.security import Lockout, Sessions, StaffSession, client_address, same
from kvisa.errors import BotError
from kvisa.identity import UserKey

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
Sender = Callable[[UserKey, Sequence[Outbound]], Awaitable[None]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
STAFF_KEY: web.RequestKey[Staff] = web.RequestKey("staff", Staff)  # the signed-in member
SESSION_KEY: web.RequestKey[StaffSession] = web.RequestKey("session", StaffSession)


@dataclass(frozen=True)
class Section:
    """An entry of the navigation: a page of the workspace and the least role that sees it.

    The extension point for pages added by other features (the content editor of the
    versioned content, for one): `Workspace.sections.append(Section(...))` plus its routes
    in `Workspace.extra_routes`, and it appears in the navigation of every page."""

    path: str  # under /agency/
    label: str  # msgid
    role: Role


SECTIONS = [
    Section("cases", N_("Cases"), "viewer"),
    Section("deadlines", N_("Deadlines"), "viewer"),
    Section("conversations", N_("Conversations"), "viewer"),
    Section("broadcasts", N_("Broadcasts"), "viewer"),
    Section("batch", N_("Batch"), "agent"),
    Section("staff", N_("Staff"), "admin"),
]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # relative to /agency/
    handler: Handler
    role: Role | None  # None: open to anyone (the sign-in form)
    csrf_in_handler: bool = False  # a multipart upload checks its token as it reads


@dataclass
class Workspace:
    flows: Flows
    catalogs: Catalogs
    engine: Engine
    applicants: Applicants
    notes: Notes
    audit: AuditLog
    staff: StaffStore
    sessions: Sessions
    lockout: Lockout
    clock: Clock
    senders: Mapping[str, Sender]
    composer: Composer | None = None
    broadcasts: BroadcastStore | None = None
    agency: Mapping[str, str] = field(default_factory=dict)
    admins: frozenset[str] = frozenset()
    public_url: str | None = None
    alert_minutes: int = 30
    sections: list[Section] = field(default_factory=lambda: list(SECTIONS))
    extra_routes: list[Route] = field(default_factory=list)
    templates: jinja2.Environment = field(init=False)

    def __post_init__(self) -> None:
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    @property
    def storage(self) -> Any:
        return self.engine.storage

    def now(self) -> dt.datetime:
        return self.clock.now()

    # --- rendering ----------------------------------------------------------------------------

    def lang(self, request: web.Request) -> Lang:
        session = request.get(SESSION_KEY)
        if session is not None:
            return "zh" if session.lang == "zh" else "en"
        wanted = request.query.get("lang")
        if wanted in ("en", "zh"):
            return wanted  # type: ignore[return-value]
        return lang_from_hint(request.headers.get("Accept-Language", "")[:2])

    def text(self, request: web.Request) -> Text:
        return self.catalogs[self.lang(request)]

    def render(
        self, request: web.Request, template: str, status: int = 200, **values: Any
    ) -> web.Response:
        t = self.text(request)
        staff, session = request.get(STAFF_KEY), request.get(SESSION_KEY)
        page = self.templates.get_template(template).render(
            t=t,
            lang=t.lang,
            staff=staff,
            csrf=session.csrf if session else values.pop("csrf", ""),
            nav=[s for s in self.sections if staff is not None and may(staff.role, s.role)],
            here=request.path,
            may=lambda role: staff is not None and may(staff.role, role),
            **values,
        )
        return web.Response(text=page, status=status, content_type="text/html", charset="utf-8")

    def refuse(self, request: web.Request, status: int, message: str) -> web.Response:
        return self.render(request, "error.html", status=status, message=message)

    # --- running beside `kvisa serve` ---------------------------------------------------------

    def mount(self, app: web.Application) -> None:
        """Serve the workspace at /agency/ of `kvisa serve`'s HTTP server."""
        app.add_subapp("/agency", self.app())

    async def start(self) -> None:
        """Build the case index in the background when it needs it (one replica does, under a
        claim), and watch for conversations left unclaimed."""
        from kvisa.bot.workspace.pages_talk import UnclaimedWatch

        self._index_task = asyncio.create_task(self._build_index(), name="workspace-index")
        self._watch = UnclaimedWatch(self, self.engine.office_hours, self.applicants)
        self._watch.start()

    async def _build_index(self) -> None:
        try:
            if await self.storage.claim("workspace:index:building", 3600):
                try:
                    if await self.applicants.ensure_index():
                        log.info("workspace: the case index was built")
                finally:
                    await self.storage.release("workspace:index:building")
        except Exception:  # the pages still work on what is indexed; the next start retries
            log.exception("workspace: the case index could not be built")

    async def stop(self) -> None:
        watch, task = getattr(self, "_watch", None), getattr(self, "_index_task", None)
        if watch is not None:
            await watch.stop()
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self.applicants.catalog.close()

    # --- the application ----------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._headers, self._guard])
        routes = self.routes_table()
        self._routes: dict[Handler, Route] = {}
        for route in routes:
            app.router.add_route(route.method, "/" + route.path, route.handler)
            self._routes[route.handler] = route
        app.router.add_static("/static/", HERE / "static", append_version=False)
        return app

    def routes_table(self) -> list[Route]:
        """Every route of the workspace with the least role it needs."""
        from kvisa.bot.workspace import pages_admin, pages_batch, pages_cases, pages_talk

        return [
            Route("GET", "", self.index, None),
            Route("POST", "signin", self.sign_in, None),
            Route("POST", "signout", self.sign_out, "viewer"),
            Route("POST", "lang", self.switch_lang, "viewer"),
            *pages_cases.routes(self),
            *pages_talk.routes(self),
            *pages_admin.routes(self),
            *pages_batch.routes(self),
            *self.extra_routes,
        ]

    @web.middleware
    async def _headers(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # redirects and refusals raised by aiohttp or us
            exc.headers.update({k: v for k, v in HEADERS.items() if k not in exc.headers})
            raise
        except BotError:
            log.exception("a workspace page failed")
            t = self.text(request)
            response = self.refuse(request, 503, t("The storage did not answer. Try again."))
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        route = self._routes.get(handler)
        if route is None:  # static files, and aiohttp's own 404/405 answers
            return await handler(request)
        now = time.time()
        session = await self.sessions.read(request, now)
        staff = await self.staff.get(session.name) if session else None
        if session is not None and (
            staff is None or staff.disabled or staff.generation != session.generation
        ):
            await self.sessions.close(session)  # disabled or reset since: signed out
            session, staff = None, None
        if session is not None and staff is not None:
            request[SESSION_KEY], request[STAFF_KEY] = session, staff
        if route.role is None:
            return await handler(request)
        t = self.text(request)
        if staff is None or session is None:
            if request.method == "GET":
                raise web.HTTPSeeOther("/agency/")
            return self.refuse(request, 401, t("Sign in first."))
        if request.method != "GET" and not route.csrf_in_handler:
            token = request.headers.get("X-CSRF-Token")
            if token is None and request.content_type in (
                "application/x-www-form-urlencoded",
                "multipart/form-data",
            ):
                token = str((await request.post()).get("csrf", ""))
            if not same(token, session.csrf):
                log.warning(
                    "workspace: refused a request to %s with a wrong CSRF token", request.path
                )
                return self.refuse(
                    request, 403, t("This form has expired. Reload the page and try again.")
                )
        if not may(staff.role, route.role):
            log.warning("workspace: refused %s to a %s", request.path, staff.role)
            return self.refuse(request, 403, t("Your role does not allow this."))
        return await handler(request)

    # --- signing in and out -------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.StreamResponse:
        if request.get(STAFF_KEY) is not None:
            raise web.HTTPSeeOther("/agency/cases")
        return self._sign_in_form(request)

    def _sign_in_form(
        self, request: web.Request, problem: str = "", status: int = 200
    ) -> web.Response:
        token = self.sessions.pre_token(request)
        fresh = token is None
        token = token or secrets.token_urlsafe(24)
        response = self.render(request, "signin.html", status=status, problem=problem, csrf=token)
        if fresh:  # a token of its own for the form, in a signed cookie
            self.sessions.set_pre_token(response, token)
        return response

    async def sign_in(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        t = self.text(request)
        if not same(str(form.get("csrf", "")), self.sessions.pre_token(request)):
            return self.refuse(
                request, 403, t("This form has expired. Reload the page and try again.")
            )
        name = str(form.get("name", "")).strip().lower()[:64]
        password = str(form.get("password", ""))[:2048]
        address, now = client_address(request), time.time()
        if await self.lockout.locked(name, address, now):
            await self.audit.record(name or "-", "sign-in-locked", detail=address)
            return self._sign_in_form(
                request,
                t("Too many failed sign-ins. Try again in 15 minutes."),
                status=429,
            )
        staff = await self.staff.verify(name, password)
        if staff is None:
            await self.lockout.failed(name, address, now)
            await self.audit.record(name or "-", "sign-in-failed", detail=address)
            return self._sign_in_form(request, t("Wrong name or password."), status=401)
        await self.lockout.succeeded(name)
        session = await self.sessions.open(staff.name, staff.generation, self.lang(request), now)
        await self.audit.record(staff.name, "sign-in", detail=address)
        redirect = web.HTTPSeeOther("/agency/cases")
        self.sessions.set_cookie(redirect, session)
        raise redirect

    async def sign_out(self, request: web.Request) -> web.StreamResponse:
        session = request[SESSION_KEY]
        await self.sessions.close(session)
        await self.audit.record(session.name, "sign-out")
        redirect = web.HTTPSeeOther("/agency/")
        self.sessions.clear_cookie(redirect)
        raise redirect

    async def switch_lang(self, request: web.Request) -> web.StreamResponse:
        session = request[SESSION_KEY]
        form = await request.post()
        session.lang = "zh" if form.get("lang") == "zh" else "en"
        await self.sessions.save(session)
        back = str(form.get("back", ""))
        raise web.HTTPSeeOther(back if back.startswith("/agency/") else "/agency/cases")


def actor(request: web.Request) -> Staff:
    return request[STAFF_KEY]
