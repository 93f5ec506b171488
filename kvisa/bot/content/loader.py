"""Load flows/*.yaml into `Flows`, refusing anything unknown, dangling or untranslated.

Every problem is a FlowError naming the file and line to fix.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Container, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from kvisa.bot.content.calendar import load_calendar
from kvisa.bot.content.model import (
    ASKED_LANGS,
    QUESTION_KINDS,
    RELATED_COMMANDS,
    RELATED_KINDS,
    AgeRule,
    Channel,
    ChecklistItem,
    Condition,
    DatedFact,
    DateRule,
    DeadlineRule,
    EstimateRule,
    EventDef,
    FaqEntry,
    Flows,
    Option,
    Park,
    PassportRule,
    Perk,
    PersonTopic,
    Question,
    Related,
    RelativeDate,
    ReminderRules,
    Requirement,
    Source,
    Step,
    StepRule,
    TimelineRules,
    Variant,
    WorkingDaysVariant,
    column_key,
)
from kvisa.bot.content.yamlsrc import Node, load_yaml
from kvisa.bot.i18n import N_
from kvisa.errors import FlowError

T = TypeVar("T")

# Keys whose string values users read: extracted for translation and checked in the catalogs.
TRANSLATABLE_KEYS = frozenset(
    {
        "text",
        "short",
        "why",
        "label",
        "done",
        "title",
        "summary",
        "unmet",
        "detail",
        "question",
        "answer",
        "name",
        "warning",
        "allows",
        "below_practice",
        "above_proof",
        "note",
        "too_early",
        "too_late",
        "topic",
    }
)
# Keys whose texts are ids or matched phrasings, never shown translated (flows/faq.yaml).
UNTRANSLATED_KEYS = frozenset({"related", "asked"})
# Profile columns that are not questions (`kvisa assess`): no alias may take their names.
PROFILE_COLUMNS = frozenset({"id", "deficiency_tolerance"})
PERSON_TOPIC = {"id", "topic", "asked"}  # flows/faq.yaml `to_a_person` items
FILES = ("sources", "policy", "interview", "checklist", "faq", "parks", "timeline")
# Facts computed by kvisa.bot.policy rather than answered; usable in conditions.
COMPUTED_FACTS: dict[str, frozenset[Any]] = {
    "channels": frozenset({"academic", "work"}),
    "needs_age_proof": frozenset({True, False}),
    # Reported with a Lingang work permit submission (chat) or given in a profile (assess).
    "deficiency_tolerance": frozenset({True, False}),
    # The country of residence has several clocks (asks for the user's time zone).
    "residence_zones_many": frozenset({True, False}),
}


def fields(
    node: Any,
    where: tuple[str, int],
    required: set[str],
    optional: frozenset[str] | set[str] = frozenset(),
) -> Node:
    if not isinstance(node, Node):
        raise FlowError(
            where[0], where[1], "expected a mapping with keys " + ", ".join(sorted(required))
        )
    if "source" in required:
        # A fact names its source and the day the agency last checked it (see source_ref).
        optional = {*optional, "as_of"}
    missing = required - node.keys()
    if missing:
        raise node.error(f"missing key(s): {', '.join(sorted(missing))}")
    for key in node:
        if key not in required and key not in optional:
            allowed = ", ".join(sorted(required | optional))
            raise node.error(f"unknown key {key!r} (allowed: {allowed})", key)
    return node


def text(node: Node, key: str) -> str:
    value = node[key]
    if not isinstance(value, str) or not value.strip():
        raise node.error(f"{key!r} must be non-empty text", key)
    return value


def items_of(node: Node, key: str) -> list[Any]:
    value = node[key]
    if not isinstance(value, list) or not value:
        raise node.error(f"{key!r} must be a non-empty list", key)
    return value


def unique(entries: Iterable[T], ident: Callable[[T], str], node: Node, key: str) -> tuple[T, ...]:
    seen: set[str] = set()
    result = tuple(entries)
    for entry in result:
        if ident(entry) in seen:
            raise node.error(f"duplicate id {ident(entry)!r} in {key!r}", key)
        seen.add(ident(entry))
    return result


class _Reader:
    """Reads one flows directory; keeps the context needed to check references."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.docs: dict[str, Node] = {}
        for name in FILES:
            path = root / f"{name}.yaml"
            doc = load_yaml(path, f"flows/{name}.yaml")
            if not isinstance(doc, Node):
                raise FlowError(f"flows/{name}.yaml", 1, "the file must hold a mapping")
            self.docs[name] = doc
        self.sources: dict[str, Source] = {}
        # fact name -> allowed values, grown as questions and derived facts are read
        self.facts: dict[str, frozenset[Any]] = dict(COMPUTED_FACTS)
        # column header key -> (question id, file, line): ids and aliases name one question each
        self.columns: dict[str, tuple[str, str, int]] = {}
        self.date_questions: frozenset[str] = frozenset()
        self.dated: list[DatedFact] = []

    def source_ref(self, node: Node) -> str:
        """A fact's source, which must be known, with its `as_of` date (when the agency last
        checked the fact against the source); the fact is remembered for `kvisa flows check`'s
        age warning."""
        if "source" not in node:
            raise node.error("missing key 'source' (a source id from flows/sources.yaml)")
        ref = text(node, "source")
        if ref not in self.sources:
            raise node.error(f"unknown source {ref!r} (see flows/sources.yaml)", "source")
        if "as_of" not in node:
            raise node.error(
                "missing key 'as_of' (the date this fact was last checked against its source, "
                "like 2026-11-25)",
                "source",
            )
        as_of = node["as_of"]
        if not isinstance(as_of, dt.date) or isinstance(as_of, dt.datetime):
            raise node.error("'as_of' must be a date like 2026-11-25", "as_of")
        self.dated.append(DatedFact(node.file, node.line, ref, as_of))
        return ref

    def condition(self, owner: Node, key: str, known: Container[str] | None = None) -> Condition:
        raw = owner[key]
        if not isinstance(raw, Node) or not raw:
            raise owner.error(f"{key!r} must be a mapping of fact to a list of values", key)
        terms = []
        for fact, values in raw.items():
            line = raw.line_of(fact)
            if fact not in self.facts or (known is not None and fact not in known):
                raise FlowError(raw.file, line, f"condition on unknown or later fact {fact!r}")
            if not isinstance(values, list) or not values:
                raise FlowError(raw.file, line, f"{fact!r} needs a non-empty list of values")
            for value in values:
                if value not in self.facts[fact]:
                    allowed = ", ".join(sorted(map(str, self.facts[fact])))
                    raise FlowError(
                        raw.file, line, f"{fact!r} has no value {value!r} (allowed: {allowed})"
                    )
            terms.append((fact, frozenset(values)))
        return Condition(tuple(terms))

    def read_sources(self) -> None:
        doc = fields(self.docs["sources"], ("flows/sources.yaml", 1), {"sources"})
        for raw in items_of(doc, "sources"):
            node = fields(raw, (doc.file, doc.line_of("sources")), {"id", "title", "as_of"})
            if not isinstance(node["as_of"], dt.date):
                raise node.error("'as_of' must be a date like 2026-11-25", "as_of")
            if node["id"] in self.sources:
                raise node.error(f"duplicate source id {node['id']!r}", "id")
            self.sources[node["id"]] = Source(text(node, "id"), text(node, "title"), node["as_of"])

    def date_rule(self, node: Node) -> DateRule:
        raw = fields(
            node["date"],
            (node.file, node.line_of("date")),
            {"earliest", "latest"},
            {"default", "too_early", "too_late"},
        )

        def rel(key: str) -> RelativeDate | None:
            if key not in raw:
                return None
            spec = str(raw[key])
            if not RelativeDate.is_valid(spec):
                raise raw.error(f"{key!r} must be today, or like +2y, -100y, +6m, +30d", key)
            return RelativeDate(spec)

        earliest, latest = rel("earliest"), rel("latest")
        assert earliest and latest
        return DateRule(
            earliest,
            latest,
            rel("default"),
            raw.get("too_early") and text(raw, "too_early"),
            raw.get("too_late") and text(raw, "too_late"),
        )

    def question(self, raw: Any, doc: Node, asked: set[str]) -> Question:
        node = fields(
            raw,
            (doc.file, doc.line_of("questions")),
            {"id", "kind", "short", "text", "why"},
            {"options", "when", "date", "max_length", "aliases"},
        )
        qid, kind = text(node, "id"), node["kind"]
        if kind not in QUESTION_KINDS:
            raise node.error(
                f"unknown kind {kind!r} (allowed: {', '.join(QUESTION_KINDS)})", "kind"
            )
        if ("options" in node) != (kind == "choice"):
            raise node.error("'options' is for (and required by) kind: choice", "kind")
        if ("date" in node) != (kind == "date"):
            raise node.error("'date' is for (and required by) kind: date", "kind")
        if kind == "zone" and "residence_country" not in asked:
            raise node.error(
                "kind: zone lists the clocks of residence_country: ask that question first", "kind"
            )
        when = self.condition(node, "when", known=asked) if "when" in node else None
        options: tuple[Option, ...] = ()
        if kind == "choice":
            opts = [
                fields(o, (node.file, node.line_of("options")), {"id", "label"})
                for o in items_of(node, "options")
            ]
            options = unique(
                (Option(text(o, "id"), text(o, "label"), o["id"]) for o in opts),
                lambda o: o.id,
                node,
                "options",
            )
        elif kind == "yesno":
            options = (Option("yes", N_("Yes"), True), Option("no", N_("No"), False))
        values: frozenset[Any] = frozenset(o.value for o in options) if options else frozenset()
        self.facts[qid] = values
        return Question(
            qid,
            kind,
            text(node, "short"),
            text(node, "text"),
            text(node, "why"),
            options,
            when,
            self.date_rule(node) if kind == "date" else None,
            int(node.get("max_length", 200)),
            self.aliases(node, qid),
        )

    def aliases(self, node: Node, qid: str) -> tuple[str, ...]:
        """A question's other column headers: text, each naming one question only."""
        names = items_of(node, "aliases") if "aliases" in node else []
        for name in [qid, *names]:
            if not isinstance(name, str) or not column_key(name):
                raise node.error("'aliases' must be a list of column headers (text)", "aliases")
            key = column_key(name)
            if key in PROFILE_COLUMNS:
                raise node.error(f"column {name!r} is reserved in profiles", "aliases")
            owner = self.columns.setdefault(key, (qid, node.file, node.line_of("id")))
            if owner[0] != qid:
                raise node.error(
                    f"column {name!r} already names question {owner[0]!r} ({owner[1]}:{owner[2]})",
                    "aliases" if name != qid else "id",
                )
        return tuple(names)

    def read(self) -> Flows:
        self.read_sources()
        interview = fields(self.docs["interview"], ("flows/interview.yaml", 1), {"questions"})
        asked: set[str] = set(COMPUTED_FACTS)
        questions = []
        for raw in items_of(interview, "questions"):
            q = self.question(raw, interview, asked)
            if q.id in asked:
                raise FlowError(
                    interview.file, getattr(raw, "line", None), f"duplicate question id {q.id!r}"
                )
            asked.add(q.id)
            questions.append(q)
        self.date_questions = frozenset(q.id for q in questions if q.kind == "date")

        policy = fields(
            self.docs["policy"],
            ("flows/policy.yaml", 1),
            {"age", "passport", "channels", "derived", "disclaimer"},
        )
        derived = {}
        dnode = policy["derived"]
        if not isinstance(dnode, Node):
            raise policy.error("'derived' must be a mapping", "derived")
        for name in dnode:
            derived[name] = self.condition(dnode, name)
            self.facts[name] = frozenset({True, False})
        age = fields(
            policy["age"],
            (policy.file, policy.line_of("age")),
            {"practice_from", "proof_above", "source", "below_practice", "above_proof"},
        )
        passport = fields(
            policy["passport"],
            (policy.file, policy.line_of("passport")),
            {"months_valid_beyond_application", "source", "allows", "warning"},
        )
        disclaimer = fields(
            policy["disclaimer"], (policy.file, policy.line_of("disclaimer")), {"text", "source"}
        )
        self.source_ref(disclaimer)
        channels = unique(
            (self.channel(c, policy) for c in items_of(policy, "channels")),
            lambda c: c.id,
            policy,
            "channels",
        )

        checklist = fields(self.docs["checklist"], ("flows/checklist.yaml", 1), {"steps", "items"})
        steps = unique(
            (
                Step(text(s, "id"), text(s, "title"))
                for s in (
                    fields(s, (checklist.file, checklist.line_of("steps")), {"id", "title"})
                    for s in items_of(checklist, "steps")
                )
            ),
            lambda s: s.id,
            checklist,
            "steps",
        )
        items = unique(
            (self.item(i, checklist, {s.id for s in steps}) for i in items_of(checklist, "items")),
            lambda i: i.id,
            checklist,
            "items",
        )

        faq_doc = fields(self.docs["faq"], ("flows/faq.yaml", 1), {"entries"}, {"to_a_person"})
        targets = {
            "checklist": {i.id for i in items},
            "question": {q.id for q in questions},
            "command": set(RELATED_COMMANDS),
        }
        faq = unique(
            (self.faq_entry(e, faq_doc, targets) for e in items_of(faq_doc, "entries")),
            lambda e: e.id,
            faq_doc,
            "entries",
        )
        to_a_person = unique(
            (
                PersonTopic(text(p, "id"), text(p, "topic"), self.asked(p))
                for p in (
                    fields(
                        p, (faq_doc.file, faq_doc.line_of("to_a_person")), {"id", "topic", "asked"}
                    )
                    for p in (items_of(faq_doc, "to_a_person") if "to_a_person" in faq_doc else [])
                )
            ),
            lambda p: p.id,
            faq_doc,
            "to_a_person",
        )
        if {e.id for e in faq} & {p.id for p in to_a_person}:
            raise faq_doc.error("an id is both an entry and a topic for a person", "to_a_person")
        parks_doc = fields(self.docs["parks"], ("flows/parks.yaml", 1), {"parks"})
        parks = unique(
            (self.park(p, parks_doc) for p in items_of(parks_doc, "parks")),
            lambda p: p.id,
            parks_doc,
            "parks",
        )
        timeline = self.timeline(
            fields(
                self.docs["timeline"],
                ("flows/timeline.yaml", 1),
                {
                    "events",
                    "earliest_event",
                    "deficiency_tolerance",
                    "steps",
                    "estimates",
                    "deadlines",
                    "reminders",
                },
            )
        )
        return Flows(
            questions=tuple(questions),
            channels=channels,
            age=AgeRule(
                self.integer(age, "practice_from"),
                self.integer(age, "proof_above"),
                text(age, "below_practice"),
                text(age, "above_proof"),
                self.source_ref(age),
            ),
            passport=PassportRule(
                self.integer(passport, "months_valid_beyond_application"),
                text(passport, "allows"),
                text(passport, "warning"),
                self.source_ref(passport),
            ),
            derived=derived,
            disclaimer=text(disclaimer, "text"),
            steps=steps,
            items=items,
            faq=faq,
            to_a_person=to_a_person,
            parks=parks,
            sources=dict(self.sources),
            timeline=timeline,
            calendar=load_calendar(self.root),
            messages=tuple(self.messages()),
            dated=tuple(self.dated),
        )

    @staticmethod
    def integer(node: Node, key: str) -> int:
        if not isinstance(node[key], int) or isinstance(node[key], bool) or node[key] < 0:
            raise node.error(f"{key!r} must be a whole number", key)
        return int(node[key])

    def channel(self, raw: Any, policy: Node) -> Channel:
        node = fields(
            raw,
            (policy.file, policy.line_of("channels")),
            {"id", "title", "summary", "requires", "source"},
        )
        reqs = tuple(
            Requirement(self.condition(r, "when"), text(r, "unmet"))
            for r in (
                fields(r, (node.file, node.line_of("requires")), {"when", "unmet"})
                for r in items_of(node, "requires")
            )
        )
        if node["id"] not in COMPUTED_FACTS["channels"]:
            raise node.error(f"unknown channel {node['id']!r} (allowed: academic, work)", "id")
        return Channel(
            text(node, "id"),
            text(node, "title"),
            text(node, "summary"),
            reqs,
            self.source_ref(node),
        )

    def item(self, raw: Any, doc: Node, step_ids: set[str]) -> ChecklistItem:
        node = fields(
            raw,
            (doc.file, doc.line_of("items")),
            {"id", "step", "title", "detail", "source"},
            {"when", "variants"},
        )
        if node["step"] not in step_ids:
            raise node.error(f"unknown step {node['step']!r}", "step")
        variants = tuple(
            Variant(self.condition(v, "when"), text(v, "detail"))
            for v in (
                fields(v, (node.file, node.line_of("variants")), {"when", "detail"})
                for v in (items_of(node, "variants") if "variants" in node else [])
            )
        )
        return ChecklistItem(
            text(node, "id"),
            text(node, "step"),
            text(node, "title"),
            text(node, "detail"),
            self.source_ref(node),
            self.condition(node, "when") if "when" in node else None,
            variants,
        )

    def faq_entry(self, raw: Any, doc: Node, targets: Mapping[str, set[str]]) -> FaqEntry:
        node = fields(
            raw,
            (doc.file, doc.line_of("entries")),
            {"id", "question", "answer", "source"},
            {"asked", "related"},
        )
        return FaqEntry(
            text(node, "id"),
            text(node, "question"),
            text(node, "answer"),
            self.source_ref(node),
            self.asked(node) if "asked" in node else {},
            self.related(node, targets) if "related" in node else None,
            node["as_of"],
        )

    @staticmethod
    def asked(node: Node) -> dict[str, tuple[str, ...]]:
        """`asked: {en: [...], zh: [...]}`: phrasings in every language, none empty."""
        raw = node["asked"]
        if not isinstance(raw, Node):
            raise node.error(
                "'asked' must map each language (en, zh) to a list of phrasings", "asked"
            )
        phrasings: dict[str, tuple[str, ...]] = {}
        for lang in ASKED_LANGS:
            values = raw.get(lang)
            if not isinstance(values, list) or not values:
                raise node.error(f"'asked' needs a non-empty list of {lang!r} phrasings", "asked")
            if not all(isinstance(v, str) and v.strip() for v in values):
                raise raw.error(f"every {lang!r} phrasing must be non-empty text", lang)
            phrasings[lang] = tuple(values)
        for lang in raw:
            if lang not in ASKED_LANGS:
                raise raw.error(f"unknown language {lang!r} (allowed: en, zh)", lang)
        return phrasings

    @staticmethod
    def related(node: Node, targets: Mapping[str, set[str]]) -> Related:
        raw = node["related"]
        if not isinstance(raw, Node) or len(raw) != 1:
            kinds = ", ".join(RELATED_KINDS)
            raise node.error(f"'related' must name one of: {kinds}", "related")
        kind, target = next(iter(raw.items()))
        known = targets.get(kind)
        if known is None:
            raise raw.error(f"unknown kind {kind!r} (allowed: {', '.join(RELATED_KINDS)})", kind)
        if not isinstance(target, str) or target not in known:
            raise raw.error(f"unknown {kind} {target!r}", kind)
        return Related(kind, target)

    def park(self, raw: Any, doc: Node) -> Park:
        node = fields(raw, (doc.file, doc.line_of("parks")), {"id", "name", "perks", "source"})
        if node["id"] not in self.facts.get("park", frozenset()):
            raise node.error(f"park {node['id']!r} is not an option of the 'park' question", "id")
        perks = tuple(
            Perk(
                text(p, "title"),
                text(p, "detail"),
                self.condition(p, "when") if "when" in p else None,
                self.source_ref(p),
            )
            for p in (
                fields(
                    p, (node.file, node.line_of("perks")), {"title", "detail", "source"}, {"when"}
                )
                for p in items_of(node, "perks")
            )
        )
        return Park(text(node, "id"), text(node, "name"), perks, self.source_ref(node))

    def timeline(self, doc: Node) -> TimelineRules:
        events = unique(
            (
                EventDef(text(e, "id"), text(e, "label"), text(e, "done"))
                for e in (
                    fields(e, (doc.file, doc.line_of("events")), {"id", "label", "done"})
                    for e in items_of(doc, "events")
                )
            ),
            lambda e: e.id,
            doc,
            "events",
        )
        for e, raw in zip(events, items_of(doc, "events"), strict=True):
            if column_key(e.id) in self.columns:
                owner = self.columns[column_key(e.id)][0]
                raise raw.error(f"event {e.id!r} is a column of question {owner!r}", "id")
        known = {e.id for e in events} | {"planned_application"}

        def event_refs(node: Node, key: str) -> tuple[str, ...]:
            refs = items_of(node, key) if isinstance(node[key], list) else [node[key]]
            for ref in refs:
                if ref not in known:
                    raise node.error(
                        f"unknown event {ref!r} (known: {', '.join(sorted(known))})", key
                    )
            return tuple(refs)

        def window(node: Node) -> tuple[int, int]:
            value = node["working_days"]
            if (
                not isinstance(value, list)
                or len(value) != 2
                or not all(isinstance(v, int) for v in value)
                or not 0 <= value[0] <= value[1]
            ):
                raise node.error(
                    "'working_days' must be [earliest, latest], whole numbers", "working_days"
                )
            return value[0], value[1]

        step_nodes = [
            fields(
                s,
                (doc.file, doc.line_of("steps")),
                {"id", "title", "start", "projected_start", "end", "estimate"},
            )
            for s in items_of(doc, "steps")
        ]
        steps = unique(
            (
                StepRule(
                    text(s, "id"),
                    text(s, "title"),
                    event_refs(s, "start")[0],
                    event_refs(s, "projected_start")[0],
                    event_refs(s, "end")[0],
                    text(s, "estimate"),
                )
                for s in step_nodes
            ),
            lambda s: s.id,
            doc,
            "steps",
        )

        estimates = []
        for raw in items_of(doc, "estimates"):
            node = fields(
                raw,
                (doc.file, doc.line_of("estimates")),
                {"id", "step", "title", "after", "working_days", "source"},
                {"variants", "nudge", "calendar", "note"},
            )
            counted = node.get("calendar", "china")
            if counted not in ("china", "weekdays"):
                raise node.error("'calendar' must be china or weekdays", "calendar")
            if node["step"] not in {s.id for s in steps}:
                raise node.error(f"unknown step {node['step']!r}", "step")
            variants = tuple(
                WorkingDaysVariant(self.condition(v, "when"), window(v))
                for v in (
                    fields(v, (node.file, node.line_of("variants")), {"when", "working_days"})
                    for v in (items_of(node, "variants") if "variants" in node else [])
                )
            )
            estimates.append(
                EstimateRule(
                    text(node, "id"),
                    text(node, "step"),
                    text(node, "title"),
                    event_refs(node, "after"),
                    window(node),
                    self.source_ref(node),
                    variants,
                    event_refs(node, "nudge")[0] if "nudge" in node else None,
                    counted,
                    text(node, "note") if "note" in node else None,
                )
            )
        deadlines = []
        for raw in items_of(doc, "deadlines"):
            node = fields(
                raw,
                (doc.file, doc.line_of("deadlines")),
                {"id", "title", "source"},
                {
                    "after",
                    "before",
                    "calendar_days",
                    "months",
                    "working_days",
                    "when",
                    "met_by",
                    "until",
                    "kind",
                },
            )
            if node.get("kind", "action") not in ("action", "condition"):
                raise node.error("'kind' must be action or condition", "kind")
            spans = [k for k in ("calendar_days", "months", "working_days") if k in node]
            if len(spans) != 1:
                raise node.error("give exactly one of calendar_days, months, working_days")
            if ("after" in node) == ("before" in node):
                raise node.error("give exactly one of after (events) and before (a date answer)")
            before = self.date_answer(node, "before") if "before" in node else None
            if before is not None and (spans[0] != "months" or node.get("kind") != "condition"):
                raise node.error("'before' counts months back for a kind: condition", "before")
            deadlines.append(
                DeadlineRule(
                    text(node, "id"),
                    text(node, "title"),
                    event_refs(node, "after") if "after" in node else (),
                    self.source_ref(node),
                    **{spans[0]: self.integer(node, spans[0])},
                    when=self.condition(node, "when") if "when" in node else None,
                    met_by=event_refs(node, "met_by")[0] if "met_by" in node else None,
                    until=event_refs(node, "until")[0] if "until" in node else None,
                    kind=node.get("kind", "action"),
                    before=before,
                )
            )
        estimate_ids = {e.id for e in estimates}
        for node, step in zip(step_nodes, steps, strict=True):
            if step.estimate not in estimate_ids:
                raise node.error(f"unknown estimate {step.estimate!r}", "estimate")
        spec = str(doc["earliest_event"])
        if not RelativeDate.is_valid(spec):
            raise doc.error("'earliest_event' must be like -2y", "earliest_event")
        question = fields(
            doc["deficiency_tolerance"],
            (doc.file, doc.line_of("deficiency_tolerance")),
            {"text", "source"},
        )
        self.source_ref(question)
        return TimelineRules(
            events,
            RelativeDate(spec),
            text(question, "text"),
            steps,
            unique(estimates, lambda e: e.id, doc, "estimates"),
            unique(deadlines, lambda d: d.id, doc, "deadlines"),
            self.reminder_rules(doc),
        )

    def date_answer(self, node: Node, key: str) -> str:
        """`node[key]` names a date question of the interview."""
        ref = node[key]
        if ref not in self.date_questions:
            known = ", ".join(sorted(self.date_questions))
            raise node.error(f"{key!r} must name a date question (one of {known})", key)
        return str(ref)

    def reminder_rules(self, doc: Node) -> ReminderRules:
        node = fields(
            doc["reminders"],
            (doc.file, doc.line_of("reminders")),
            {"offsets", "hour", "quiet_from", "quiet_until"},
        )
        offsets = node["offsets"]
        if (
            not isinstance(offsets, list)
            or not offsets
            or not all(
                isinstance(o, int) and not isinstance(o, bool) and 0 <= o <= 60 for o in offsets
            )
        ):
            raise node.error(
                "'offsets' must be a list of days before the deadline (0 to 60)", "offsets"
            )
        hours = {k: self.integer(node, k) for k in ("hour", "quiet_from", "quiet_until")}
        if (
            any(h > 23 for h in hours.values())
            or not hours["quiet_until"] <= hours["hour"] < hours["quiet_from"]
        ):
            raise node.error("'hour' must lie between quiet_until and quiet_from (0-23)", "hour")
        return ReminderRules(tuple(sorted(set(offsets), reverse=True)), **hours)

    def messages(self) -> Iterable[tuple[str, str, int]]:
        for doc in self.docs.values():
            yield from iter_messages(doc)


def iter_messages(value: Any) -> Iterable[tuple[str, str, int]]:
    """Every translatable string under `value`: (msgid, file, line)."""
    if isinstance(value, Node):
        for key, child in value.items():
            if key in UNTRANSLATED_KEYS:
                continue
            if key in TRANSLATABLE_KEYS and isinstance(child, str):
                yield child, value.file, value.line_of(key)
            else:
                yield from iter_messages(child)
    elif isinstance(value, list):
        for child in value:
            yield from iter_messages(child)


def load_flows(root: Path, translated: Callable[[str], bool] | None = None) -> Flows:
    """Read and validate flows/ under `root`; with `translated`, every text must pass it."""
    flows = _Reader(root).read()
    if translated is not None:
        for msgid, file, line in flows.messages:
            if not translated(msgid):
                raise FlowError(
                    file, line, f"no Chinese translation for {msgid!r} (add it to locales/zh_Hans)"
                )
    return flows
