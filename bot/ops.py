"""/healthz and /metrics over aiohttp, for load balancers and Prometheus.

``GET /healthz``: 200 with JSON when the database answers within two seconds, 503
otherwise (a worker that cannot reach the database cannot handle an update, so the
load balancer should send it none). The body says whether this process leads (runs
the sender and the scheduler) and how old the oldest due, undelivered outbox message
is: a growing age with no leader anywhere, or a leader that is stuck, is what to
alert on.

``GET /metrics``: Prometheus' text format (see bot/metrics.py for the series).
"""

from __future__ import annotations

import logging

from aiohttp import web

from bot.app import Linli
from bot.metrics import CONTENT_TYPE_LATEST
from bot.settings import split_listen

log = logging.getLogger("linli.ops")


def add_routes(app: web.Application, linli: Linli) -> None:
    async def healthz(request: web.Request) -> web.Response:
        health = await linli.health()
        return web.json_response(health.to_dict(), status=200 if health.ok else 503)

    async def metrics(request: web.Request) -> web.Response:
        await linli.health()  # refreshes the gauges read from the database
        return web.Response(body=linli.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)


async def serve(app: web.Application, listen: str) -> web.AppRunner:
    """Start serving ``app`` on ``host:port``; the caller cleans the runner up."""
    host, port = split_listen(listen)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    for address in runner.addresses:
        log.info("serving on %s", address)
    return runner


async def serve_ops(linli: Linli, listen: str) -> web.AppRunner:
    """/healthz and /metrics alone, on their own address (polling mode, or a private
    port in webhook mode)."""
    app = web.Application()
    add_routes(app, linli)
    return await serve(app, listen)


def bound_port(runner: web.AppRunner) -> int:
    """The port actually bound (useful with port 0)."""
    return int(runner.addresses[0][1])
