"""Background loops that end when they are asked to.

A loop that catches `Exception` to keep going can lose its own cancellation when a library
below turns it into an ordinary error (seen with redis-py while the server restarts: the
reminder drainer went on "cancelling" for good and the process never exited on SIGTERM).
Asking the task whether a cancel is pending, at the top of each pass and in each handler,
ends the loop either way.
"""

from __future__ import annotations

import asyncio


def raise_if_cancelled() -> None:
    """CancelledError when the running task has been asked to stop."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def pause(seconds: float) -> None:
    """A loop's wait between passes, which a swallowed cancel does not turn into a long sleep."""
    raise_if_cancelled()
    await asyncio.sleep(seconds)
