"""The one way both services set up their Prometheus registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, disable_created_metrics


def registry() -> CollectorRegistry:
    """A registry of the service's own metrics, without the *_created series.

    Those double every counter's lines and tell Prometheus nothing it needs here.
    """
    disable_created_metrics()  # type: ignore[no-untyped-call]
    return CollectorRegistry(auto_describe=True)
