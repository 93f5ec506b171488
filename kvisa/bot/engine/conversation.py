"""What a handler may read and do during one turn: the only thing handlers know of the engine.

A turn (engine/turn.py) implements it; handlers (engine/handlers/) receive it and never import
the turn or each other. Everything here is pure: replies are collected, state is changed in
memory, and the engine saves both once the turn is over.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from kvisa.bot.applicants import LinkContext
from kvisa.bot.content.model import Flows, Question
from kvisa.bot.i18n import Lang, Text
from kvisa.bot.messages import Inbound, Outbound, UiOption
from kvisa.bot.policy.eligibility import Assessment
from kvisa.bot.policy.timeline import Timeline
from kvisa.bot.session import Kind, Outcome, Session

T = TypeVar("T")


class Conversation(Protocol):
    """One turn of one user's conversation."""

    flows: Flows
    session: Session
    inbound: Inbound
    today: dt.date  # in Shanghai, where deadlines are counted
    link: LinkContext | None  # what the engine found out for a turn about linking

    @property
    def t(self) -> Text:
        """The reader's language."""

    def text_in(self, lang: Lang) -> Text:
        """Another language (options are matched in both)."""

    def shared(self, key: tuple[str, ...], build: Callable[[], T]) -> T:
        """A value that is the same for every user of this content (a question's translated
        options): built once, kept from turn to turn."""

    # --- replies -----------------------------------------------------------------------------

    def say(self, text: str) -> None:
        """A message without options."""

    def send(self, outbound: Outbound) -> None:
        """A message as built (with attachments)."""

    def prompt(self, text: str, options: Sequence[UiOption]) -> None:
        """A message whose options answer the pending prompt (a stale button is recognised)."""

    # --- where the conversation goes ---------------------------------------------------------

    def wait(self, kind: Kind, subject: str = "", day: dt.date | None = None) -> None:
        """Make `kind` the pending prompt and ask it."""

    def ask_current(self) -> None:
        """Ask the pending prompt again."""

    def resume(self) -> None:
        """Back to the interview where it stood, or to the menu when it is done."""

    def stale(self) -> None:
        """The choice made is no longer offered: say so and ask the current prompt."""

    def welcome(self) -> None:
        """Greet and ask for consent."""

    def erase(self) -> None:
        """Keep nothing about this user once the turn is over."""

    def run_command(self, name: str, args: str = "") -> None:
        """Run a command as if it had been sent (the menu's entries)."""

    def commands(self) -> Sequence[tuple[str, str]]:
        """Every command and its help summary (a msgid), in help order."""

    def free_text(self, text: str) -> bool:
        """Typed text that answers nothing pending, read as a question in the applicant's own
        words; False when it is none we can deal with (the caller says what it expected)."""

    # --- linking (the engine writes what these ask once the turn is saved) ------------------

    def join(self, target: str, keep: str) -> None:
        """Link this channel identity to the applicant `target`; `keep` "mine" makes this
        identity's profile the applicant's, "theirs" keeps the applicant's."""

    def unlink(self, identity: str) -> None:
        """Separate `identity` from this applicant; it gets its own copy of the profile."""

    def tell(self, identity: str, text: str) -> None:
        """A message to another channel identity of the applicant, sent after the turn."""

    # --- the interview -----------------------------------------------------------------------

    def ask(self, question: Question) -> None:
        """Ask an interview question."""

    def record(self, question: Question, value: Any) -> None:
        """Keep an answer and ask what comes next (or give the verdict)."""

    def advance(self) -> None:
        """Ask the next question, or give the verdict when none is left."""

    def begin_edit(self) -> None:
        """Start changing answers (to say what changed once the interview is done again)."""

    # --- what the answers mean ---------------------------------------------------------------

    def answers(self) -> dict[str, Any]:
        """The answers as the policy reads them (dates as dates)."""

    def facts(self) -> dict[str, Any]:
        """The answers and the facts derived from them."""

    def assessment(self) -> Assessment:
        """The verdict and checklist on the current answers."""

    def outcome(self) -> Outcome:
        """The verdict in brief."""

    def timeline(self) -> Timeline:
        """Deadlines and decision windows from the answers and reported steps."""
