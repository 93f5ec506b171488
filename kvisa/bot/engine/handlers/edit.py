"""/edit: change one answer; the questions that depend on it are asked again."""

from __future__ import annotations

from kvisa.bot.engine import render
from kvisa.bot.engine.conversation import Conversation
from kvisa.bot.engine.registry import Router
from kvisa.bot.i18n import N_, Text
from kvisa.bot.messages import UiOption
from kvisa.bot.session import Kind

router = Router()


@router.command("edit", summary=N_("change one of your answers"), needs_consent=True)
def edit(conv: Conversation, args: str) -> None:
    if not conv.session.answers:
        conv.say(conv.t("You have not answered anything yet."))
        return conv.resume()
    conv.wait(Kind.EDIT)


def answered(conv: Conversation, t: Text) -> list[UiOption]:
    answers = conv.session.answers
    return [
        UiOption(q.id, render.pair(t, t(q.short), render.answer_label(t, q, answers[q.id])))
        for q in conv.flows.questions
        if q.id in answers
    ]


def change(conv: Conversation, question_id: str) -> None:
    conv.begin_edit()
    edit = conv.session.edit
    assert edit is not None
    edit.queue = [question_id]
    conv.ask(conv.flows.question(question_id))


@router.prompt(Kind.EDIT, options=answered, choose=change)
def which(conv: Conversation) -> str:
    return conv.t("Which answer do you want to change?")
