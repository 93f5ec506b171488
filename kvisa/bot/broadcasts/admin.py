"""The agency admin's side: /broadcast in the chat, progress in the admin's chat, and the HTTP
admin API. Admins are the channel-qualified ids of KVISA_ADMINS; from anyone else an admin
command gets the ordinary unknown-command answer (the engine's turn gives it) and a log line.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from kvisa.bot.broadcasts import texts
from kvisa.bot.broadcasts.compose import Composer
from kvisa.bot.broadcasts.segment import Segment
from kvisa.bot.broadcasts.store import Broadcast, BroadcastStore
from kvisa.bot.i18n import N_, Catalogs, Lang, Text, lang_from_hint
from kvisa.bot.messages import Inbound, Outbound, UiOption
from kvisa.errors import InputError
from kvisa.identity import UserKey
from kvisa.storage.base import Storage

log = logging.getLogger(__name__)

ADMIN_COMMANDS = frozenset({"broadcast", "broadcasts", "broadcast_cancel"})
DRAFT_TTL = 24 * 3600.0
# Segments offered as buttons; any other can be typed (see bot/broadcasts/segment.py).
PRESETS: tuple[tuple[str, str], ...] = (
    ("", N_("Everyone")),
    ("reached=entered not_reached=work_permit_granted", N_("Entered China, no work permit yet")),
    ("not_reached=entered", N_("Not in China yet")),
    ("park=lingang", N_("Lingang")),
    ("park=zhangjiang", N_("Zhangjiang")),
)
SEND, DISCARD, SEGMENT = "bc:send", "bc:discard", "bc:seg:"


def draft_name(user: UserKey) -> str:
    """The storage value holding an admin's broadcast draft."""
    return f"bc:draft:{user}"


