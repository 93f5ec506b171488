"""Every command and prompt of the conversation, one module per subject. Each module has a
`router`; the registry below is the only list of them (the order is /help's)."""

from kvisa.bot.engine.handlers import (
    account,
    asked,
    checklist,
    edit,
    handover,
    info,
    linking,
    questions,
    reminders,
    timeline,
)
from kvisa.bot.engine.registry import Registry

REGISTRY = Registry(
    module.router
    for module in (
        questions,
        info,
        edit,
        checklist,
        timeline,
        reminders,
        linking,
        account,
        handover,
        asked,
    )
)
