"""KVisa bot: a bilingual assistant for China's K-type visa and the Shanghai permits after it."""

__version__ = "0.1.0"
