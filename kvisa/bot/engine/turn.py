"""One turn of the conversation: (session, inbound) -> (new session, replies). Pure.

The storage layer may run a turn more than once (optimistic concurrency), so nothing here
performs I/O or reads a clock: time comes in on the Inbound. What each command and prompt does
is in the handlers (engine/handlers/), found through the registry; the turn only dispatches.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from kvisa.bot import applicants
from kvisa.bot.applicants import LinkContext
from kvisa.bot.content.model import Flows, Question
from kvisa.bot.engine import interview, reading, render
from kvisa.bot.engine.choice import cleaned
from kvisa.bot.engine.handlers import REGISTRY
from kvisa.bot.engine.registry import Prompt, Registry
from kvisa.bot.i18n import Catalogs, Lang, Text, lang_from_hint
from kvisa.bot.messages import Inbound, Outbound, UiOption
from kvisa.bot.policy.answers import answer_values
from kvisa.bot.policy.eligibility import Assessment, assess, facts_of
from kvisa.bot.policy.reminders import timeline_of
from kvisa.bot.policy.timeline import Timeline
from kvisa.bot.policy.zones import shanghai_today
from kvisa.bot.session import Edit, Kind, Outcome, Session, Waiting
from kvisa.identity import UserKey

T = TypeVar("T")
Shared = dict[tuple[str, ...], Any]  # see Conversation.shared; kept by the engine


class Turn:
    """Implements Conversation (engine/conversation.py) for one inbound message."""

    def __init__(
        self,
        flows: Flows,
        catalogs: Catalogs,
        data: dict[str, Any] | None,
        inbound: Inbound,
        shared: Shared | None = None,
        registry: Registry = REGISTRY,
        link: LinkContext | None = None,
    ) -> None:
        inbound = cleaned(inbound)  # no control character is matched, echoed or stored
        self.flows, self.catalogs, self.inbound, self.registry = flows, catalogs, inbound, registry
        self._shared: Shared = {} if shared is None else shared
        self.is_new = data is None
        self.session = Session.from_json(data) if data else Session.new(inbound.lang_hint)
        # A question removed from the flows since this session was stored (nationality).
        self.prompt_removed = interview.forget_removed(flows, self.session)
        if inbound.lang_hint and not self.session.lang_chosen:
            self.session.lang = lang_from_hint(inbound.lang_hint)
        self.today = shanghai_today(inbound.at)
        self.out: list[Outbound] = []
        self.erased = False
        self.link = link
        self.key = UserKey.parse(self.session.identities[0]) if self.session.identities else None
        self.join_to: tuple[str, str] | None = None  # (applicant, "mine" or "theirs")
        self.leaving: UserKey | None = None
        self.left: dict[str, Any] | None = None  # what `leaving` gets back under its own key
        self.notices: dict[str, list[Outbound]] = {}

    @property
    def t(self) -> Text:
        return self.catalogs[self.session.lang]

    def text_in(self, lang: Lang) -> Text:
        return self.catalogs[lang]

    def shared(self, key: tuple[str, ...], build: Callable[[], T]) -> T:
        value: T = (
            self._shared[key] if key in self._shared else self._shared.setdefault(key, build())
        )
        return value

    def run(self) -> tuple[dict[str, Any] | None, list[Outbound]]:
        inbound, session = self.inbound, self.session
        if not session.identities:
            session.identities = [str(inbound.user)]
        if self.link is not None and self.link.kind == "joined":
            self.run_command("link")  # the link just made: say so, and where things stand
        elif any(gate(self) for gate in self.registry.gates):
            pass  # taken (a conversation with a person): no handler runs
        elif inbound.command is not None:
            self.run_command(inbound.command, inbound.args)
        elif self.is_new or session.awaiting is None and not session.consented:
            # A first message that is a question we can answer for sure: the answer, then the
            # welcome (ask_current welcomes when nothing is pending).
            if not (inbound.text and self.free_text(inbound.text)):
                self.welcome()
        elif self.prompt_removed:
            self.resume()  # a reply to a question no longer asked: ask the current one
        elif inbound.option is not None:
            reading.pressed(self, inbound.option, inbound.prompt)
        else:
            reading.typed(self, inbound.text or "")
        if self.erased:
            return None, self.out
        me = str(inbound.user)
        session.last_seen = session.seen[me] = inbound.at.isoformat()
        if session.blocked:
            session.blocked = [i for i in session.blocked if i != me]
        session.inactive = False
        session.retention_notice_at = None
        if self.join_to is not None:  # this identity's record becomes a forward
            target, keep = self.join_to
            session.link_offer = None
            kept = session.to_json() if applicants.has_profile(session.to_json()) else None
            if kept is None and session.consented:
                kept = {"consent_at": session.consent_at, "seen": dict(session.seen)}
            link_id = f"{inbound.user}@{inbound.at.isoformat()}"
            fwd = applicants.forward(UserKey.parse(target), keep, link_id, kept, inbound.at)
            return fwd, self.out
        if self.is_new and not session.consented and session.awaiting is None:
            return None, self.out  # nothing worth keeping for someone who has not agreed
        data = session.to_json()
        if self.leaving is not None and self.key is not None:
            data, self.left = applicants.separated(self.key, data, self.leaving, inbound.at)
        return data, self.out

    # --- linking (engine/links.py does the I/O) ----------------------------------------------

    def join(self, target: str, keep: str) -> None:
        self.join_to = (target, keep)

    def unlink(self, identity: str) -> None:
        self.leaving = UserKey.parse(identity)

    def tell(self, identity: str, text: str) -> None:
        self.notices.setdefault(identity, []).append(Outbound(text))

    # --- replies -----------------------------------------------------------------------------

    def say(self, text: str) -> None:
        self.out.append(Outbound(text))

    def send(self, outbound: Outbound) -> None:
        self.out.append(outbound)

    def prompt(self, text: str, options: Sequence[UiOption]) -> None:
        self.session.prompt += 1
        self.out.append(Outbound(text, tuple(options), prompt=self.session.prompt))

    # --- the pending prompt ------------------------------------------------------------------

    def pending(self) -> Prompt | None:
        kind = self.session.waiting_kind
        return self.registry.prompts[kind] if kind is not None else None

    def options(self, lang: Lang | None = None) -> list[UiOption]:
        """The options of the pending prompt, rebuilt from the session (deterministic)."""
        prompt = self.pending()
        return prompt.options(self, self.catalogs[lang or self.session.lang]) if prompt else []

    def wait(self, kind: Kind, subject: str = "", day: dt.date | None = None) -> None:
        self.session.awaiting = Waiting(kind, subject, day)
        self.ask_current()

    def ask_current(self) -> None:
        prompt = self.pending()
        if prompt is None:
            return self.welcome()
        self.prompt(prompt.text(self), self.options())

    def stale(self) -> None:
        self.say(self.t("That choice is no longer available. Here is the current question."))
        self.ask_current()

    def welcome(self) -> None:
        self.say(
            self.t(
                "Hello! I help young STEM talents with China's K visa: whether and how you "
                "qualify, your documents, and your deadlines in Shanghai. Send /lang to change "
                "language (English / 中文), /help for all commands."
            )
        )
        self.wait(Kind.CONSENT)

    def erase(self) -> None:
        self.erased = True

    # --- input -------------------------------------------------------------------------------

    def run_command(self, name: str, args: str = "") -> None:
        command = self.registry.commands.get(name)
        if command is None:
            t = self.t
            self.say(
                t("I don't know the command /{name}.", name=name[:32])
                + "\n\n"
                + render.help_text(t, self.commands())
            )
            return self.ask_current() if not self.is_new else self.welcome()
        if command.needs_consent and not self.session.consented:
            return self.welcome()
        command.run(self, args)

    def commands(self) -> Sequence[tuple[str, str]]:
        return self.registry.listed()

    def free_text(self, text: str) -> bool:
        read = self.registry.free_text
        return read is not None and read(self, text)

    # --- the interview (engine/interview.py) -------------------------------------------------

    def ask(self, question: Question) -> None:
        self.wait(Kind.QUESTION, question.id)

    def record(self, question: Question, value: Any) -> None:
        interview.record(self, question, value)

    def advance(self) -> None:
        interview.advance(self)

    def resume(self) -> None:
        interview.resume(self)

    def begin_edit(self) -> None:
        self.session.edit = Edit(before=self.outcome() if self.session.finished else None)

    # --- what the answers mean ---------------------------------------------------------------

    def answers(self) -> dict[str, Any]:
        return answer_values(self.flows, self.session.answers)

    def facts(self) -> dict[str, Any]:
        return facts_of(self.flows, self.answers())

    def assessment(self) -> Assessment:
        return assess(self.flows, self.answers(), self.today)

    def outcome(self) -> Outcome:
        result = self.assessment()
        return Outcome(result.eligible, tuple(result.channels), tuple(result.checklist_ids))

    def timeline(self) -> Timeline:
        s = self.session
        state = {
            "answers": s.answers,
            "events": s.events,
            "deficiency_tolerance": s.deficiency_tolerance,
        }
        return timeline_of(self.flows, state, self.today)
