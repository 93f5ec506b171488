"""Commands a user can send at any point: /start, /help, /back, /edit, /checklist, ..."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from kvisa.bot.engine import reminders, render, reports

if TYPE_CHECKING:
    from kvisa.bot.engine.turn import Turn


def start(turn: Turn, args: str) -> None:
    s, t = turn.session, turn.t
    park = turn.flows.find_question("park")
    deep_link = args.strip().lower()
    if park and park.option(deep_link):
        if s.consented:
            turn.say(
                t(
                    "Park from your link: {park}. You can change it with /edit.",
                    park=t(park.option(deep_link).label),
                )
            )  # type: ignore[union-attr]
            return turn.record(park, deep_link)
        s.prefill = {"park": deep_link}
    if not s.consented:
        return turn.welcome()
    turn.say(t("Welcome back! Let's continue where you stopped."))
    turn.resume()


def help_(turn: Turn, args: str) -> None:
    turn.say(render.help_text(turn.t))
    turn.ask_current()


def back(turn: Turn, args: str) -> None:
    """The answered question just before the current one, in interview order."""
    s, t = turn.session, turn.t
    order = [q.id for q in turn.flows.questions]
    current = s.awaiting["id"] if s.awaiting_kind() == "question" else None  # type: ignore[index]
    stop = order.index(current) if current else len(order)
    earlier = [qid for qid in order[:stop] if qid in s.answers]
    if not earlier:
        turn.say(t("This is the first question; there is nothing to go back to."))
        return turn.ask_current()
    turn.ask(turn.flows.question(earlier[-1]))


def edit(turn: Turn, args: str) -> None:
    if not turn.session.answers:
        turn.say(turn.t("You have not answered anything yet."))
        return turn.resume()
    turn.await_("edit")


def checklist(turn: Turn, args: str) -> None:
    s, t = turn.session, turn.t
    if not s.finished:
        turn.say(t("Your checklist depends on your answers: let's finish the interview first."))
        return turn.resume()
    turn.await_("checklist")


def timeline(turn: Turn, args: str) -> None:
    if not turn.session.finished:
        turn.say(turn.t("Your timeline depends on your answers: let's finish the interview first."))
        return turn.resume()
    reports.show(turn)


def calendar(turn: Turn, args: str) -> None:
    if not turn.session.finished:
        turn.say(turn.t("Your timeline depends on your answers: let's finish the interview first."))
        return turn.resume()
    reports.calendar(turn)


def reminders_(turn: Turn, args: str) -> None:
    if not turn.session.finished:
        turn.say(turn.t("Your timeline depends on your answers: let's finish the interview first."))
        return turn.resume()
    reminders.show(turn)


def news(turn: Turn, args: str) -> None:
    """The agency's policy updates: on by default; /news off and /news on."""
    s, t = turn.session, turn.t
    wanted = args.strip().lower()
    if wanted in ("off", "关", "关闭"):
        s.news_off = True
        turn.say(
            t(
                "You will no longer receive the agency's policy updates. Your deadline reminders are "
                "not affected (see /reminders). Send /news on to receive updates again."
            )
        )
    elif wanted in ("on", "开", "开启"):
        s.news_off = False
        turn.say(
            t("You will receive the agency's policy updates again. Send /news off to stop them.")
        )
    elif s.news_off:
        turn.say(t("Policy updates from the agency are off. Send /news on to receive them."))
    else:
        turn.say(
            t(
                "Policy updates from the agency are on: when a rule that concerns you changes, we tell you. "
                "Send /news off to stop them."
            )
        )
    turn.resume()


def lang(turn: Turn, args: str) -> None:
    wanted = args.strip().lower()
    if wanted in ("en", "zh"):
        return turn.set_language(wanted)  # type: ignore[arg-type]
    turn.await_("lang")


def confirm(action: str) -> Callable[[Turn, str], None]:
    def ask(turn: Turn, args: str) -> None:
        if action == "delete" and not turn.session.consented and not turn.session.answers:
            turn.say(turn.t("We store nothing about you."))
            turn.deleted = True
            return
        turn.await_("confirm", action=action)

    return ask


def mydata(turn: Turn, args: str) -> None:
    if not turn.session.consented:
        turn.say(turn.t("We store nothing about you."))
        return turn.ask_current()
    turn.say(render.my_data(turn.t, turn.flows, turn.session))
    turn.ask_current()


def faq(turn: Turn, args: str) -> None:
    turn.await_("faq")


def parks(turn: Turn, args: str) -> None:
    turn.say(render.parks(turn.t, turn.flows))
    turn.ask_current()


COMMANDS: dict[str, Callable[[Turn, str], None]] = {
    "start": start,
    "help": help_,
    "back": back,
    "edit": edit,
    "checklist": checklist,
    "lang": lang,
    "reset": confirm("reset"),
    "delete": confirm("delete"),
    "mydata": mydata,
    "faq": faq,
    "parks": parks,
    "timeline": timeline,
    "calendar": calendar,
    "reminders": reminders_,
    "news": news,
}
NEEDS_CONSENT = frozenset(
    {"back", "edit", "checklist", "reset", "timeline", "calendar", "reminders", "news"}
)


def run_command(turn: Turn, name: str, args: str) -> None:
    handler = COMMANDS.get(name)
    if handler is None:
        turn.say(
            turn.t("I don't know the command /{name}.", name=name[:32])
            + "\n\n"
            + render.help_text(turn.t)
        )
        return turn.ask_current() if not turn.is_new else turn.welcome()
    if name in NEEDS_CONSENT and not turn.session.consented:
        return turn.welcome()
    handler(turn, args)
