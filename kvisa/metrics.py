"""What `kvisa serve` counts, for Prometheus (`GET /metrics`): every family is declared here,
once, and bumped where its event happens (one call at each place).

Below everything but the identity and the errors, so that the storage can count its own
failures. The values live in this process's REGISTRY; gauges that describe a running server
(queues, leadership) are read when /metrics is asked (bot/observability.py), not kept here.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)  # CPU, memory, open files: process_* (Linux)

CHANNELS = ("telegram", "wechat", "console")
# Seconds: from a few milliseconds (a button press on Redis) to WeChat's 4 s passive deadline.
TURN_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 4.0, 10.0)

updates = Counter(
    "kvisa_updates",
    "Updates (messages, button presses, events) handled, per channel",
    ["channel"],
    registry=REGISTRY,
)
duplicate_updates = Counter(
    "kvisa_duplicate_updates",
    "Updates recognised as delivered before (a platform's retry) and not handled again",
    ["channel"],
    registry=REGISTRY,
)
turn_seconds = Histogram(
    "kvisa_turn_seconds",
    "Time a turn takes: the user's record read, the engine run, the change committed",
    ["channel"],
    buckets=TURN_BUCKETS,
    registry=REGISTRY,
)
replies_sent = Counter(
    "kvisa_replies_sent",
    "Messages sent to users in answer to what they wrote (edits included)",
    ["channel"],
    registry=REGISTRY,
)
rate_limited = Counter(
    "kvisa_rate_limited",
    "Answers from a platform that the bot sends too fast (Telegram 429, WeChat 45009/45011)",
    ["channel"],
    registry=REGISTRY,
)
retries = Counter(
    "kvisa_retries",
    "Platform API calls tried again after flood control, a network fault or a 5xx",
    ["channel"],
    registry=REGISTRY,
)
reminders_due = Counter(
    "kvisa_reminders_due",
    "Reminder deliveries a scheduler job found due and took on (claimed)",
    registry=REGISTRY,
)
reminders_sent = Counter(
    "kvisa_reminders_sent",
    "Reminders the platform accepted",
    ["channel"],
    registry=REGISTRY,
)
reminders_failed = Counter(
    "kvisa_reminders_failed",
    "Reminder sends that failed or timed out (tried again after KVISA_REMINDER_RETRY)",
    ["channel"],
    registry=REGISTRY,
)
reminders_late = Counter(
    "kvisa_reminders_late",
    "Reminders sent late (missed while no process could send them), with wording that says so",
    registry=REGISTRY,
)
broadcast_messages = Counter(
    "kvisa_broadcast_messages",
    "Broadcast recipients settled, by outcome (sent, failed, blocked, skipped, undeliverable)",
    ["outcome"],
    registry=REGISTRY,
)
storage_errors = Counter(
    "kvisa_storage_errors",
    "Storage calls that failed (connection lost, timeout, server error)",
    ["backend"],
    registry=REGISTRY,
)
typed_questions = Counter(
    "kvisa_typed_questions",
    "Questions typed in the applicant's own words, by what the bot did: answered, "
    "did_you_mean, to_a_person (a topic no source covers) or unknown (nothing known fits)",
    ["outcome"],
    registry=REGISTRY,
)
