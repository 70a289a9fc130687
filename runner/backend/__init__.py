"""Container backends. The runner talks to one through the `Backend` protocol in `base`."""

from runner.backend.base import Backend, ContainerInfo, ContainerSpec, DockerEvent, ResourceUsage

__all__ = ["Backend", "ContainerInfo", "ContainerSpec", "DockerEvent", "ResourceUsage"]
