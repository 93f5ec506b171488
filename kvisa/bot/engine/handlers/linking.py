"""One applicant on Telegram and WeChat: /link, /unlink, /channel, and the choice of profile.

The engine does the I/O (engine/links.py: codes, the other profile, the writes); what it
found is `conv.link`, and what is to be written is asked with `conv.join` and `conv.unlink`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from kvisa.bot.engine.conversation import Conversation
from kvisa.bot.engine.registry import Router
from kvisa.bot.i18n import N_, Text
from kvisa.bot.messages import Attachment, Outbound, UiOption
from kvisa.bot.policy.answers import answer_values
from kvisa.bot.policy.eligibility import assess
from kvisa.bot.session import Kind

router = Router()
# "Telegram" is a name in every language; the others are translated.
CHANNELS = {"telegram": "Telegram", "wechat": N_("WeChat"), "console": N_("the console")}
OFFER_MINUTES = 10  # a redeemed code's offer waits this long for the choice or the consent


def channel(t: Text, name: str) -> str:
    return t(CHANNELS[name]) if name in CHANNELS else name


def others(conv: Conversation) -> list[str]:
    """The applicant's other channel identities."""
    me = str(conv.inbound.user)
    return [i for i in conv.session.identities if i != me]


def has_profile(data: dict[str, Any] | None) -> bool:
    return bool(data and (data.get("answers") or data.get("events")))


def summary(conv: Conversation, t: Text, data: dict[str, Any]) -> str:
    """One line: the verdict (or how far the interview got) and the last step reported."""
    answers = data.get("answers") or {}
    if data.get("finished"):
        try:
            eligible = assess(conv.flows, answer_values(conv.flows, answers), conv.today).eligible
        except Exception:  # answers this release cannot read: say no more than "done"
            verdict = t("interview done")
        else:
            verdict = t("eligible") if eligible else t("not eligible")
    else:
        verdict = t.plural(
            "interview started, {n} answer", "interview started, {n} answers", len(answers)
        )
    events = data.get("events") or {}
    reached = [e for e in conv.flows.timeline.events if e.id in events]
    step = t(reached[-1].done) if reached else t("no step reported yet")
    return t("{verdict}; {step}", verdict=verdict, step=step)


# --- /link ---------------------------------------------------------------------------------------


@router.command("link", summary=N_("use this profile on Telegram and WeChat too: /link"))
def link(conv: Conversation, args: str) -> None:
    context, s, t = conv.link, conv.session, conv.t
    if context is not None and context.kind == "joined":
        return linked(conv)
    if context is None:
        # Asked by the consent just given (the offer waited for it), or a /start link- that
        # came with no code.
        if s.link_offer and s.consented and s.link_offer.get("keep"):
            return conv.join(s.link_offer["to"], s.link_offer["keep"])
        return conv.ask_current()
    if context.kind == "issued":
        if others(conv):
            conv.say(already(t, others(conv)))
            return conv.ask_current()
        return show_code(conv)
    if context.kind == "refused":
        conv.say(refusal(conv, t))
        if s.awaiting is not None:
            conv.ask_current()
        return None
    if context.kind != "offer" or context.target_data is None:
        return conv.ask_current()
    if others(conv):
        conv.say(already(t, others(conv)))
        return conv.ask_current()
    mine, theirs = has_profile(s.to_json()), has_profile(context.target_data)
    until = conv.inbound.at + dt.timedelta(minutes=OFFER_MINUTES)
    offer: dict[str, Any] = {
        "to": context.target,
        "channel": context.target_channel,
        "until": until.isoformat(),
        "keep": "mine" if mine and not theirs else "theirs",
        "consented": bool(context.target_data.get("consent_at")),
    }
    if mine and theirs:
        offer["keep"] = ""
        offer["theirs_data"] = summary_facts(context.target_data)
        s.link_offer = offer
        return conv.wait(Kind.LINK_CHOICE)
    if not s.consented and not context.target_data.get("consent_at"):
        s.link_offer = offer
        conv.say(t("Before linking, please say whether you agree to how we keep your data."))
        return conv.wait(Kind.CONSENT)
    conv.join(offer["to"], offer["keep"])


def summary_facts(data: dict[str, Any]) -> dict[str, Any]:
    """What the choice's text needs of the other profile, kept with the offer."""
    return {k: data.get(k) for k in ("answers", "finished", "events")}


