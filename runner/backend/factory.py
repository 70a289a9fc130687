"""The one place the runner's settings choose and build its engine backend."""

from __future__ import annotations

import logging

import docker.errors
import requests.exceptions

from runner.backend.base import Backend
from runner.backend.docker import DockerBackend
from runner.backend.egress import EgressGuard, EgressMode
from runner.backend.swarm import ClusterError, SwarmBackend
from runner.settings import Settings

log = logging.getLogger(__name__)


def create_backend(settings: Settings) -> Backend:
    backend: DockerBackend | SwarmBackend
    if settings.runner_backend == "swarm":
        backend = _swarm(settings)
    else:
        backend = DockerBackend(
            instance=settings.runner_instance,
            network_mode=settings.runner_network_mode,
            restart_max=settings.runner_restart_max,
        )
    backend.egress_guard = EgressGuard(
        mode=EgressMode(settings.runner_egress),
        allow=settings.runner_egress_allow,
        instance=settings.runner_instance,
        network=backend.network_mode,
        base_image=settings.runner_base_image,
        build_network=settings.runner_build_network,
        client=lambda: backend.client,
    )
    backend.egress_guard.warn_at_start()
    return backend


def _swarm(settings: Settings) -> SwarmBackend:
    """A swarm backend, or exit with one line when the swarm cannot work as configured. An engine
    that does not answer yet is no refusal: prepare() checks again once it does."""
    backend = SwarmBackend(
        instance=settings.runner_instance,
        network_mode=settings.runner_network_mode,
        restart_max=settings.runner_restart_max,
        registry=settings.runner_registry,
        placement=settings.runner_placement,
    )
    try:
        backend.check_cluster()
    except ClusterError as e:
        raise SystemExit(f"runner: {e}") from None
    except (docker.errors.DockerException, requests.exceptions.ConnectionError, OSError) as e:
        log.warning("swarm: the engine does not answer yet (%s); checking again at prepare", e)
    return backend
