"""An FAQ answer as the applicant reads it: the question, the answer, one short line with its
source and as-of date, and what it relates to in their own case (a checklist item, an
interview question, a command)."""

from __future__ import annotations

from kvisa.bot.content.model import FaqEntry, Flows
from kvisa.bot.i18n import Text


def answer_text(t: Text, flows: Flows, entry: FaqEntry) -> str:
    source = flows.sources[entry.source]
    checked = entry.as_of or source.as_of
    lines = [
        f"❓ {t(entry.question)}",
        t(entry.answer),
        t("Source: {title}, as of {date}.", title=t(source.title), date=t.date(checked)),
    ]
    related = entry.related
    if related is not None and related.kind == "checklist":
        item = next((i for i in flows.items if i.id == related.target), None)
        if item is not None:
            lines.append(t("Checklist item: {item} (see /checklist).", item=t(item.title)))
    elif related is not None and related.kind == "question":
        question = flows.find_question(related.target)
        if question is not None:
            lines.append(
                t(
                    "Asked in the interview: {question} (/edit to change it).",
                    question=t(question.text),
                )
            )
    elif related is not None:
        lines.append(t("For your own case: /{command}", command=related.target))
    return "\n".join(lines)