def already(t: Text, identities: list[str]) -> str:
    names = t(", ").join(channel(t, i.partition(":")[0]) for i in identities)
    return t(
        "This chat is already linked with {channels}. Send /unlink to separate them first.",
        channels=names,
    )


def show_code(conv: Conversation) -> None:
    context, t = conv.link, conv.t
    assert context is not None
    code = context.code
    lines = [t("Your linking code: {code}. It works once, for 10 minutes.", code=code)]
    here = conv.inbound.user.channel
    if here == "wechat":
        lines.append(t("On Telegram, send the bot: /link {code}", code=code))
        if context.deep_link:
            lines.append(t("Or open this link in Telegram: {link}", link=context.deep_link))
    elif here == "telegram":
        lines.append(t("On WeChat, follow our account and send: /link {code}", code=code))
    else:
        lines.append(t("On your other channel, send: /link {code}", code=code))
    if context.qr is not None:
        lines.append(t("Or scan the QR code below with WeChat: it links without typing."))
    conv.say("\n".join(lines))
    if context.qr is not None:
        picture = Attachment("link-qr.png", "image/png", context.qr, caption=code)
        conv.send(Outbound(t("WeChat QR code"), attachments=(picture,)))
    if conv.session.awaiting is not None:
        conv.ask_current()
    elif not conv.session.consented:  # kept (a day) so the code has a profile to lead to
        conv.wait(Kind.CONSENT)


def refusal(conv: Conversation, t: Text) -> str:
    context = conv.link
    assert context is not None
    reason = context.reason
    if reason == "locked":
        return t(
            "Too many wrong codes from this account: linking is locked for an hour. "
            "Your other channels work as before."
        )
    if reason == "busy":
        return t("Too many linking attempts right now. Please try again in an hour.")
    if reason == "own":
        return t("That code was given in this chat: send it on your other channel.")
    if reason == "channel_taken":
        return t(
            "That profile is already linked with another {channel} account.",
            channel=channel(t, conv.inbound.user.channel),
        )
    return t(
        "That code does not work. Codes have 6 digits, work once and for 10 minutes: "
        "send /link on your other channel for a new one."
    )


def linked(conv: Conversation) -> None:
    """The link was just made (this turn runs on the joined profile)."""
    t, s = conv.t, conv.session
    context = conv.link
    assert context is not None
    there = channel(t, context.other_channel)
    conv.say(t("Linked: this chat and your {channel} chat now share one profile.", channel=there))
    if s.consent_at:
        day = dt.datetime.fromisoformat(s.consent_at).date()
        conv.say(
            t(
                "You agreed on {date} to how we keep your data; that holds on both. "
                "See /mydata, or /unlink to separate them.",
                date=t.date(day),
            )
        )
    if s.link_kept:
        conv.say(t("The other profile is kept for 7 days: /unlink within that time gives it back."))
    here = conv.inbound.user.channel
    for identity in others(conv):
        tt = conv.t
        conv.tell(
            identity,
            tt(
                "Linked: this chat and your {channel} chat now share one profile. "
                "Send /unlink to separate them.",
                channel=channel(tt, here),
            ),
        )
    s.link_offer = None
    conv.resume()


# --- which profile to keep --------------------------------------------------------------------


def offer_live(conv: Conversation) -> dict[str, Any] | None:
    offer = conv.session.link_offer
    if not offer or str(offer.get("until", "")) <= conv.inbound.at.isoformat():
        return None
    return offer


def profiles(conv: Conversation, t: Text) -> list[UiOption]:
    offer = conv.session.link_offer or {}
    there = str(offer.get("channel", ""))
    theirs = summary(conv, t, offer.get("theirs_data") or {})
    mine = summary(conv, t, conv.session.to_json())
    return [
        UiOption("mine", t("Keep this chat's: {summary}", summary=mine)),
        UiOption(
            "theirs",
            t("Keep the {channel} one: {summary}", channel=channel(t, there), summary=theirs),
        ),
        UiOption("cancel", t("Do not link")),
    ]


def profile_chosen(conv: Conversation, option_id: str) -> None:
    s, t = conv.session, conv.t
    offer = offer_live(conv)
    if option_id == "cancel" or offer is None:
        s.link_offer = None
        if offer is None and option_id != "cancel":
            conv.say(t("That link request has expired. Send /link on your other channel again."))
        else:
            conv.say(t("Nothing was linked."))
        return conv.resume()
    s.link_offer = {**offer, "keep": option_id}
    if not s.consented and not s.link_offer.get("consented"):
        return conv.wait(Kind.CONSENT)
    conv.join(offer["to"], option_id)


