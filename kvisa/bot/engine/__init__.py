"""The channel-neutral conversation engine: Inbound in, Outbound out."""

from kvisa.bot.engine.types import Attachment, Inbound, Outbound, UiOption

__all__ = ["Attachment", "Inbound", "Outbound", "UiOption"]