class AdminChat:
    """Intercepts admins' broadcast commands and drafts before the applicant's turn."""

    def __init__(
        self,
        admins: frozenset[UserKey],
        composer: Composer,
        store: BroadcastStore,
        catalogs: Catalogs,
        agency: Mapping[str, str],
    ) -> None:
        self.admins, self.composer, self.store, self.catalogs = admins, composer, store, catalogs
        self.agency = dict(agency)
        self.storage: Storage = store.storage

    async def __call__(self, inbound: Inbound) -> list[Outbound] | None:
        """Replies when this message is the admin's business, else None (the turn handles it)."""
        command = inbound.command
        if inbound.user not in self.admins:
            if command in ADMIN_COMMANDS:
                log.warning(
                    "admin command /%s refused for %s (not in KVISA_ADMINS)", command, inbound.user
                )
            return None
        draft = await self._draft(inbound.user)
        if command in ADMIN_COMMANDS or (command is None and draft is not None):
            t = await self._text(inbound)
            try:
                return await self._handle(inbound, t, draft)
            except InputError as exc:
                return [Outbound(t("That does not work: {problem}", problem=exc.expected))]
        if draft is not None:  # another command: the draft is abandoned
            await self._save_draft(inbound.user, None)
            if command == "cancel":
                return [Outbound((await self._text(inbound))("The broadcast draft is discarded."))]
        return None

    # --- state --------------------------------------------------------------------------------

    async def _text(self, inbound: Inbound) -> Text:
        record = await self.storage.get(inbound.user)
        lang: Lang = (
            record.data.get("lang", "en")
            if record and record.data
            else lang_from_hint(inbound.lang_hint)
        )
        return self.catalogs[lang]

    async def _draft(self, user: UserKey) -> dict[str, Any] | None:
        raw = await self.storage.get_value(draft_name(user))
        return json.loads(raw) if raw else None

    async def _save_draft(self, user: UserKey, draft: dict[str, Any] | None) -> None:
        if draft is None:
            await self.storage.delete_value(draft_name(user))
        else:
            await self.storage.set_value(
                draft_name(user), json.dumps(draft).encode(), ttl=DRAFT_TTL
            )

    # --- the conversation ---------------------------------------------------------------------

    async def _handle(
        self, inbound: Inbound, t: Text, draft: dict[str, Any] | None
    ) -> list[Outbound]:
        user, command = inbound.user, inbound.command
        if command == "broadcasts":
            recent = await self.store.recent(10)
            if not recent:
                return [Outbound(t("No broadcasts yet. Send /broadcast to write one."))]
            return [Outbound("\n\n".join(texts.progress(t, b) for b in recent))]
        if command == "broadcast_cancel":
            broadcast = await self.store.cancel(inbound.args.strip().lower())
            if broadcast is None:
                return [
                    Outbound(
                        t(
                            "There is no broadcast {id}. /broadcasts lists them.",
                            id=inbound.args.strip()[:16],
                        )
                    )
                ]
            if broadcast.status not in ("queued", "running"):
                return [
                    Outbound(
                        t(
                            "Broadcast {id} is already {status}.",
                            id=broadcast.id,
                            status=texts.status_name(t, broadcast),
                        )
                    )
                ]
            return [
                Outbound(
                    t("Broadcast {id} is being stopped; what was sent stays sent.", id=broadcast.id)
                )
            ]
        if command == "broadcast":
            await self._save_draft(user, {"step": "en"})
            return [
                Outbound(
                    t(
                        "New policy update. Send the English text (up to {limit} characters); "
                        "/cancel to stop.",
                        limit=texts.MAX_TEXT,
                    )
                )
            ]
        assert draft is not None
        steps = {
            "en": self._step_en,
            "zh": self._step_zh,
            "segment": self._step_segment,
            "confirm": self._step_confirm,
        }
        return await steps[draft["step"]](inbound, t, draft)

    async def _step_en(self, inbound: Inbound, t: Text, draft: dict[str, Any]) -> list[Outbound]:
        return await self._take_text(
            inbound,
            t,
            draft,
            "en",
            "zh",
            t("Now send the Chinese text. Both languages are required."),
        )

    async def _step_zh(self, inbound: Inbound, t: Text, draft: dict[str, Any]) -> list[Outbound]:
        return await self._take_text(inbound, t, draft, "zh", "segment", None)

    async def _take_text(
        self,
        inbound: Inbound,
        t: Text,
        draft: dict[str, Any],
        lang: Lang,
        following: str,
        ask: str | None,
    ) -> list[Outbound]:
        text = inbound.text or ""
        problem = texts.text_problem(t, lang, text)
        if problem:
            return [Outbound(problem)]
        draft[lang], draft["step"] = text.strip(), following
        await self._save_draft(inbound.user, draft)
        return [Outbound(ask)] if ask else [self._ask_segment(t)]

    def _ask_segment(self, t: Text) -> Outbound:
        return Outbound(
            t(
                "Who should receive it? Choose, or type a segment, for example:\n"
                "park=lingang reached=entered not_reached=work_permit_granted\n"
                "Keys: lang, park, plan, eligible, reached, not_reached, channel, active."
            ),
            options=tuple(
                UiOption(f"{SEGMENT}{n}", t(label)) for n, (_, label) in enumerate(PRESETS)
            ),
        )

    async def _step_segment(
        self, inbound: Inbound, t: Text, draft: dict[str, Any]
    ) -> list[Outbound]:
        chosen = self._chosen(inbound, [f"{SEGMENT}{n}" for n in range(len(PRESETS))])
        if chosen is not None:
            expression = PRESETS[int(chosen.removeprefix(SEGMENT))][0]
        elif inbound.text:
            expression = inbound.text
        else:
            return [self._ask_segment(t)]
        segment = Segment.parse(self.composer.flows, expression)
        audience = await self.composer.audience(segment)
        draft["segment"], draft["step"] = str(segment), "confirm"
        await self._save_draft(inbound.user, draft)
        preview = texts.message(self.catalogs, t.lang, draft["en"], draft["zh"], self.agency)
        return [
            Outbound(
                t("Preview (each applicant sees their own language first):") + "\n\n" + preview
            ),
            Outbound(
                "\n".join(
                    [
                        t("Segment: {segment}", segment=str(segment) or t("everyone")),
                        texts.audience(t, audience.per_channel, audience.outside_window),
                        t("Send it?"),
                    ]
                ),
                options=(UiOption(SEND, t("Send")), UiOption(DISCARD, t("Discard"))),
            ),
        ]

    async def _step_confirm(
        self, inbound: Inbound, t: Text, draft: dict[str, Any]
    ) -> list[Outbound]:
        chosen = self._chosen(inbound, [SEND, DISCARD])
        if chosen is None:
            return [
                Outbound(
                    t("Choose Send or Discard."),
                    options=(UiOption(SEND, t("Send")), UiOption(DISCARD, t("Discard"))),
                )
            ]
        await self._save_draft(inbound.user, None)
        if chosen == DISCARD:
            return [Outbound(t("The broadcast draft is discarded."))]
        segment = Segment.parse(self.composer.flows, draft["segment"])
        broadcast = await self.composer.create(
            draft["en"], draft["zh"], segment, author=str(inbound.user)
        )
        return [
            Outbound(
                t.plural(
                    "Broadcast {id} is queued for {n} recipient; its progress will follow here.",
                    "Broadcast {id} is queued for {n} recipients; its progress will follow here.",
                    broadcast.total,
                    id=broadcast.id,
                )
            )
        ]

    @staticmethod
    def _chosen(inbound: Inbound, ids: list[str]) -> str | None:
        """A button press, or its number typed (WeChat shows options as numbered lines)."""
        if inbound.option in ids:
            return inbound.option
        if inbound.option and inbound.option.startswith("#") and inbound.option[1:].isdigit():
            n = int(inbound.option[1:])
        elif inbound.text and inbound.text.strip().isdigit():
            n = int(inbound.text.strip())
        else:
            return None
        return ids[n - 1] if 1 <= n <= len(ids) else None


