"""Deadline reminders: what to send when (plan), and delivering it exactly once (scheduler)."""
