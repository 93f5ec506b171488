"""What the bot can tell at any moment: /help, /faq, /parks, /mydata, and the menu shown once
the verdict is given."""

from __future__ import annotations

from kvisa.bot.engine import render
from kvisa.bot.engine.conversation import Conversation
from kvisa.bot.engine.faq_text import answer_text
from kvisa.bot.engine.registry import Router
from kvisa.bot.i18n import N_, Text
from kvisa.bot.messages import UiOption
from kvisa.bot.session import Kind

router = Router()
DONE = "_done"
# The menu after the verdict: commands and their labels.
MENU = (
    ("timeline", N_("My timeline")),
    ("checklist", N_("My checklist")),
    ("edit", N_("Change an answer")),
    ("faq", N_("Common questions")),
    ("parks", N_("Park perks")),
)


@router.command("help", summary=N_("show this help"))
def help_(conv: Conversation, args: str) -> None:
    conv.say(render.help_text(conv.t, conv.commands()))
    conv.ask_current()


def menu_options(conv: Conversation, t: Text) -> list[UiOption]:
    return [UiOption(command, t(label)) for command, label in MENU]


def menu_chosen(conv: Conversation, command: str) -> None:
    conv.run_command(command)


@router.prompt(Kind.MENU, options=menu_options, choose=menu_chosen)
def menu(conv: Conversation) -> str:
    return conv.t("What would you like to do next?")


@router.command("faq", summary=N_("common questions"))
def faq(conv: Conversation, args: str) -> None:
    conv.wait(Kind.FAQ)


def questions(conv: Conversation, t: Text) -> list[UiOption]:
    return [UiOption(e.id, t(e.question)) for e in conv.flows.faq] + [UiOption(DONE, t("Done"))]


def answer(conv: Conversation, entry_id: str) -> None:
    if entry_id == DONE:
        return conv.resume()
    entry = next(e for e in conv.flows.faq if e.id == entry_id)
    conv.say(answer_text(conv.t, conv.flows, entry))
    conv.ask_current()


@router.prompt(Kind.FAQ, options=questions, choose=answer)
def choose_question(conv: Conversation) -> str:
    return conv.t("Choose a question, or type your own in your own words:")


@router.command("parks", summary=N_("Zhangjiang and Lingang perks"))
def parks(conv: Conversation, args: str) -> None:
    conv.say(render.parks(conv.t, conv.flows))
    conv.ask_current()


@router.command("mydata", summary=N_("see everything we store about you"))
def mydata(conv: Conversation, args: str) -> None:
    if not conv.session.consented:
        conv.say(conv.t("We store nothing about you."))
    else:
        conv.say(render.my_data(conv.t, conv.flows, conv.session))
        if conv.session.finished and conv.flows.version is not None:
            message = N_("Your verdict and dates follow version {version} of our content.")
            conv.say(conv.t(message, version=conv.flows.version))
    conv.ask_current()