class Notifier:
    """Shows a broadcast's progress in the chat of the admin who sent it: one message edited in
    place where the platform can edit (Telegram), else a message at the start and at the end."""

    def __init__(self, channels: Mapping[str, Any], storage: Storage, catalogs: Catalogs) -> None:
        self.channels, self.storage, self.catalogs = channels, storage, catalogs

    async def __call__(self, broadcast: Broadcast) -> None:
        channel_name, sep, _ = broadcast.author.partition(":")
        channel = self.channels.get(channel_name)
        if not sep or channel is None:
            return  # from the CLI or the API: they poll the figures
        admin = UserKey.parse(broadcast.author)
        record = await self.storage.get(admin)
        t = self.catalogs[
            "zh" if record and record.data and record.data.get("lang") == "zh" else "en"
        ]
        message = Outbound(texts.progress(t, broadcast))
        final = broadcast.status in ("done", "cancelled")
        if broadcast.progress_ref is None:
            broadcast.progress_ref = await channel.post(admin, message) or "-"
        elif broadcast.progress_ref != "-":
            await channel.edit(admin, broadcast.progress_ref, message)
        elif final and broadcast.counts.get("pending", 0) != broadcast.total:
            await channel.send(admin, [message])


# --- the HTTP admin API ---------------------------------------------------------------------


def admin_routes(
    app: web.Application, token: str, composer: Composer, store: BroadcastStore
) -> None:
    """`Authorization: Bearer <KVISA_ADMIN_TOKEN>` on every request; 401 otherwise."""
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def authorised(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/admin/"):
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                log.warning(
                    "admin API: refused a request to %s without the right token", request.path
                )
                return web.json_response(
                    {"error": "unauthorized"}, status=401, headers={"WWW-Authenticate": "Bearer"}
                )
        response: web.StreamResponse = await handler(request)
        return response

    async def create(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.json_response({"error": "the body must be JSON"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "the body must be a JSON object"}, status=400)
        try:
            en, zh = composer.check_texts(body.get("en"), body.get("zh"))
            segment = Segment.from_json(composer.flows, body.get("segment"))
        except InputError as exc:
            return web.json_response({"error": exc.expected, "field": exc.field}, status=400)
        if body.get("dry_run"):
            audience = await composer.audience(segment)
            return web.json_response(
                {"dry_run": True, "segment": str(segment), **audience.to_json()}
            )
        broadcast = await composer.create(en, zh, segment, author="http")
        return web.json_response(
            broadcast.to_json(),
            status=201,
            headers={"Location": f"/admin/broadcasts/{broadcast.id}"},
        )

    async def show(request: web.Request) -> web.Response:
        broadcast = await store.get(request.match_info["id"])
        if broadcast is None:
            return web.json_response({"error": "no such broadcast"}, status=404)
        return web.json_response(broadcast.to_json())

    async def listing(request: web.Request) -> web.Response:
        return web.json_response({"broadcasts": [b.to_json() for b in await store.recent(50)]})

    async def cancel(request: web.Request) -> web.Response:
        broadcast = await store.cancel(request.match_info["id"])
        if broadcast is None:
            return web.json_response({"error": "no such broadcast"}, status=404)
        return web.json_response(
            {"id": broadcast.id, "cancelling": broadcast.status in ("queued", "running")}
        )

    app.middlewares.append(authorised)
    app.router.add_post("/admin/broadcasts", create)
    app.router.add_get("/admin/broadcasts", listing)
    app.router.add_get(r"/admin/broadcasts/{id:[0-9a-f]{6}|cv[0-9]{1,9}}", show)
    app.router.add_post(r"/admin/broadcasts/{id:[0-9a-f]{6}|cv[0-9]{1,9}}/cancel", cancel)
