"""Texts built from flows and assessments for one reader's language. Pure functions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from kvisa.bot.content.model import Flows, Question
from kvisa.bot.i18n import N_, Text
from kvisa.bot.policy.eligibility import Assessment, facts_of
from kvisa.bot.policy.zones import ZoneChoice
from kvisa.bot.session import Outcome, Session


def answer_label(t: Text, question: Question, value: Any) -> str:
    """An answer as the reader should see it."""
    if question.options:
        option = next((o for o in question.options if o.value == value), None)
        return t(option.label) if option else str(value)
    if question.kind == "date":
        return t.date(dt.date.fromisoformat(value))
    if question.kind == "country":
        return t.country(value)
    if question.kind == "zone":
        return ZoneChoice(value, (value,)).label(t.locale)
    return str(value)


def pair(t: Text, title: str, detail: str) -> str:
    """`title: detail` with the reader's colon (Chinese uses the full-width one)."""
    return t("{title}: {detail}", title=title, detail=detail)


def help_text(t: Text, commands: Iterable[tuple[str, str]]) -> str:
    """The commands (name, summary msgid) as a list."""
    lines = [t("Commands you can send at any time:")]
    lines += [f"/{name} — {t(summary)}" for name, summary in commands]
    return "\n".join(lines)


def source_note(t: Text, flows: Flows, source_id: str) -> str:
    source = flows.sources[source_id]
    return t("Source: {title} (checked {date}).", title=t(source.title), date=t.date(source.as_of))


def verdict(t: Text, flows: Flows, result: Assessment, answers: Mapping[str, Any]) -> str:
    titles = {c.id: t(c.title) for c in flows.channels}
    lines: list[str] = []
    if result.eligible:
        names = t(", ").join(titles[c] for c in result.channels)
        if result.under_age:  # outside embassy practice, not refused: the warning below says so
            lines.append(
                t(
                    "⚠️ You meet the K visa's conditions through: {channels}, but your age "
                    "is outside what embassies and consulates generally apply.",
                    channels=names,
                )
            )
        else:
            lines.append(t("✅ You qualify for the K visa through: {channels}.", channels=names))
        for channel in flows.channels:
            if channel.id in result.channels:
                lines.append("• " + pair(t, titles[channel.id], t(channel.summary)))
    else:
        lines.append(t("❌ On these answers you do not qualify for the K visa."))
        for res in result.channel_results:
            lines.append("• " + t("{title}:", title=titles[res.id]))
            lines += [f"  – {t(reason)}" for reason in res.unmet]
    lines.append(
        t(
            "Your age on {date}: {age}.",
            date=t.date(result.planned_application),
            age=result.age_at_application,
        )
    )
    for warning in result.warnings:
        lines.append("⚠️ " + warning.text_in(t))
    if result.passport is not None and "passport_validity" not in {w.id for w in result.warnings}:
        latest, expiry = result.passport
        lines.append(t(flows.passport.allows, date=t.date(latest), expiry=t.date(expiry)))
    park = flows.park(str(answers.get("park", "")))
    facts = facts_of(flows, answers, {"channels": result.channels})
    perks = [perk for perk in park.perks if perk.applies(facts)] if park else []
    if park and perks and result.eligible:
        lines.append(t("{park} offers you:", park=t(park.name)))
        lines += ["• " + pair(t, t(perk.title), t(perk.detail)) for perk in perks]
    lines.append("")
    lines.append(t(flows.disclaimer))
    lines.append(source_note(t, flows, flows.channels[0].source))
    if result.eligible:
        lines.append(t("Send /checklist for your documents, or /edit to change an answer."))
    else:
        lines.append(t("If an answer was wrong, send /edit to change it."))
    return "\n".join(lines)


def checklist(t: Text, flows: Flows, result: Assessment, ticked: Iterable[str]) -> str:
    done = set(ticked)
    ready = sum(1 for entry in result.checklist if entry.item.id in done)
    lines = [
        t("Your documents: {ready} of {total} ready.", ready=ready, total=len(result.checklist))
    ]
    for step in flows.steps:
        entries = [e for e in result.checklist if e.item.step == step.id]
        if not entries:
            continue
        lines.append("")
        lines.append(t(step.title))
        for entry in entries:
            mark = "☑" if entry.item.id in done else "☐"
            lines.append(f"{mark} " + pair(t, t(entry.item.title), t(entry.detail)))
    if not result.eligible:
        lines.append("")
        lines.append(
            t("Note: on your answers you do not qualify yet; this list shows what you would need.")
        )
    lines.append("")
    lines.append(t("Choose an item to tick it off or untick it."))
    return "\n".join(lines)


