"""/checklist: the documents the verdict calls for, ticked off one by one."""

from __future__ import annotations

from kvisa.bot.engine import render
from kvisa.bot.engine.conversation import Conversation
from kvisa.bot.engine.registry import Router
from kvisa.bot.i18n import N_, Text
from kvisa.bot.messages import UiOption
from kvisa.bot.session import Kind

router = Router()
DONE = "_done"


@router.command("checklist", summary=N_("your document checklist"), needs_consent=True)
def checklist(conv: Conversation, args: str) -> None:
    if not conv.session.finished:
        conv.say(
            conv.t("Your checklist depends on your answers: let's finish the interview first.")
        )
        return conv.resume()
    conv.wait(Kind.CHECKLIST)


def items(conv: Conversation, t: Text) -> list[UiOption]:
    done = set(conv.session.ticked)
    entries = [
        UiOption(e.item.id, ("☑ " if e.item.id in done else "☐ ") + t(e.item.title))
        for e in conv.assessment().checklist
    ]
    return entries + [UiOption(DONE, t("Done"))]


def tick(conv: Conversation, item_id: str) -> None:
    s = conv.session
    if item_id == DONE:
        return conv.resume()
    ticked = item_id in s.ticked
    s.ticked = [i for i in s.ticked if i != item_id] if ticked else s.ticked + [item_id]
    conv.ask_current()


@router.prompt(Kind.CHECKLIST, options=items, choose=tick)
def listing(conv: Conversation) -> str:
    return render.checklist(conv.t, conv.flows, conv.assessment(), conv.session.ticked)
