"""One turn of the conversation: (session, inbound) -> (new session, replies). Pure.

The storage layer may run a turn more than once (optimistic concurrency), so nothing here
performs I/O or reads a clock: time comes in on the Inbound.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from kvisa.bot.content.model import Condition, Flows, Question
from kvisa.bot.engine import reminders, render, reports
from kvisa.bot.engine.answers import (
    MAX_MESSAGE,
    Rejected,
    match_option,
    parse_typed,
    readable,
    typed,
)
from kvisa.bot.engine.session import Session
from kvisa.bot.engine.types import Inbound, Outbound, UiOption
from kvisa.bot.i18n import LANGS, N_, Catalogs, Lang, Text, lang_from_hint
from kvisa.bot.policy.eligibility import Assessment, assess, facts_of
from kvisa.bot.policy.zones import zone_choices

SHANGHAI = ZoneInfo("Asia/Shanghai")
WHY, TODAY, DONE = "_why", "_today", "_done"
REPORT_KINDS = frozenset({"report", "event_date", "event_confirm", "deficiency"})
MENU = (
    ("timeline", N_("My timeline")),
    ("checklist", N_("My checklist")),
    ("edit", N_("Change an answer")),
    ("faq", N_("Common questions")),
    ("parks", N_("Park perks")),
)


def may_hold(condition: Condition | None, facts: dict[str, Any]) -> bool:
    """False only when a known fact already rules the condition out (for the progress count)."""
    return condition is None or condition.may_hold(facts)


# A question's options in one language (see Turn.options_for): the same for every user.
OptionsMemo = dict[tuple[str, Lang], tuple[UiOption, ...]]


class Turn:
    def __init__(
        self,
        flows: Flows,
        catalogs: Catalogs,
        data: dict[str, Any] | None,
        inbound: Inbound,
        options_memo: OptionsMemo | None = None,
    ) -> None:
        """`options_memo`, kept by the caller from turn to turn (the engine does), saves
        translating the same options on every turn; a turn of its own gets a fresh one."""
        self.flows, self.catalogs, self.inbound = flows, catalogs, inbound
        self.options_memo: OptionsMemo = {} if options_memo is None else options_memo
        self.is_new = data is None
        self.session = Session.from_json(data) if data else Session.new(inbound.lang_hint)
        if inbound.lang_hint and not self.session.lang_chosen:
            self.session.lang = lang_from_hint(inbound.lang_hint)
        self.today = inbound.at.astimezone(SHANGHAI).date()
        self.out: list[Outbound] = []
        self.deleted = False

    @property
    def t(self) -> Text:
        return self.catalogs[self.session.lang]

    # --- entry point -------------------------------------------------------------------------

    def run(self) -> tuple[dict[str, Any] | None, list[Outbound]]:
        inbound = self.inbound
        if inbound.command is not None:
            self.command(inbound.command, inbound.args)
        elif self.is_new or self.session.awaiting is None and not self.session.consented:
            self.welcome()
        elif inbound.option is not None and inbound.option.startswith(reminders.PREFIX):
            reminders.action(self, inbound.option)  # a reminder's button: valid whatever is asked
        elif inbound.option is not None:
            if inbound.prompt is not None and inbound.prompt != self.session.prompt:
                self.say(
                    self.t("That button belongs to an earlier question. Here is the current one.")
                )
                self.ask_current()
            else:
                self.choose(self.option_by_position(inbound.option))
        else:
            self.typed(inbound.text or "")
        if self.deleted:
            return None, self.out
        self.session.last_seen, self.session.inactive = inbound.at.isoformat(), False
        if self.is_new and not self.session.consented and self.session.awaiting is None:
            return None, self.out  # nothing worth keeping for someone who has not agreed
        return self.session.to_json(), self.out

    # --- output helpers ----------------------------------------------------------------------

    def say(self, text: str) -> None:
        self.out.append(Outbound(text))

    def prompt(self, text: str, options: list[UiOption]) -> None:
        self.session.prompt += 1
        self.out.append(Outbound(text, tuple(options), prompt=self.session.prompt))

    def options_for(self, kind: str | None, lang: Lang | None = None) -> list[UiOption]:
        """The options of the current prompt, rebuilt from the session (deterministic)."""
        t, s = self.catalogs[lang or self.session.lang], self.session
        if kind == "consent":
            return [UiOption("agree", t("I agree")), UiOption("decline", t("No, thanks"))]
        if kind == "question":
            question = self.flows.question(s.awaiting["id"])  # type: ignore[index]
            if question.kind == "zone":  # the clocks of the country answered: built each time
                return self.zone_options(t) + [UiOption(WHY, t("Why do you ask?"))]
            known = self.options_memo.get((question.id, t.lang))
            if known is None:
                options = [UiOption(o.id, t(o.label)) for o in question.options]
                if question.date and question.date.default:
                    options.append(UiOption(TODAY, t("Today")))
                known = self.options_memo[(question.id, t.lang)] = (
                    *options,
                    UiOption(WHY, t("Why do you ask?")),
                )
            return list(known)
        if kind == "edit":
            return [
                UiOption(
                    q.id, render.pair(t, t(q.short), render.answer_label(t, q, s.answers[q.id]))
                )
                for q in self.flows.questions
                if q.id in s.answers
            ]
        if kind == "lang":
            return [UiOption("en", "English"), UiOption("zh", "中文")]
        if kind == "confirm":
            return [UiOption("yes", t("Yes, go ahead")), UiOption("no", t("No, keep it"))]
        if kind == "checklist":
            done = set(s.ticked)
            items = [
                UiOption(e.item.id, ("☑ " if e.item.id in done else "☐ ") + t(e.item.title))
                for e in self.assessment().checklist
            ]
            return items + [UiOption(DONE, t("Done"))]
        if kind == "faq":
            return [UiOption(e.id, t(e.question)) for e in self.flows.faq] + [
                UiOption(DONE, t("Done"))
            ]
        if kind == "menu":
            return [UiOption(cmd, t(label)) for cmd, label in MENU]
        if kind in REPORT_KINDS:
            return reports.options(self, kind, t)
        if kind == "reminders":
            return reminders.options(self, t)
        return []

    def zone_options(self, t: Text) -> list[UiOption]:
        """The clocks of the country of residence, west to east; the id is the zone's name."""
        country = self.session.answers.get("residence_country")
        return (
            [UiOption(c.zone, c.label(t.locale)) for c in zone_choices(country)] if country else []
        )

    def ask_current(self) -> None:
        """(Re-)send whatever the session is waiting for."""
        kind = self.session.awaiting_kind()
        t = self.t
        if kind == "question":
            self.ask(self.flows.question(self.session.awaiting["id"]))  # type: ignore[index]
        elif kind == "consent":
            self.prompt(
                t(
                    "Before we start: to assess your case we store your answers (degree, dates, "
                    "countries, plans), only to give you a verdict, a checklist and deadlines. "
                    "No passport number, no name. See it all with /mydata; erase it with /delete. "
                    "Do you agree?"
                ),
                self.options_for(kind),
            )
        elif kind == "edit":
            self.prompt(t("Which answer do you want to change?"), self.options_for(kind))
        elif kind == "lang":
            self.prompt(t("Choose your language:"), self.options_for(kind))
        elif kind == "confirm":
            action = self.session.awaiting["action"]  # type: ignore[index]
            question = (
                t("Erase everything we store about you? This cannot be undone.")
                if action == "delete"
                else t("Clear all your answers and start the interview again?")
            )
            self.prompt(question, self.options_for(kind))
        elif kind == "checklist":
            self.prompt(
                render.checklist(t, self.flows, self.assessment(), self.session.ticked),
                self.options_for(kind),
            )
        elif kind == "faq":
            self.prompt(t("Choose a question:"), self.options_for(kind))
        elif kind == "menu":
            self.prompt(t("What would you like to do next?"), self.options_for(kind))
        elif kind in REPORT_KINDS:
            self.prompt(reports.prompt_text(self, kind), self.options_for(kind))
        elif kind == "reminders":
            self.prompt(reminders.prompt_text(self), self.options_for(kind))
        else:
            self.welcome()

    def await_(self, kind: str, **extra: Any) -> None:
        self.session.awaiting = {"kind": kind, **extra}
        self.ask_current()

    # --- the interview -----------------------------------------------------------------------

    def facts(self) -> dict[str, Any]:
        return facts_of(self.flows, self.typed_answers())

    def typed_answers(self) -> dict[str, Any]:
        return {
            q.id: typed(q, self.session.answers[q.id])
            for q in self.flows.questions
            if q.id in self.session.answers
        }

    def visible(self, question: Question, facts: dict[str, Any]) -> bool:
        return question.when is None or question.when.holds(facts)

    def prune(self) -> None:
        """Drop answers to questions that no longer apply (after an answer changed)."""
        s = self.session
        kept: dict[str, Any] = {}
        typed_kept: dict[str, Any] = {}
        for question in self.flows.questions:
            if question.id not in s.answers:
                continue
            if question.when is not None and not question.when.holds(
                facts_of(self.flows, typed_kept)
            ):
                continue
            if question.kind == "zone" and not any(
                s.answers[question.id] == c.zone
                for c in zone_choices(kept.get("residence_country", ""))
            ):
                continue  # a clock of the previous country of residence
            kept[question.id] = s.answers[question.id]
            typed_kept[question.id] = typed(question, kept[question.id])
        s.answers = kept

    def assessment(self) -> Assessment:
        return assess(self.flows, self.typed_answers(), self.today)

    def summary(self) -> dict[str, Any]:
        result = self.assessment()
        return {
            "eligible": result.eligible,
            "channels": list(result.channels),
            "checklist": list(result.checklist_ids),
        }

    def ask(self, question: Question) -> None:
        t, s = self.t, self.session
        s.awaiting = {"kind": "question", "id": question.id}
        facts = self.facts()
        shown = [q for q in self.flows.questions if q.id == question.id or may_hold(q.when, facts)]
        number = next(i for i, q in enumerate(shown, 1) if q.id == question.id)
        lines = [f"({number}/{len(shown)}) {t(question.text)}"]
        if question.kind == "date":
            lines.append(t("Type a date like 1998-04-27."))
        elif question.kind == "country":
            lines.append(
                t("Type the country's name in English or Chinese, or its two-letter code.")
            )
        if question.id in s.answers:
            lines.append(
                t(
                    "Current answer: {answer}",
                    answer=render.answer_label(t, question, s.answers[question.id]),
                )
            )
        self.prompt("\n".join(lines), self.options_for("question"))

    def advance(self) -> None:
        """Ask the next question: the edit queue first, then the first unanswered; else the verdict."""
        s = self.session
        facts = self.facts()
        queue = s.edit["queue"] if s.edit else []
        while queue:
            question = self.flows.question(queue[0])
            if self.visible(question, facts):
                return self.ask(question)
            queue.pop(0)
        for question in self.flows.questions:
            if question.id not in s.answers and self.visible(question, facts):
                return self.ask(question)
        self.finish()

    def finish(self) -> None:
        s, t = self.session, self.t
        result = self.assessment()
        before = s.edit.get("before") if s.edit else None
        if before is not None:
            self.say(render.change_summary(t, self.flows, before, result))
        s.edit = None
        s.finished = True
        s.ticked = [i for i in s.ticked if i in result.checklist_ids]
        self.say(render.verdict(t, self.flows, result, self.typed_answers()))
        self.await_("menu")

    def record(self, question: Question, value: Any) -> None:
        s = self.session
        changed = question.id in s.answers and s.answers[question.id] != value
        if changed and s.edit is None:
            s.edit = {"queue": [], "before": self.summary() if s.finished else None}
        s.answers[question.id] = value
        self.prune()
        if s.edit is not None:
            queue = [q for q in s.edit["queue"] if q != question.id]
            if changed:
                dependents = self.flows.dependents([question.id])
                queue += [
                    q.id for q in self.flows.questions if q.id in dependents and q.id not in queue
                ]
            s.edit["queue"] = queue
        self.advance()

    def answer_question(self, question: Question, option_id: str | None, text: str | None) -> None:
        t = self.t
        if option_id == WHY:
            self.say("ℹ️ " + t(question.why))
            return self.ask(question)
        if option_id == TODAY:
            return self.record(question, self.today.isoformat())
        if option_id is not None and question.kind == "zone":
            return self.record(question, option_id)  # choose() checked it is one of the clocks
        if option_id is not None:
            option = question.option(option_id)
            if option is None:
                return self.stale()
            return self.record(question, option.value)
        value = parse_typed(question, text or "", self.today)
        if isinstance(value, Rejected):
            self.say(t(value.hint, **value.params))
            return self.ask(question)
        self.record(question, value)

    # --- input dispatch ----------------------------------------------------------------------

    def stale(self) -> None:
        self.say(self.t("That choice is no longer available. Here is the current question."))
        self.ask_current()

    def typed(self, text: str) -> None:
        t, s = self.t, self.session
        if not text.strip():
            self.say(
                t("I received an empty message. Please type your answer, or choose an option.")
            )
            return self.ask_current()
        if text.strip().startswith(reminders.PREFIX):
            return reminders.action(self, text.strip())  # a reminder's option typed (console)
        if len(text) > MAX_MESSAGE:
            self.say(
                t(
                    "That message is too long for me ({length} characters). Please answer in a few words.",
                    length=len(text),
                )
            )
            return self.ask_current()
        if not readable(text):
            self.say(
                t(
                    "I could not read that (emoji or symbols only). Please answer in words or numbers."
                )
            )
            return self.ask_current()
        kind = s.awaiting_kind()
        options = self.options_for(kind)
        if options:
            labels = self.labels_in_all_languages(kind)
            chosen = match_option(text, options, labels)
            if chosen is not None:
                return self.choose(chosen.id)
            if (
                text.strip().isdigit()
                and kind != "event_date"
                and (kind != "question" or self.current_question().kind != "date")
            ):
                self.say(t("Please choose a number from 1 to {count}.", count=len(options)))
                return self.ask_current()
        if kind == "question":
            return self.answer_question(self.current_question(), None, text)
        if kind == "event_date":
            return reports.typed(self, text)
        if kind in (None, "menu"):
            self.say(t("I did not understand that. Choose an option below or send /help."))
        else:
            self.say(t("Please choose one of the options, by its number or its name."))
        self.ask_current()

    def option_by_position(self, option: str) -> str:
        """`#3` is the third option of the current prompt (for platforms that limit button data)."""
        if option.startswith("#") and option[1:].isdigit():
            options = self.options_for(self.session.awaiting_kind())
            index = int(option[1:])
            return options[index - 1].id if 1 <= index <= len(options) else ""
        return option

    def current_question(self) -> Question:
        return self.flows.question(self.session.awaiting["id"])  # type: ignore[index]

    def labels_in_all_languages(self, kind: str | None) -> dict[str, list[str]]:
        labels: dict[str, list[str]] = {}
        for lang in LANGS:
            for option in self.options_for(kind, lang):
                labels.setdefault(option.id, []).append(option.label.lstrip("☐☑ "))
        return labels

    def choose(self, option_id: str) -> None:
        s, t = self.session, self.t
        kind = s.awaiting_kind()
        if option_id not in {o.id for o in self.options_for(kind)}:
            return self.stale()
        if option_id.startswith(reminders.PREFIX):
            return reminders.action(self, option_id)
        if kind == "question":
            return self.answer_question(self.current_question(), option_id, None)
        if kind == "consent":
            return self.consent(option_id == "agree")
        if kind == "edit":
            s.edit = {"queue": [option_id], "before": self.summary() if s.finished else None}
            return self.ask(self.flows.question(option_id))
        if kind == "lang":
            return self.set_language(option_id)  # type: ignore[arg-type]
        if kind == "confirm":
            return self.confirmed(s.awaiting["action"], option_id == "yes")  # type: ignore[index]
        if kind == "checklist":
            if option_id == DONE:
                return self.resume()
            s.ticked = (
                [i for i in s.ticked if i != option_id]
                if option_id in s.ticked
                else s.ticked + [option_id]
            )
            return self.ask_current()
        if kind == "faq":
            if option_id == DONE:
                return self.resume()
            entry = next(e for e in self.flows.faq if e.id == option_id)
            self.say(
                f"{t(entry.question)}\n{t(entry.answer)}\n{render.source_note(t, self.flows, entry.source)}"
            )
            return self.ask_current()
        if kind == "menu":
            return self.command(option_id, "")
        if kind in REPORT_KINDS:
            return reports.choose(self, kind, option_id)
        if kind == "reminders":  # only "Done" is left: the switch was handled above
            return self.resume()

    def resume(self) -> None:
        """Back to the interview where it stood, or to the menu when it is done."""
        s = self.session
        if not s.consented:
            s.awaiting = {"kind": "consent"}
            return self.ask_current()
        if s.finished and not s.edit:
            s.awaiting = {"kind": "menu"}
            return self.ask_current()
        self.advance()

    def set_language(self, lang: Lang) -> None:
        self.session.lang, self.session.lang_chosen = lang, True
        self.say(
            self.t("Language set to English.")
            if lang == "en"
            else self.t("Language set to Chinese.")
        )
        self.resume()

    def welcome(self) -> None:
        self.say(
            self.t(
                "Hello! I help young STEM talents with China's K visa: whether and how you qualify, "
                "your documents, and your deadlines in Shanghai. Send /lang to change language "
                "(English / 中文), /help for all commands."
            )
        )
        self.session.awaiting = {"kind": "consent"}
        self.ask_current()

    def consent(self, agreed: bool) -> None:
        s, t = self.session, self.t
        if not agreed:
            self.say(
                t(
                    "Understood: we store nothing. You can still read /faq and /parks, "
                    "and send /start if you change your mind."
                )
            )
            self.deleted = True
            return
        s.consent_at = self.inbound.at.isoformat()
        for qid, value in s.prefill.items():
            s.answers[qid] = value
            self.say(
                t(
                    "Park from your link: {park}. You can change it with /edit.",
                    park=render.answer_label(t, self.flows.question(qid), value),
                )
            )
        s.prefill = {}
        self.advance()

    def confirmed(self, action: str, yes: bool) -> None:
        s, t = self.session, self.t
        if not yes:
            self.say(t("Nothing was changed."))
            return self.resume()
        if action == "delete":
            self.say(t("All your data has been erased. Send /start if you want to begin again."))
            self.deleted = True
            return
        s.answers, s.edit, s.finished, s.ticked = {}, None, False, []
        s.events, s.deficiency_tolerance = {}, None
        s.snoozed, s.reminders_dismissed = {}, {}
        self.say(t("Your answers are cleared. Let's start again."))
        self.advance()

    # --- commands ----------------------------------------------------------------------------

    def command(self, name: str, args: str) -> None:
        from kvisa.bot.engine.commands import run_command

        run_command(self, name, args)
