"""What the applicant sent, read against the pending prompt: a button, or typed text that may
name an option (in either language), a number, a free answer, or nothing we can use."""

from __future__ import annotations

from typing import Protocol

from kvisa.bot.engine.choice import labels_by_id, match_option, unreadable
from kvisa.bot.engine.conversation import Conversation
from kvisa.bot.engine.registry import Prompt, Registry
from kvisa.bot.i18n import LANGS, Lang
from kvisa.bot.messages import UiOption
from kvisa.bot.session import Kind


class Reader(Conversation, Protocol):
    """A conversation that also knows its registry and its pending prompt (the turn)."""

    registry: Registry

    def pending(self) -> Prompt | None: ...

    def options(self, lang: Lang | None = None) -> list[UiOption]: ...


def pressed(turn: Reader, option: str, prompt: int | None) -> None:
    """A button: a reminder's works whatever is pending; another must be the pending one's."""
    action = turn.registry.action_for(option)
    if action is not None:
        return action.run(turn, option)
    if prompt is not None and prompt != turn.session.prompt:
        turn.say(turn.t("That button belongs to an earlier question. Here is the current one."))
        return turn.ask_current()
    choose(turn, by_position(turn, option))


def by_position(turn: Reader, option: str) -> str:
    """`#3` is the third option of the pending prompt (platforms that limit button data)."""
    if option.startswith("#") and option[1:].isdigit():
        options, index = turn.options(), int(option[1:])
        return options[index - 1].id if 1 <= index <= len(options) else ""
    return option


def choose(turn: Reader, option_id: str) -> None:
    prompt = turn.pending()
    if prompt is None or option_id not in {o.id for o in turn.options()}:
        return turn.stale()
    action = turn.registry.action_for(option_id)
    (action.run if action is not None else prompt.choose)(turn, option_id)


def typed(turn: Reader, text: str) -> None:
    t = turn.t
    action = turn.registry.action_for(text.strip())
    if action is not None:  # a reminder's option id typed (the console numbers them)
        return action.run(turn, text.strip())
    problem = unreadable(t, text)
    if problem is not None:
        turn.say(problem)
        return turn.ask_current()
    prompt, options = turn.pending(), turn.options()
    if options:
        labels = labels_by_id(turn.options(lang) for lang in LANGS)
        chosen = match_option(text, options, labels)
        if chosen is not None:
            return choose(turn, chosen.id)
        if text.strip().isdigit() and not (prompt and prompt.takes_digits(turn)):
            turn.say(t("Please choose a number from 1 to {count}.", count=len(options)))
            return turn.ask_current()
    if prompt is not None and prompt.read is not None:
        return prompt.read(turn, text)
    if turn.free_text(text):  # a question in the applicant's own words
        return None
    if prompt is None or prompt.kind is Kind.MENU:
        turn.say(t("I did not understand that. Choose an option below or send /help."))
    else:
        turn.say(t("Please choose one of the options, by its number or its name."))
    turn.ask_current()
