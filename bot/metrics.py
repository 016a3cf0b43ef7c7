"""What operators watch: Prometheus metrics, one registry per ``Linli`` (no globals).

Counters are per process; Prometheus sums them over the workers (``sum by (kind)``).
Gauges that describe the shared database (outbox backlog, oldest pending message)
are read from it when scraped, so every worker reports the same figure: take ``max``,
not ``sum``, over workers. ``linli_leader`` is 1 on exactly one process.

The channel counts what it handles and sends; the outbox is counted by wrapping the
sender's Transport (``MeteredTransport``) and the scheduler by wrapping its job
runners, so no layer below bot/ knows metrics exist.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from scheduler.delivery import PermanentFailure, RecipientGone, RetryLater, Transport
from storage.outbox import OutboxItem

__all__ = ["CONTENT_TYPE_LATEST", "MeteredTransport", "Metrics", "metered"]

# Seconds; an update is a few database round trips plus the replies' HTTP calls.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

Runner = Callable[[Any, str], Awaitable[None]]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.updates = Counter(
            "linli_updates",
            "Updates handled, by kind (text, command, choice, location, contact, photo, "
            "unsupported, chat_moved, member, ignored) and channel",
            ["channel", "kind"],
            registry=r,
        )
        self.update_errors = Counter(
            "linli_update_errors",
            "Updates whose handling raised (answered with an apology)",
            ["channel"],
            registry=r,
        )
        self.latency = Histogram(
            "linli_update_handling_seconds",
            "From receiving an update to its replies sent (or deferred to the outbox)",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.replies = Counter(
            "linli_replies",
            "Direct replies to the person who wrote, by outcome (sent, failed, blocked, deferred)",
            ["channel", "outcome"],
            registry=r,
        )
        self.outbox = Counter(
            "linli_outbox_messages",
            "Outbox deliveries by message kind and outcome (sent, failed, blocked, retry)",
            ["channel", "kind", "outcome"],
            registry=r,
        )
        self.rate_limited = Counter(
            "linli_rate_limited",
            "429 Too Many Requests met, by where (reply, outbox)",
            ["channel", "where"],
            registry=r,
        )
        self.jobs = Counter(
            "linli_job_runs",
            "Scheduler job runs by runner and outcome (ok, error)",
            ["runner", "outcome"],
            registry=r,
        )
        self.backlog = Gauge(
            "linli_outbox_backlog", "Outbox messages pending (due or not), read when scraped", registry=r
        )
        self.oldest_pending = Gauge(
            "linli_outbox_oldest_pending_seconds",
            "Age of the oldest pending outbox message that is due (0: none), read when scraped",
            registry=r,
        )
        self.leader = Gauge(
            "linli_leader", "1 if this process runs the outbox sender and the scheduler", registry=r
        )
        self.database_up = Gauge("linli_database_up", "1 if the database answered when scraped", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def wrap_runner(self, name: str, run: Runner) -> Runner:
        """A job runner that counts its runs (the scheduler logs and swallows errors)."""

        async def counted(db: Any, arg: str) -> None:
            try:
                await run(db, arg)
            except Exception:
                self.jobs.labels(name, "error").inc()
                raise
            self.jobs.labels(name, "ok").inc()

        return counted

    def wrap_runners(self, runners: dict[str, Runner]) -> None:
        for name, run in list(runners.items()):
            runners[name] = self.wrap_runner(name, run)


def metered(metrics: Metrics, transports: Mapping[str, Transport]) -> dict[str, Transport]:
    """The outbox sender's Transports, each counting its deliveries' outcomes by kind."""
    return {name: MeteredTransport(metrics, name, t) for name, t in transports.items()}


class MeteredTransport:
    def __init__(self, metrics: Metrics, channel: str, inner: Transport) -> None:
        self.metrics, self.channel, self.inner = metrics, channel, inner

    async def deliver(self, item: OutboxItem) -> str | None:
        outbox = self.metrics.outbox
        try:
            message_id = await self.inner.deliver(item)
        except RetryLater:
            outbox.labels(self.channel, item.kind, "retry").inc()
            self.metrics.rate_limited.labels(self.channel, "outbox").inc()
            raise
        except RecipientGone:
            outbox.labels(self.channel, item.kind, "blocked").inc()
            raise
        except PermanentFailure:
            outbox.labels(self.channel, item.kind, "failed").inc()
            raise
        except Exception:
            outbox.labels(self.channel, item.kind, "error").inc()  # transient: retried
            raise
        outbox.labels(self.channel, item.kind, "sent").inc()
        return message_id
