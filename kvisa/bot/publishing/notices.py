"""The personal notice of a content change: what changed for this applicant, their old and
new verdict, checklist and dates, and the sources of the change with their dates; in their
language first and the other below."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from kvisa.bot.content.diff import entities
from kvisa.bot.content.model import Flows
from kvisa.bot.content.versions import Packed
from kvisa.bot.i18n import Catalogs, Lang, Text, bilingual
from kvisa.bot.publishing.recheck import Delta, Result


@dataclass(frozen=True)
class Cited:
    """A source of a change: its id in flows/sources.yaml (or a holiday notice's text) and
    the date the changed fact was checked against it."""

    source: str
    as_of: dt.date | None
    notice: str | None = None


def cited_sources(old: Packed, new: Packed) -> list[Cited]:
    """The sources of every entity that differs between the two versions, each once."""
    before, after = entities(old), entities(new)
    cited: list[Cited] = []
    for key in [*after, *(k for k in before if k not in after)]:
        if before.get(key) == after.get(key):
            continue
        entity = (after.get(key) or before[key])[1]
        source, as_of, notice = entity.get("source"), entity.get("as_of"), entity.get("notice")
        found = Cited(
            str(source or ""),
            as_of if isinstance(as_of, dt.date) else None,
            str(notice) if notice and not source else None,
        )
        if (found.source or found.notice) and found not in cited:
            cited.append(found)
    return cited


def verdict_text(t: Text, flows: Flows, result: Result) -> str:
    if not result.eligible:
        return t("not eligible")
    titles = {c.id: t(c.title) for c in flows.channels}
    return t("eligible: {channels}", channels=t(", ").join(titles[c] for c in result.channels))


def dates_text(t: Text, dates: tuple[dt.date, ...] | None, estimated: bool) -> str:
    if not dates:
        return t("none")
    shown = (
        t.date(dates[0]) if len(set(dates)) == 1 else f"{t.date(dates[0])} – {t.date(dates[-1])}"
    )
    return t("{dates} (estimate)", dates=shown) if estimated else shown


def titles_of(flows: Flows) -> dict[str, str]:
    """Deadline and estimate ids -> their titles (message ids)."""
    rules = flows.timeline
    titles = {r.id: r.title for r in rules.deadlines}
    titles.update({r.id: r.title for r in rules.estimates})
    return titles


def checklist_lines(t: Text, delta: Delta, old: Flows, new: Flows) -> list[str]:
    items = {i.id: i.title for i in (*old.items, *new.items)}
    was, now = dict(delta.old.checklist), dict(delta.new.checklist)
    added = [t(items[i]) for i in now if i not in was]
    removed = [t(items[i]) for i in was if i not in now]
    changed = [f"{t(items[i])}: {t(now[i])}" for i in now if i in was and was[i] != now[i]]
    lines = []
    if added:
        lines.append("• " + t("New on your checklist: {items}", items=t(", ").join(added)))
    if removed:
        lines.append("• " + t("No longer on your checklist: {items}", items=t(", ").join(removed)))
    lines += ["• " + t("Changed on your checklist: {item}", item=item) for item in changed]
    return lines


def perk_lines(t: Text, delta: Delta) -> list[str]:
    was, now = dict(delta.old.perks), dict(delta.new.perks)
    lines = [
        "• " + t("Park perk “{title}”: {detail}", title=t(title), detail=t(detail))
        for title, detail in now.items()
        if was.get(title) != detail
    ]
    lines += [
        "• " + t("Park perk “{title}” no longer applies to you.", title=t(title))
        for title in was
        if title not in now
    ]
    return lines


def render(t: Text, delta: Delta, old: Flows, new: Flows, cited: list[Cited], version: int) -> str:
    lines = [
        t(
            "Our K visa guidance has changed (version {version}). What it means for you:",
            version=version,
        )
    ]
    if delta.eligibility:
        lines.append(
            "• "
            + t(
                "Verdict: {old} → {new}",
                old=verdict_text(t, old, delta.old),
                new=verdict_text(t, new, delta.new),
            )
        )
    lines += checklist_lines(t, delta, old, new)
    lines += perk_lines(t, delta)
    warnings = [w for w in delta.new.warnings if w not in delta.old.warnings]
    if [w for w in delta.old.warnings if w not in delta.new.warnings] or warnings:
        lines.append("• " + t("The notes of your verdict changed: send /checklist to read them."))
    titles = {**titles_of(old), **titles_of(new)}
    for ident, was, now in delta.moved():
        lines.append(
            "• "
            + t(
                "{title}: {old} → {new}",
                title=t(titles.get(ident, ident)),
                old=dates_text(t, was, ident in delta.old.estimated),
                new=dates_text(t, now, ident in delta.new.estimated),
            )
        )
    for source in cited:
        if source.notice:
            lines.append(t("Source: {title}.", title=source.notice))
        elif source.source in new.sources:
            title = t(new.sources[source.source].title)
            day = source.as_of or new.sources[source.source].as_of
            lines.append(t("Source: {title} (checked {date}).", title=title, date=t.date(day)))
    lines.append(t("Send /checklist or /timeline to see everything, or /human to ask a person."))
    return "\n".join(lines)


def notice(
    catalogs: Catalogs,
    lang: Lang,
    delta: Delta,
    old: Flows,
    new: Flows,
    cited: list[Cited],
    version: int,
) -> str:
    """The applicant's notice, their language first and the other below."""
    return bilingual(catalogs, lang, lambda t: render(t, delta, old, new, cited, version))
