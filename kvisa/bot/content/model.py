"""The typed form of flows/: what the engine and the policy read. Texts are gettext msgids."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from kvisa.bot.content.calendar import WorkCalendar

if TYPE_CHECKING:
    from kvisa.bot.content.asked import FaqIndex

QuestionKind = Literal["choice", "yesno", "date", "country", "text", "zone"]
# "zone": one of the clocks of the country of residence; the options are built when asked.
QUESTION_KINDS: tuple[QuestionKind, ...] = ("choice", "yesno", "date", "country", "text", "zone")
# Facts kvisa.bot.policy computes from answers, and the answers each is computed from (so that
# changing such an answer re-asks the questions that depend on the fact).
COMPUTED_FROM: Mapping[str, frozenset[str]] = {
    "residence_zones_many": frozenset({"residence_country"})
}


@dataclass(frozen=True)
class Condition:
    """`{fact: [allowed values]}`: holds when every fact is known and has an allowed value.

    A fact whose value is a list (such as `channels`) holds when any element is allowed.
    """

    terms: tuple[tuple[str, frozenset[Any]], ...]

    @property
    def facts(self) -> frozenset[str]:
        return frozenset(name for name, _ in self.terms)

    def holds(self, facts: Mapping[str, Any]) -> bool:
        # A loop, not all(...): conditions are tested on every turn.
        for name, allowed in self.terms:
            if name not in facts or not allows(allowed, facts[name]):
                return False
        return True

    def may_hold(self, facts: Mapping[str, Any]) -> bool:
        """False only when a fact already known rules it out (an unknown fact may still come)."""
        for name, allowed in self.terms:
            if name in facts and not allows(allowed, facts[name]):
                return False
        return True


def allows(allowed: frozenset[Any], value: Any) -> bool:
    """Whether a fact's value is one of `allowed` (for a list: whether any element is)."""
    if isinstance(value, (list, tuple, set, frozenset)):
        return not allowed.isdisjoint(value)
    return value in allowed


def column_key(header: str) -> str:
    """A column header as compared with ids and aliases: width-, case- and spacing-insensitive."""
    return " ".join(unicodedata.normalize("NFKC", header).casefold().split())


_RELATIVE = re.compile(r"^(today|[+-]\d+[dmy])$")


@dataclass(frozen=True)
class RelativeDate:
    """A date relative to today: ``today``, ``+2y``, ``-100y``, ``+6m``, ``+30d``."""

    spec: str

    @staticmethod
    def is_valid(spec: str) -> bool:
        return bool(_RELATIVE.match(spec))

    def resolve(self, today: dt.date) -> dt.date:
        if self.spec == "today":
            return today
        amount, unit = int(self.spec[:-1]), self.spec[-1]
        if unit == "d":
            return today + dt.timedelta(days=amount)
        months = amount * (12 if unit == "y" else 1)
        return add_months(today, months)


