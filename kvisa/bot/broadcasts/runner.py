"""Delivering broadcasts: one process at a time (the leader), at the platforms' rate, each
recipient once, resumable after a restart.

Whoever creates a broadcast (an admin in the chat, the CLI, the HTTP API; any process) stores
it in the queue (store.py); the leader finds it within `poll_interval` (at once when it was
created in the same process) and sends. Messages go through the process's shared pacers, so
replies to applicants who are chatting go first and the broadcast yields (bot/pacing.py).

Flood control: a 429 puts that recipient back for `retry_after`; only when 429s come from
several chats within a second (the bot's own limit rather than one chat's) does every
broadcast message wait `retry_after`. Interactive replies never wait for a broadcast's 429.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from redis.asyncio import Redis

from kvisa import metrics
from kvisa.bot.applicants import is_forward, route, seen
from kvisa.bot.broadcasts import texts
from kvisa.bot.broadcasts.segment import may_receive
from kvisa.bot.broadcasts.settings import BroadcastSettings
from kvisa.bot.broadcasts.store import Broadcast, BroadcastStore, State, tally
from kvisa.bot.clock import Clock
from kvisa.bot.coordinator import Coordinator, LocalCoordinator, RedisCoordinator
from kvisa.bot.i18n import Catalogs, Lang
from kvisa.bot.loops import raise_if_cancelled
from kvisa.bot.messages import Outbound
from kvisa.bot.pacing import Pacer
from kvisa.bot.session import within_reply_window
from kvisa.errors import Blocked, ChannelError, RateLimited, Undeliverable
from kvisa.identity import UserKey
from kvisa.storage.redis import connect

log = logging.getLogger(__name__)


class NewsSender(Protocol):
    async def __call__(
        self, user: UserKey, messages: Sequence[Outbound], *, news: bool = False
    ) -> None: ...


Progress = Callable[[Broadcast], Awaitable[None]]


class Run:
    """One broadcast being delivered: its recipients' states in memory, saved chunk by chunk."""

    def __init__(self, broadcast: Broadcast, chunks: dict[int, dict[str, State]]) -> None:
        self.broadcast = broadcast
        self.chunks = chunks
        self.locks = {n: asyncio.Lock() for n in chunks}
        self.queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
        self.outstanding = 0  # recipients not in a final state yet (queued, deferred, in flight)
        self.finished = asyncio.Event()
        self.done_times: deque[float] = deque()  # when recent sends completed (for the rate)
        self.floods: deque[tuple[float, str]] = deque()  # recent 429s: (time, chat)
        self.messages: dict[str, str] = {}  # a notice's own message per recipient

    def counts(self) -> dict[str, int]:
        return tally(state for chunk in self.chunks.values() for state in chunk.values())


def merged(ours: dict[str, State], stored: dict[str, State]) -> dict[str, State]:
    """The run's states of a chunk, with the recipients erased since it was read taken out
    (the stored chunk no longer lists them; `ours` is changed to match) and their anonymous
    rows taken in."""
    for user in [user for user in ours if user not in stored]:
        del ours[user]
    for user, state in stored.items():
        ours.setdefault(user, state)
    return dict(ours)


