"""How the interview moves: the next question, keeping an answer, the verdict at the end.

The turn offers these to handlers through Conversation (ask, record, advance, resume), so a
handler never imports this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kvisa.bot.content.model import Flows, Question
from kvisa.bot.engine import render
from kvisa.bot.engine.conversation import Conversation
from kvisa.bot.policy.answers import answer_value
from kvisa.bot.policy.eligibility import facts_of
from kvisa.bot.policy.zones import zone_choices
from kvisa.bot.session import Kind, Session


def visible(question: Question, facts: Mapping[str, Any]) -> bool:
    return question.when is None or question.when.holds(facts)


def advance(conv: Conversation) -> None:
    """Ask the next question: the edit queue first, then the first unanswered; else the verdict."""
    s = conv.session
    facts = conv.facts()
    queue = s.edit.queue if s.edit else []
    while queue:
        question = conv.flows.question(queue[0])
        if visible(question, facts):
            return conv.ask(question)
        queue.pop(0)
    for question in conv.flows.questions:
        if question.id not in s.answers and visible(question, facts):
            return conv.ask(question)
    finish(conv)


def finish(conv: Conversation) -> None:
    s, t = conv.session, conv.t
    result = conv.assessment()
    if s.edit is not None and s.edit.before is not None:
        conv.say(render.change_summary(t, conv.flows, s.edit.before, result))
    s.edit = None
    s.finished = True
    s.ticked = [i for i in s.ticked if i in result.checklist_ids]
    conv.say(render.verdict(t, conv.flows, result, conv.answers()))
    conv.wait(Kind.MENU)


def record(conv: Conversation, question: Question, value: Any) -> None:
    s = conv.session
    changed = question.id in s.answers and s.answers[question.id] != value
    if changed and s.edit is None:
        conv.begin_edit()
    s.answers[question.id] = value
    s.answers = still_applying(conv.flows, s.answers)
    if s.edit is not None:
        queue = [q for q in s.edit.queue if q != question.id]
        if changed:
            dependents = conv.flows.dependents([question.id])
            queue += [
                q.id for q in conv.flows.questions if q.id in dependents and q.id not in queue
            ]
        s.edit.queue = queue
    advance(conv)


def resume(conv: Conversation) -> None:
    """Back to the interview where it stood, or to the menu when it is done."""
    s = conv.session
    if not s.consented:
        return conv.wait(Kind.CONSENT)
    if s.finished and not s.edit:
        return conv.wait(Kind.MENU)
    advance(conv)


def forget_removed(flows: Flows, session: Session) -> bool:
    """Drop what a stored session holds of questions these flows no longer ask (an answer kept
    would be data we no longer need, and shown nowhere). True when the pending prompt was such a
    question: its reply must not be read as the answer to another one."""
    if not session.answers.keys() <= flows.question_ids:
        session.answers = {k: v for k, v in session.answers.items() if k in flows.question_ids}
    if session.edit is not None:
        session.edit.queue = [q for q in session.edit.queue if q in flows.question_ids]
    waiting = session.awaiting
    if waiting and waiting.kind is Kind.QUESTION and waiting.subject not in flows.question_ids:
        session.awaiting = None
        return True
    return False


def still_applying(flows: Flows, answers: Mapping[str, Any]) -> dict[str, Any]:
    """The answers to questions that still apply (an answer changed may rule others out)."""
    kept: dict[str, Any] = {}
    values: dict[str, Any] = {}
    for question in flows.questions:
        if question.id not in answers:
            continue
        if question.when is not None and not question.when.holds(facts_of(flows, values)):
            continue
        if question.kind == "zone" and not any(
            answers[question.id] == c.zone for c in zone_choices(kept.get("residence_country", ""))
        ):
            continue  # a clock of the previous country of residence
        kept[question.id] = answers[question.id]
        values[question.id] = answer_value(question, kept[question.id])
    return kept