@router.prompt(Kind.LINK_CHOICE, options=profiles, choose=profile_chosen)
def choose_profile(conv: Conversation) -> str:
    return conv.t(
        "Both chats already have answers. Which profile do you keep? The other is kept for "
        "7 days: /unlink within that time gives it back."
    )


# --- /unlink ------------------------------------------------------------------------------------


@router.command("unlink", summary=N_("separate your linked Telegram and WeChat chats"))
def unlink(conv: Conversation, args: str) -> None:
    if not others(conv):
        conv.say(conv.t("This chat is not linked with another channel."))
        if conv.session.awaiting is not None:
            conv.ask_current()
        return None
    conv.wait(Kind.UNLINK)


def yes_no(conv: Conversation, t: Text) -> list[UiOption]:
    return [UiOption("yes", t("Yes, separate them")), UiOption("no", t("No, keep them linked"))]


def unlink_chosen(conv: Conversation, option_id: str) -> None:
    s, t = conv.session, conv.t
    me = str(conv.inbound.user)
    if option_id != "yes" or not others(conv):
        conv.say(t("Nothing was changed."))
        return conv.resume()
    founder = s.identities[0]
    leaving = me if me != founder else s.identities[-1]
    stays = founder
    conv.unlink(leaving)
    separated = leaving if leaving != me else stays
    conv.say(
        t(
            "Separated: this chat and your {channel} chat each keep their own copy of your "
            "profile now.",
            channel=channel(t, separated.partition(":")[0]),
        )
    )
    conv.tell(
        separated,
        t(
            "Separated: this chat and your {channel} chat each keep their own copy of your "
            "profile now.",
            channel=channel(t, conv.inbound.user.channel),
        ),
    )
    conv.resume()


@router.prompt(Kind.UNLINK, options=yes_no, choose=unlink_chosen)
def confirm_unlink(conv: Conversation) -> str:
    names = conv.t(", ").join(channel(conv.t, i.partition(":")[0]) for i in others(conv))
    return conv.t(
        "Separate this chat from your {channels} chat? Each keeps a copy of your profile.",
        channels=names,
    )


# --- /channel -----------------------------------------------------------------------------------


@router.command(
    "channel", summary=N_("where reminders and updates reach you: /channel telegram or wechat")
)
def channel_command(conv: Conversation, args: str) -> None:
    wanted = args.strip().lower()
    if not others(conv):
        conv.say(
            conv.t(
                "Reminders and updates come to this chat: it is your only one. "
                "Send /link to add Telegram or WeChat."
            )
        )
        if conv.session.awaiting is not None:
            conv.ask_current()
        return None
    if wanted:
        return set_channel(conv, wanted)
    conv.wait(Kind.CHANNEL)


def set_channel(conv: Conversation, wanted: str) -> None:
    s, t = conv.session, conv.t
    mine = {i.partition(":")[0] for i in s.identities}
    if wanted in ("auto", "automatic", "自动"):
        s.channel_choice = None
        conv.say(
            t(
                "Reminders and updates go where you last wrote, and to WeChat first once you "
                "have entered China."
            )
        )
    elif wanted in mine:
        s.channel_choice = wanted
        conv.say(t("Reminders and updates go to {channel} first.", channel=channel(t, wanted)))
    else:
        conv.say(t("Choose one of your linked channels."))
        return conv.wait(Kind.CHANNEL)
    conv.resume()


def channels(conv: Conversation, t: Text) -> list[UiOption]:
    names = sorted({i.partition(":")[0] for i in conv.session.identities})
    return [UiOption(n, channel(t, n)) for n in names] + [UiOption("auto", t("Automatic"))]


def channel_chosen(conv: Conversation, option_id: str) -> None:
    set_channel(conv, option_id)


@router.prompt(Kind.CHANNEL, options=channels, choose=channel_chosen)
def choose_channel(conv: Conversation) -> str:
    s, t = conv.session, conv.t
    now = channel(t, s.channel_choice) if s.channel_choice else t("automatic")
    return t("Where should reminders and updates reach you first? Now: {now}.", now=now)