class BroadcastRunner:
    def __init__(
        self,
        store: BroadcastStore,
        catalogs: Catalogs,
        clock: Clock,
        senders: Mapping[str, NewsSender],
        pacers: Mapping[str, Pacer],
        settings: BroadcastSettings,
        *,
        redis_url: str | None = None,
        redis_prefix: str = "kvisa",
        leader_ttl: float = 15.0,
        on_progress: Progress | None = None,
        on_blocked: Callable[[UserKey], Awaitable[None]] | None = None,
    ) -> None:
        self.store, self.storage = store, store.storage
        self.catalogs, self.clock = catalogs, clock
        self.senders, self.pacers, self.settings = senders, pacers, settings
        self.on_progress, self.on_blocked = on_progress, on_blocked
        self._client: Redis | None = None
        self.coordinator: Coordinator
        if redis_url:
            self._client = connect(redis_url)
            self.coordinator = RedisCoordinator(
                self._client, redis_prefix, leader_ttl, name="broadcasts"
            )
        else:
            self.coordinator = LocalCoordinator()
        self.runs: dict[str, asyncio.Task[None]] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        await self.coordinator.start(self._elected, self._deposed)

    async def stop(self) -> None:
        await self.coordinator.stop()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def leader(self) -> bool:
        return self.coordinator.leader

    def wake(self) -> None:
        """A broadcast was just queued in this process: look now rather than at the next poll."""
        self._wakeup.set()

    async def _elected(self) -> None:
        self._stopping.clear()
        self._watcher = asyncio.create_task(self._watch(), name="broadcasts-watch")

    async def _deposed(self) -> None:
        """Stop cleanly: sends in flight finish and are recorded; the rest stay pending."""
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None
        await asyncio.gather(*self.runs.values(), return_exceptions=True)
        self.runs.clear()

    def _forget_run(self, broadcast_id: str, _task: asyncio.Task[None]) -> None:
        self.runs.pop(broadcast_id, None)

    async def _watch(self) -> None:
        while not self._stopping.is_set():
            try:
                for broadcast_id in await self.store.ids():
                    if broadcast_id in self.runs:
                        continue
                    broadcast = await self.store.get(broadcast_id)
                    if broadcast is not None and broadcast.status in ("queued", "running"):
                        task = asyncio.create_task(
                            self._run(broadcast_id), name=f"broadcast {broadcast_id}"
                        )
                        self.runs[broadcast_id] = task
                        task.add_done_callback(functools.partial(self._forget_run, broadcast_id))
            except Exception:
                raise_if_cancelled()
                log.exception("looking for broadcasts failed")
            raise_if_cancelled()
            try:
                async with asyncio.timeout(self.settings.poll_interval):
                    await self._wakeup.wait()
            except TimeoutError:
                pass
            self._wakeup.clear()

    # --- one broadcast ------------------------------------------------------------------------

    async def _run(self, broadcast_id: str) -> None:
        try:
            await self._deliver_all(broadcast_id)
        except Exception:
            log.exception(
                "broadcast %s stopped on an error; it resumes at the next start", broadcast_id
            )

    async def _deliver_all(self, broadcast_id: str) -> None:
        broadcast = await self.store.get(broadcast_id)
        if broadcast is None:
            return
        chunks = {n: await self.store.chunk(broadcast_id, n) for n in range(broadcast.chunks)}
        run = Run(broadcast, chunks)
        if broadcast.kind == "notice":
            for n in chunks:
                run.messages.update(await self.store.messages(broadcast_id, n))
        for n, states in chunks.items():  # a process died while these were on the wire
            interrupted = [user for user, state in states.items() if state == "sending"]
            for user in interrupted:
                states[user] = "uncertain"
            if interrupted:
                log.warning(
                    "broadcast %s: %d sends interrupted by a crash are not repeated",
                    broadcast_id,
                    len(interrupted),
                )
                await self.store.change_chunk(broadcast_id, n, functools.partial(merged, states))
        if broadcast.status == "queued":
            broadcast.status, broadcast.started_at = "running", self.clock.now().isoformat()
        for n, states in chunks.items():
            for user, state in states.items():
                if state == "pending":
                    run.queue.put_nowait((n, user))
                    run.outstanding += 1
        if await self.store.cancelled(broadcast_id):
            await self._finish(run, "cancelled")
            return
        if run.outstanding == 0:
            await self._finish(run, "done")
            return
        await self._report(run)
        workers = [asyncio.create_task(self._worker(run)) for _ in range(self.settings.concurrency)]
        reporter = asyncio.create_task(self._reporter(run))
        stopping = asyncio.create_task(self._stopping.wait())
        finished = asyncio.create_task(run.finished.wait())
        await asyncio.wait([stopping, finished, reporter], return_when=asyncio.FIRST_COMPLETED)
        for task in (stopping, finished, reporter):
            task.cancel()
        # Workers stop taking recipients; a send already under way completes and is recorded.
        run.queue.put_nowait((-1, ""))  # wakes the workers waiting on an empty queue
        await asyncio.gather(*workers, return_exceptions=True)
        await asyncio.gather(reporter, return_exceptions=True)
        if await self.store.cancelled(broadcast_id):
            await self._finish(run, "cancelled")
        elif run.outstanding == 0:
            await self._finish(run, "done")
        else:  # stopping: figures saved, the rest resumes in the next leader
            await self._report(run)

    def _active(self, run: Run) -> bool:
        return not (self._stopping.is_set() or run.finished.is_set())

    async def _worker(self, run: Run) -> None:
        while self._active(run):
            n, user = await run.queue.get()
            if n < 0 or not self._active(run):
                run.queue.put_nowait((-1, ""))  # pass the wake-up on to the next worker
                if n >= 0:
                    run.queue.put_nowait((n, user))
                return
            await self._deliver_one(run, n, user)

    async def _set_state(self, run: Run, n: int, user: str, state: State) -> None:
        async with run.locks[n]:  # writes of one chunk in order, each with every change so far
            run.chunks[n][user] = state
            await self.store.change_chunk(
                run.broadcast.id, n, functools.partial(merged, run.chunks[n])
            )

    async def _deliver_one(self, run: Run, n: int, user_text: str) -> None:
        user = UserKey.parse(user_text)
        record = await self.storage.get(user)
        data = record.data if record else None
        if is_forward(data):  # linked to another applicant since it was chosen: not this one
            data = None
        state = self._precheck(user, data, notice=run.broadcast.kind == "notice")
        if state is None:
            assert data is not None
            order = route(user, data, self.clock.now(), set(self.senders))
            if not order:
                log.warning(
                    "broadcast %s: no channel of a recipient in this process", run.broadcast.id
                )
                state = "failed"
            else:
                lang: Lang = "zh" if data.get("lang") == "zh" else "en"
                routed = await self._send_routed(run, n, user, data, order, lang)
                if routed is None:  # stopping meanwhile: it stays pending
                    run.queue.put_nowait((n, user_text))
                    return
                state = routed
                if state == "pending":  # flood control: back in the queue after retry_after
                    return
        await self._set_state(run, n, user_text, state)
        metrics.broadcast_messages.labels(state).inc()
        run.done_times.append(time.monotonic())
        run.outstanding -= 1
        if run.outstanding == 0:
            run.finished.set()

    def _precheck(
        self, user: UserKey, data: dict[str, Any] | None, *, notice: bool = False
    ) -> State | None:
        """The applicant as stored now: erased, opted out or blocked everywhere since the
        broadcast was created. A notice of a change to one's own case is service, not news:
        /news off does not stop it."""
        if not (data is not None and data.get("consent_at") if notice else may_receive(data)):
            return "skipped"
        assert data is not None
        if data.get("inactive"):
            return "blocked"
        return None

    async def _send_routed(
        self,
        run: Run,
        n: int,
        user: UserKey,
        data: dict[str, Any],
        order: list[UserKey],
        lang: Lang,
    ) -> State | None:
        """Once per applicant: on the first of its channels that takes it (bot/applicants.py's
        order), the next one when a channel refuses. None when stopping before a send."""
        outcomes: list[State] = []
        for identity in order:
            if identity.channel == "wechat" and not within_reply_window(
                seen(data, identity), self.clock.now()
            ):
                outcomes.append("undeliverable")
                continue
            # The platform's turn is taken only by a message that goes out, not by a skip.
            pacer = self.pacers.get(identity.channel)
            if pacer is not None:
                await pacer.wait()
            if not self._active(run):
                return None
            state = await self._send(run, n, user, identity, self.senders[identity.channel], lang)
            if state in ("sent", "pending"):
                return state
            outcomes.append(state)
        for worst in ("undeliverable", "failed", "blocked"):
            if worst in outcomes:
                return worst
        return "failed"

    async def _send(
        self, run: Run, n: int, user: UserKey, identity: UserKey, sender: NewsSender, lang: Lang
    ) -> State:
        text = run.messages.get(str(user)) or texts.message(
            self.catalogs, lang, run.broadcast.en, run.broadcast.zh, dict(self.settings.agency)
        )
        await self._set_state(run, n, str(user), "sending")
        try:
            await sender(identity, [Outbound(text)], news=True)
        except RateLimited as exc:
            await self._set_state(run, n, str(user), "pending")
            self._flooded(run, identity, exc.retry_after)
            asyncio.get_running_loop().call_later(
                exc.retry_after, run.queue.put_nowait, (n, str(user))
            )
            return "pending"
        except Blocked:
            if self.on_blocked is not None:
                await self.on_blocked(identity)
            return "blocked"
        except Undeliverable:
            return "undeliverable"
        except ChannelError as exc:
            log.warning(
                "broadcast %s to a %s user failed: %s", run.broadcast.id, identity.channel, exc
            )
            return "failed"
        return "sent"

    def _flooded(self, run: Run, user: UserKey, retry_after: float) -> None:
        now = time.monotonic()
        run.broadcast.throttled += 1
        run.floods.append((now, str(user)))
        while run.floods and run.floods[0][0] < now - 1.0:
            run.floods.popleft()
        if len({chat for _, chat in run.floods}) >= self.settings.flood_spread:
            pacer = self.pacers.get(user.channel)
            if pacer is not None:
                log.info(
                    "broadcast %s: flood control from %d chats, pausing %ss",
                    run.broadcast.id,
                    len(run.floods),
                    retry_after,
                )
                pacer.hold(retry_after)
            run.floods.clear()

    # --- figures ------------------------------------------------------------------------------

    async def _reporter(self, run: Run) -> None:
        while True:
            await asyncio.sleep(self.settings.progress_interval)
            if await self.store.cancelled(run.broadcast.id):
                return  # the main loop finishes it as cancelled
            await self._report(run)

    def _rate(self, run: Run) -> float:
        now = time.monotonic()
        while run.done_times and run.done_times[0] < now - 30.0:
            run.done_times.popleft()
        if len(run.done_times) < 2:
            return 0.0
        span = now - run.done_times[0]
        return len(run.done_times) / span if span > 0 else 0.0

    async def _report(self, run: Run) -> None:
        run.broadcast.counts = run.counts()
        run.broadcast.rate = round(self._rate(run), 2)
        if self.on_progress is not None:  # may set the progress message's reference
            try:
                await self.on_progress(run.broadcast)
            except Exception:
                log.exception("broadcast progress could not be shown to the admin")
        await self.store.save(run.broadcast)

    async def _finish(self, run: Run, status: Any) -> None:
        run.broadcast.status = status
        run.broadcast.finished_at = self.clock.now().isoformat()
        await self._report(run)
        await self.store.forget_recipients(run.broadcast)
        log.info("broadcast %s %s: %s", run.broadcast.id, status, run.broadcast.counts)
