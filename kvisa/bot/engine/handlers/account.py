"""The user's own settings and data: /lang, /news, /reset and /delete."""

from __future__ import annotations

from kvisa.bot.engine.conversation import Conversation
from kvisa.bot.engine.registry import Router
from kvisa.bot.i18n import N_, Lang, Text
from kvisa.bot.messages import UiOption
from kvisa.bot.session import Kind

router = Router()
LANGUAGES: dict[str, Lang] = {"en": "en", "zh": "zh"}


@router.command(
    "news", summary=N_("the agency's policy updates: /news off or /news on"), needs_consent=True
)
def news(conv: Conversation, args: str) -> None:
    """The agency's policy updates: on by default; /news off and /news on."""
    s, t = conv.session, conv.t
    wanted = args.strip().lower()
    if wanted in ("off", "关", "关闭"):
        s.news_off = True
        conv.say(
            t(
                "You will no longer receive the agency's policy updates. Your deadline "
                "reminders are not affected (see /reminders). Send /news on to receive "
                "updates again."
            )
        )
    elif wanted in ("on", "开", "开启"):
        s.news_off = False
        conv.say(
            t("You will receive the agency's policy updates again. Send /news off to stop them.")
        )
    elif s.news_off:
        conv.say(t("Policy updates from the agency are off. Send /news on to receive them."))
    else:
        conv.say(
            t(
                "Policy updates from the agency are on: when a rule that concerns you changes, "
                "we tell you. Send /news off to stop them."
            )
        )
    conv.resume()


# --- language --------------------------------------------------------------------------------


@router.command("lang", summary=N_("English / 中文"))
def lang(conv: Conversation, args: str) -> None:
    wanted = LANGUAGES.get(args.strip().lower())
    if wanted is not None:
        return set_language(conv, wanted)
    conv.wait(Kind.LANG)


def set_language(conv: Conversation, lang: Lang) -> None:
    conv.session.lang, conv.session.lang_chosen = lang, True
    t = conv.t
    conv.say(t("Language set to English.") if lang == "en" else t("Language set to Chinese."))
    conv.resume()


def languages(conv: Conversation, t: Text) -> list[UiOption]:
    return [UiOption("en", "English"), UiOption("zh", "中文")]


def language_chosen(conv: Conversation, option_id: str) -> None:
    set_language(conv, LANGUAGES[option_id])


@router.prompt(Kind.LANG, options=languages, choose=language_chosen)
def choose_language(conv: Conversation) -> str:
    return conv.t("Choose your language:")


# --- erasing ---------------------------------------------------------------------------------


@router.command("reset", summary=N_("start the interview again"), needs_consent=True)
def reset(conv: Conversation, args: str) -> None:
    conv.wait(Kind.CONFIRM, "reset")


@router.command("delete", summary=N_("erase all your data"))
def delete(conv: Conversation, args: str) -> None:
    if not conv.session.consented and not conv.session.answers:
        conv.say(conv.t("We store nothing about you."))
        return conv.erase()
    conv.wait(Kind.CONFIRM, "delete")


def yes_no(conv: Conversation, t: Text) -> list[UiOption]:
    return [UiOption("yes", t("Yes, go ahead")), UiOption("no", t("No, keep it"))]


def confirmed(conv: Conversation, option_id: str) -> None:
    s, t = conv.session, conv.t
    action = s.awaiting.subject if s.awaiting else ""
    if option_id != "yes":
        conv.say(t("Nothing was changed."))
        return conv.resume()
    if action == "delete":
        conv.say(t("All your data has been erased. Send /start if you want to begin again."))
        return conv.erase()
    s.answers, s.edit, s.finished, s.ticked = {}, None, False, []
    s.events, s.deficiency_tolerance = {}, None
    s.snoozed, s.reminders_dismissed = {}, {}
    conv.say(t("Your answers are cleared. Let's start again."))
    conv.advance()


@router.prompt(Kind.CONFIRM, options=yes_no, choose=confirmed)
def confirm(conv: Conversation) -> str:
    t, waiting = conv.t, conv.session.awaiting
    if waiting is not None and waiting.subject == "delete":
        return t("Erase everything we store about you? This cannot be undone.")
    return t("Clear all your answers and start the interview again?")