def change_summary(t: Text, flows: Flows, before: Outcome, after: Assessment) -> str:
    """What an edit changed in the verdict and the checklist."""
    titles = {c.id: t(c.title) for c in flows.channels}
    item_titles = {i.id: t(i.title) for i in flows.items}
    lines = []
    if before.eligible != after.eligible:
        lines.append(
            t("Verdict: you now qualify.")
            if after.eligible
            else t("Verdict: you no longer qualify.")
        )
    gained = [c for c in after.channels if c not in before.channels]
    lost = [c for c in before.channels if c not in after.channels]
    if gained:
        lines.append(t("Channels added: {names}", names=t(", ").join(titles[c] for c in gained)))
    if lost:
        lines.append(t("Channels removed: {names}", names=t(", ").join(titles[c] for c in lost)))
    added = [i for i in after.checklist_ids if i not in before.checklist]
    removed = [i for i in before.checklist if i not in after.checklist_ids]
    if added:
        lines.append(
            t("New on your checklist: {items}", items=t(", ").join(item_titles[i] for i in added))
        )
    if removed:
        lines.append(
            t(
                "No longer needed: {items}",
                items=t(", ").join(item_titles.get(i, i) for i in removed),
            )
        )
    if not lines:
        return t("Your change did not alter the verdict or the checklist.")
    return "\n".join([t("What changed:")] + lines)


def my_data(t: Text, flows: Flows, session: Session) -> str:
    lines = [t("Everything we store about you:")]
    lines.append(t("Language: {lang}", lang="English" if session.lang == "en" else "中文"))
    if session.consent_at:
        consent_day = dt.datetime.fromisoformat(session.consent_at).date()
        lines.append(t("Consent given on {date}.", date=t.date(consent_day)))
    for question in flows.questions:
        if question.id in session.answers:
            value = answer_label(t, question, session.answers[question.id])
            lines.append("• " + pair(t, t(question.short), value))
    for event in flows.timeline.events:
        if event.id in session.events:
            lines.append(
                "• "
                + pair(t, t(event.done), t.date(dt.date.fromisoformat(session.events[event.id])))
            )
    if session.deficiency_tolerance is not None:
        lines.append(
            "• "
            + pair(
                t,
                t(flows.timeline.deficiency_question),
                t("Yes") if session.deficiency_tolerance else t("No"),
            )
        )
    if session.ticked:
        titles = {i.id: t(i.title) for i in flows.items}
        lines.append(
            t(
                "Ticked documents: {items}",
                items=t(", ").join(titles.get(i, i) for i in session.ticked),
            )
        )
    if len(session.identities) > 1:
        names = [
            t(CHANNELS.get(i.partition(":")[0], i.partition(":")[0])) for i in session.identities
        ]
        lines.append(t("Linked channels: {channels}.", channels=t(", ").join(names)))
        if session.channel_choice:
            lines.append(
                t(
                    "Reminders and updates go to {channel} first.",
                    channel=t(CHANNELS.get(session.channel_choice, session.channel_choice)),
                )
            )
    if session.link_kept:
        lines.append(
            t(
                "The profile not chosen when linking is kept until {date}.",
                date=t.date(dt.datetime.fromisoformat(session.link_kept["until"]).date()),
            )
        )
    if session.reminders_sent:
        lines.append(t("Reminders sent: {n}.", n=len(session.reminders_sent)))
    if session.reminders_paused:
        lines.append(t("Reminders: paused."))
    if session.news_off:
        lines.append(t("Policy updates: off."))
    lines.append(t("Nothing else: no name, no passport number. Send /delete to erase all of it."))
    return "\n".join(lines)


# "Telegram" is a name in every language; the others are translated.
CHANNELS = {"telegram": "Telegram", "wechat": N_("WeChat"), "console": N_("the console")}


def parks(t: Text, flows: Flows) -> str:
    blocks = []
    for park in flows.parks:
        lines = [t(park.name)] + [
            "• " + pair(t, t(perk.title), t(perk.detail)) for perk in park.perks
        ]
        blocks.append("\n".join(lines))
    blocks.append(source_note(t, flows, flows.parks[0].source))
    return "\n\n".join(blocks)


def event_problem(t: Text, flows: Flows, problem: tuple[str, Mapping[str, Any]]) -> str:
    """Why a reported date cannot be right, naming the other step involved."""
    message, params = problem
    if "step" in params:
        other = flows.timeline.event(params["step"])
        params = {
            **params,
            "step": t(other.done) if other else params["step"],
            "date": t.date(params["date"], "medium"),
        }
    return t(message, **params)
