"""What changed between two content versions, for a person: facts, rules, checklist items and
texts, each named by what it is and its title, with the old and the new value, in English
and in Chinese.

The diff reads the YAML of both versions (not the validated model), so that every key the
agency can edit, its `source` and `as_of` included, is compared.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from kvisa.bot.content.loader import TRANSLATABLE_KEYS
from kvisa.bot.content.versions import Packed
from kvisa.bot.content.yamlsrc import parse_yaml
from kvisa.bot.i18n import N_, Text

# What an entity is, by (file, list or key): shown to the reader.
KINDS: dict[tuple[str, str], str] = {
    ("sources", "sources"): N_("Source"),
    ("policy", "age"): N_("Age practice"),
    ("policy", "passport"): N_("Passport rule"),
    ("policy", "channels"): N_("Eligibility channel"),
    ("policy", "derived"): N_("Derived condition"),
    ("policy", "disclaimer"): N_("Disclaimer"),
    ("interview", "questions"): N_("Question"),
    ("checklist", "steps"): N_("Checklist step"),
    ("checklist", "items"): N_("Checklist item"),
    ("faq", "entries"): N_("FAQ entry"),
    ("parks", "parks"): N_("Park"),
    ("parks", "perks"): N_("Park perk"),
    ("timeline", "events"): N_("Step you report"),
    ("timeline", "steps"): N_("Timeline step"),
    ("timeline", "estimates"): N_("Processing time"),
    ("timeline", "deadlines"): N_("Deadline"),
    ("timeline", "reminders"): N_("Reminder rules"),
    ("timeline", "deficiency_tolerance"): N_("Deficiency tolerance question"),
    ("timeline", "earliest_event"): N_("Earliest date of a reported step"),
    ("calendar", "years"): N_("Holiday schedule"),
}
# The keys a reader sees, by name; others are shown as they are written in the file.
FIELDS: dict[str, str] = {
    "title": N_("title"),
    "detail": N_("details"),
    "text": N_("text"),
    "summary": N_("summary"),
    "name": N_("name"),
    "question": N_("question"),
    "answer": N_("answer"),
    "when": N_("who it applies to"),
    "working_days": N_("working days"),
    "calendar_days": N_("calendar days"),
    "months": N_("months"),
    "practice_from": N_("youngest age in practice"),
    "proof_above": N_("extra proof needed above the age of"),
    "source": N_("source"),
    "as_of": N_("checked on"),
    "holidays": N_("holidays"),
    "official": N_("official"),
    "notice": N_("notice"),
    "variants": N_("variants"),
    "unmet": N_("reason when not met"),
    "requires": N_("requirements"),
}
TITLE_KEYS = ("title", "name", "question", "short", "label", "en")
NOTHING = "—"


@dataclass(frozen=True)
class Change:
    """One difference: an entity added or removed (field None), or one field's old and new."""

    kind: str  # a KINDS message id
    ident: str  # the entity's id in its file
    title: str  # its title (a message id) or its id
    field: str | None
    old: Any
    new: Any
    file: str

    @property
    def what(self) -> str:
        if self.field is None:
            return "added" if self.old is None else "removed"
        return "changed"


def entities(packed: Packed) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    """(kind, id) -> (file, the entity's mapping), for every entity of every file."""
    found: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    for file, text in packed.files.items():
        doc = parse_yaml(text, f"flows/{file}.yaml")
        if not isinstance(doc, dict):
            continue
        for key, value in doc.items():
            kind = KINDS.get((file, key))
            if kind is None:
                continue
            if isinstance(value, list):
                for index, entry in enumerate(value):
                    if not isinstance(entry, dict):
                        continue
                    ident = str(entry.get("id", entry.get("year", index + 1)))
                    if file == "parks":
                        entry = dict(entry)
                        for perk in entry.pop("perks", None) or []:
                            if isinstance(perk, dict):
                                pid = f"{ident}/{perk.get('title', '')}"
                                found[(KINDS[("parks", "perks")], pid)] = (file, dict(perk))
                    found[(kind, ident)] = (file, dict(entry))
            else:
                found[(kind, key)] = (file, value if isinstance(value, dict) else {key: value})
    return found


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(path, leaf) pairs: nested mappings joined with '/', lists of mappings numbered."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield from flatten(child, f"{prefix}/{key}" if prefix else str(key))
    elif isinstance(value, list) and any(isinstance(v, dict) for v in value):
        for index, child in enumerate(value):
            yield from flatten(child, f"{prefix}/{index + 1}")
    else:
        yield prefix, value