def add_months(day: dt.date, months: int) -> dt.date:
    """Same day of the month `months` later, clamped to the month's end (31 Aug + 6m = 28 Feb)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    for last in (31, 30, 29, 28):
        try:
            return dt.date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class DateRule:
    earliest: RelativeDate
    latest: RelativeDate
    default: RelativeDate | None = None
    too_early: str | None = None
    too_late: str | None = None


@dataclass(frozen=True)
class Option:
    id: str
    label: str
    value: Any  # the stored answer: the id for choices, True/False for yes/no


@dataclass(frozen=True)
class Question:
    id: str
    kind: QuestionKind
    short: str
    text: str
    why: str
    options: tuple[Option, ...] = ()
    when: Condition | None = None
    date: DateRule | None = None
    max_length: int = 200
    # Other column headers that mean this answer in a batch file (`kvisa assess`), e.g. 出生日期.
    aliases: tuple[str, ...] = ()

    def option(self, option_id: str) -> Option | None:
        return next((o for o in self.options if o.id == option_id), None)


@dataclass(frozen=True)
class Source:
    id: str
    title: str
    as_of: dt.date


@dataclass(frozen=True)
class DatedFact:
    """Where a fact stands in flows/, its source id, and when it was last checked (as_of)."""

    file: str
    line: int
    source: str
    as_of: dt.date


@dataclass(frozen=True)
class Requirement:
    when: Condition
    unmet: str


@dataclass(frozen=True)
class Channel:
    id: str
    title: str
    summary: str
    requires: tuple[Requirement, ...]
    source: str


@dataclass(frozen=True)
class AgeRule:
    """Embassy practice, not a legal limit: outside it is said, never a refusal."""

    practice_from: int
    proof_above: int
    below_practice: str
    above_proof: str
    source: str


@dataclass(frozen=True)
class PassportRule:
    months_valid_beyond_application: int
    allows: str  # {expiry}, {date}: the last application date it allows
    warning: str  # the same, and {planned}: a planned application after {date}
    source: str

    def latest_application(self, expiry: dt.date) -> dt.date:
        """The last day one can apply with a passport expiring on `expiry`."""
        return latest_start(expiry, self.months_valid_beyond_application)


def latest_start(end: dt.date, months: int) -> dt.date:
    """The last day `d` with add_months(d, months) <= end (months clamp: 31 Aug + 6m = 28 Feb,
    so up to three later days than `end - months` may still fit)."""
    day = add_months(end, -months)
    while add_months(day + dt.timedelta(days=1), months) <= end:
        day += dt.timedelta(days=1)
    return day


@dataclass(frozen=True)
class Step:
    id: str
    title: str


@dataclass(frozen=True)
class Variant:
    when: Condition
    detail: str


@dataclass(frozen=True)
class ChecklistItem:
    id: str
    step: str
    title: str
    detail: str
    source: str
    when: Condition | None = None
    variants: tuple[Variant, ...] = ()

    def detail_for(self, facts: Mapping[str, Any]) -> str:
        return next((v.detail for v in self.variants if v.when.holds(facts)), self.detail)


# Languages the applicants' own phrasings of a question are written in (flows/faq.yaml `asked`).
ASKED_LANGS = ("en", "zh")
# What an FAQ answer may offer next: a checklist item, an interview question, or a command.
RELATED_KINDS = ("checklist", "question", "command")
RELATED_COMMANDS = ("timeline", "checklist", "parks")


@dataclass(frozen=True)
class Related:
    kind: str  # one of RELATED_KINDS
    target: str  # the item id, question id or command


@dataclass(frozen=True)
class FaqEntry:
    id: str
    question: str
    answer: str
    source: str
    # How applicants phrase the question, by language (matched, never shown).
    asked: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    related: Related | None = None
    as_of: dt.date | None = None  # when the agency last checked the answer against its source


@dataclass(frozen=True)
class PersonTopic:
    """A topic no source answers (fees, dependants, refusals): asked about, it goes to a person."""

    id: str
    topic: str
    asked: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Perk:
    title: str
    detail: str
    when: Condition | None = None  # whom the guide says it is for (the verdict shows it to them)
    source: str = ""

    def applies(self, facts: Mapping[str, Any]) -> bool:
        return self.when is None or self.when.holds(facts)


@dataclass(frozen=True)
class Park:
    id: str
    name: str
    perks: tuple[Perk, ...]
    source: str


@dataclass(frozen=True)
class EventDef:
    id: str
    label: str  # for the button: "I entered China"
    done: str  # for the timeline: "Entered China"


@dataclass(frozen=True)
class WorkingDaysVariant:
    when: Condition
    working_days: tuple[int, int]


EstimateCalendar = Literal["china", "weekdays"]


@dataclass(frozen=True)
class EstimateRule:
    """A decision expected `working_days` (earliest, latest) after the first known `after` event.

    `calendar`: "china" counts China's official working days; "weekdays" counts Monday to
    Friday, for an office abroad (an embassy or consulate keeps neither China's holidays nor its
    make-up Saturdays). `note` says how the window was counted (shown with it)."""

    id: str
    step: str
    title: str
    after: tuple[str, ...]
    working_days: tuple[int, int]
    source: str
    variants: tuple[WorkingDaysVariant, ...] = ()
    nudge: str | None = None  # the event to ask about once the window has passed
    calendar: EstimateCalendar = "china"
    note: str | None = None

    def window(self, facts: Mapping[str, Any]) -> tuple[int, int]:
        return next(
            (v.working_days for v in self.variants if v.when.holds(facts)), self.working_days
        )


@dataclass(frozen=True)
class DeadlineRule:
    """A date counted from the first known `after` event, in calendar days, months or working
    days; or, with `before`, counted back in months from a date answer (the passport's expiry)
    to the last day the condition allows."""

    id: str
    title: str
    after: tuple[str, ...]
    source: str
    calendar_days: int = 0
    months: int = 0
    working_days: int = 0
    when: Condition | None = None
    met_by: str | None = None  # the event that fulfils it
    until: str | None = None  # the event after which it no longer applies
    kind: Literal["action", "condition"] = "action"  # a condition is shown, never reminded
    before: str | None = None  # a date question's id (then `after` is empty)


@dataclass(frozen=True)
class StepRule:
    """A step as a bar: reported `start` (else `projected_start`) to `end` (else the estimate)."""

    id: str
    title: str
    start: str
    projected_start: str
    end: str
    estimate: str


@dataclass(frozen=True)
class ReminderRules:
    offsets: tuple[int, ...]  # days before the act-by day
    hour: int  # local delivery hour
    quiet_from: int  # no delivery from this local hour...
    quiet_until: int  # ...until this one


@dataclass(frozen=True)
class TimelineRules:
    events: tuple[EventDef, ...]
    earliest_event: RelativeDate
    deficiency_question: str
    steps: tuple[StepRule, ...]
    estimates: tuple[EstimateRule, ...]
    deadlines: tuple[DeadlineRule, ...]
    reminders: ReminderRules

    def event(self, event_id: str) -> EventDef | None:
        return next((e for e in self.events if e.id == event_id), None)


@dataclass(frozen=True)
class Flows:
    """All of flows/, validated."""

    questions: tuple[Question, ...]
    channels: tuple[Channel, ...]
    age: AgeRule
    passport: PassportRule
    derived: Mapping[str, Condition]
    disclaimer: str
    steps: tuple[Step, ...]
    items: tuple[ChecklistItem, ...]
    faq: tuple[FaqEntry, ...]
    parks: tuple[Park, ...]
    sources: Mapping[str, Source]
    timeline: TimelineRules
    calendar: WorkCalendar
    # Every translatable text with where it stands: (msgid, file, line).
    messages: tuple[tuple[str, str, int], ...] = field(default=(), compare=False)
    # Every fact with its source and as_of date, for the age warning of `kvisa flows check`.
    dated: tuple[DatedFact, ...] = field(default=(), compare=False)
    # The published content version these flows are (None: the flows directory, unpublished).
    version: int | None = field(default=None, compare=False)
    # Topics of flows/faq.yaml that are handed to a person rather than answered.
    to_a_person: tuple[PersonTopic, ...] = ()

    @cached_property
    def faq_index(self) -> FaqIndex:
        """The FAQ's search index (built once per loaded content, on first use)."""
        from kvisa.bot.content.asked import FaqIndex  # noqa: PLC0415 (it reads this module)

        return FaqIndex(self.faq, self.to_a_person)

    @cached_property
    def _questions_by_id(self) -> dict[str, Question]:
        return {q.id: q for q in self.questions}

    @cached_property
    def question_ids(self) -> frozenset[str]:
        return frozenset(self._questions_by_id)

    def question(self, question_id: str) -> Question:
        return self._questions_by_id[question_id]

    def find_question(self, question_id: str) -> Question | None:
        return self._questions_by_id.get(question_id)

    def park(self, park_id: str) -> Park | None:
        return next((p for p in self.parks if p.id == park_id), None)

    def dependents(self, changed: Iterable[str]) -> frozenset[str]:
        """Questions whose conditions depend, directly or through others, on `changed`."""
        reach = set(changed)
        derived_facts = {
            **COMPUTED_FROM,
            **{name: cond.facts for name, cond in self.derived.items()},
        }
        grew = True
        while grew:
            grew = False
            for name, facts in derived_facts.items():
                if name not in reach and facts & reach:
                    reach.add(name)
                    grew = True
            for q in self.questions:
                if q.id not in reach and q.when and q.when.facts & reach:
                    reach.add(q.id)
                    grew = True
        return frozenset(q.id for q in self.questions if q.id in reach) - frozenset(changed)
