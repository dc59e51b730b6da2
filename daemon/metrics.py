"""Prometheus metrics for /metrics. The only module importing prometheus-client.

Each `Metrics` owns its registry (no global state), so tests and two daemons in one process never
share counters.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    """Counters the pipeline and outbox update; gauges refreshed from the store on scrape."""

    content_type = CONTENT_TYPE

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.polls = Counter(
            "vedette_polls", "Feed polls by outcome", ["outcome"], registry=self.registry
        )
        self.fetch_seconds = Histogram(
            "vedette_fetch_seconds",
            "Time to fetch one feed",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 60),
            registry=self.registry,
        )
        self.articles = Counter(
            "vedette_articles", "Articles stored by kind", ["kind"], registry=self.registry
        )
        self.matches = Counter(
            "vedette_matches", "Watchlist matches", ["watchlist"], registry=self.registry
        )
        self.deliveries = Counter(
            "vedette_deliveries", "Send attempts by outcome", ["outcome"], registry=self.registry
        )
        self.alerts = Gauge(
            "vedette_alerts", "Alerts in the outbox by status", ["status"], registry=self.registry
        )
        self.feeds_failing = Gauge(
            "vedette_feeds_failing", "Feeds currently failing", registry=self.registry
        )

    def observe_state(self, alert_counts: dict[str, int], failing_feeds: int) -> None:
        """Refresh the gauges that mirror the database (called on each scrape)."""
        for status in ("queued", "sent", "dead"):
            self.alerts.labels(status).set(alert_counts.get(status, 0))
        self.feeds_failing.set(failing_feeds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