def title_of(entity: dict[str, Any], ident: str) -> str:
    for key in TITLE_KEYS:
        if isinstance(entity.get(key), str):
            return str(entity[key])
    return ident


def diff(old: Packed, new: Packed) -> list[Change]:
    """Every difference from `old` to `new`, in file order of the new version."""
    before, after = entities(old), entities(new)
    changes: list[Change] = []
    for key in [*after, *(k for k in before if k not in after)]:
        kind, ident = key
        if key not in before:
            file, entity = after[key]
            changes.append(Change(kind, ident, title_of(entity, ident), None, None, entity, file))
            continue
        if key not in after:
            file, entity = before[key]
            changes.append(Change(kind, ident, title_of(entity, ident), None, entity, None, file))
            continue
        file, new_entity = after[key]
        old_fields, new_fields = dict(flatten(before[key][1])), dict(flatten(new_entity))
        title = title_of(new_entity, ident)
        for path in [*new_fields, *(p for p in old_fields if p not in new_fields)]:
            was, now = old_fields.get(path), new_fields.get(path)
            if was != now:
                changes.append(Change(kind, ident, title, path, was, now, file))
    return changes


def value_text(t: Text, packed: Packed, path: str | None, value: Any) -> str:
    """A value as the reader sees it: texts translated, dates in their language, lists and
    conditions spelled out."""
    if value is None:
        return NOTHING
    if isinstance(value, bool):
        return t("yes") if value else t("no")
    if isinstance(value, dt.date):
        return t.date(value)
    if isinstance(value, str):
        last = (path or "").rsplit("/", 1)[-1]
        if last in TRANSLATABLE_KEYS and t.lang == "zh":
            return packed.chinese(value)
        return value
    if isinstance(value, list):
        if (
            len(value) == 2
            and all(isinstance(v, int) for v in value)
            and path
            and "working_days" in path
        ):
            return t("{low}–{high}", low=value[0], high=value[1])
        return t(", ").join(value_text(t, packed, path, v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {value_text(t, packed, k, v)}" for k, v in value.items())
    return str(value)


def field_text(t: Text, path: str) -> str:
    return " / ".join(t(FIELDS[p]) if p in FIELDS else p for p in path.split("/"))


def describe(t: Text, change: Change, old: Packed, new: Packed) -> str:
    """One change as one line in `t`'s language."""
    shown = new if change.old is None or change.field is not None else old
    title = t(change.title) if t.lang == "en" else shown.chinese(change.title)
    if change.title == change.ident and not change.ident.isdigit():
        head = t(change.kind)  # a single entity of its file (the age practice, say)
    else:
        head = t("{kind} “{title}”", kind=t(change.kind), title=title)
    if change.field is None and change.old is None:
        return t("{what}: added", what=head)
    if change.field is None:
        return t("{what}: removed", what=head)
    return t(
        "{what}: {field}: {old} → {new}",
        what=head,
        field=field_text(t, change.field),
        old=value_text(t, old, change.field, change.old),
        new=value_text(t, new, change.field, change.new),
    )


def report(t: Text, changes: Iterable[Change], old: Packed, new: Packed) -> list[str]:
    """The changes as lines in one language; one line saying so when there is none."""
    lines = [describe(t, c, old, new) for c in changes]
    return lines or [t("No change.")]
