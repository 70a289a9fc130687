"""The one place the runner's settings choose and build its engine backend."""

from __future__ import annotations

from runner.backend.base import Backend
from runner.backend.docker import DockerBackend
from runner.backend.egress import EgressGuard, EgressMode
from runner.settings import Settings


def create_backend(settings: Settings) -> Backend:
    backend = DockerBackend(
        instance=settings.runner_instance,
        network_mode=settings.runner_network_mode,
        restart_max=settings.runner_restart_max,
    )
    backend.egress_guard = EgressGuard(
        mode=EgressMode(settings.runner_egress),
        allow=settings.runner_egress_allow,
        instance=settings.runner_instance,
        network=settings.runner_network_mode,
        base_image=settings.runner_base_image,
        build_network=settings.runner_build_network,
        client=lambda: backend.client,
    )
    backend.egress_guard.warn_at_start()
    return backend
