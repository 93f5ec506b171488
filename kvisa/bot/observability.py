"""What `kvisa serve` tells its operators over HTTP: `/healthz` (alive), `/readyz` (ready for
traffic, or why not), `/metrics` (Prometheus text), and a request id on every request's log
lines (`X-Request-Id`, a proxy's when it sends a plain one).

The counters and histograms live in kvisa.metrics, bumped where things happen; the gauges
(queues, leadership, readiness) are read from the running server when /metrics is asked.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kvisa import metrics
from kvisa.bot.logs import clean_request_id, new_request_id, request_id

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"
# Paths where platforms post updates: refused with 503 while draining, so the platform sends
# the update again (to another replica) instead of it being cut off half handled here.
INTAKE = ("/telegram", "/wechat")


class Status(Protocol):
    """What the endpoints read from the server."""

    draining: bool
    requests_in_flight: int

    async def readiness(self) -> list[str]:
        """Why the server should get no traffic now; empty when it is ready."""

    async def refresh(self) -> None:
        """Read the gauges that need a round trip (Redis queue lengths) before a scrape."""

    def gauges(self) -> Iterator[Metric]:
        """The server's gauges as they stand."""


STATUS_KEY: web.AppKey[Status] = web.AppKey("status", Status)
TOKEN_KEY: web.AppKey[str] = web.AppKey("metrics_token", str)


@web.middleware
async def request_ids(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every request's log lines carry its id; a draining server takes no new updates."""
    current = clean_request_id(request.headers.get(REQUEST_ID_HEADER)) or new_request_id()
    request_id.set(current)  # this request's task only: aiohttp runs each in its own
    status = request.app.get(STATUS_KEY)
    if status is None:
        response = await handler(request)
    elif status.draining and request.method == "POST" and request.path.startswith(INTAKE):
        response = web.Response(status=503, text="draining")
    else:
        status.requests_in_flight += 1
        try:
            response = await handler(request)
        finally:
            status.requests_in_flight -= 1
    if not response.prepared:
        response.headers[REQUEST_ID_HEADER] = current
    return response


async def healthz(request: web.Request) -> web.Response:
    """Alive: the process answers. Its storage is /readyz's business (a Redis outage must not
    get every replica restarted)."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    reasons = await request.app[STATUS_KEY].readiness()
    if reasons:
        return web.json_response({"status": "not ready", "reasons": reasons}, status=503)
    return web.json_response({"status": "ready"})


async def metrics_endpoint(request: web.Request) -> web.Response:
    token = request.app.get(TOKEN_KEY)
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            log.warning("refused a /metrics request without the admin token")
            return web.json_response(
                {"error": "Authorization: Bearer <KVISA_ADMIN_TOKEN> is required"},
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
    status = request.app[STATUS_KEY]
    await status.refresh()
    body = generate_latest(scrape_registry(status))
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


class _ServerGauges(Collector):
    def __init__(self, status: Status) -> None:
        self.status = status

    def collect(self) -> Iterator[Metric]:
        yield from metrics.REGISTRY.collect()
        yield from self.status.gauges()


def scrape_registry(status: Status) -> CollectorRegistry:
    """The process's counters and this server's gauges, for one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ServerGauges(status))
    return registry


def gauge(name: str, documentation: str, label: str, values: dict[str, float]) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for value_label, value in values.items():
        family.add_metric([value_label], value)
    return family


def add_routes(app: web.Application, status: Status, metrics_token: str | None) -> None:
    app[STATUS_KEY] = status
    if metrics_token:
        app[TOKEN_KEY] = metrics_token
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_endpoint)
