"""Container backends. The runner talks to one through the `Backend` protocol in `base`;
docs/backends.md says what an implementation must do."""

from runner.backend.base import (
    Backend,
    BotMount,
    BuildContext,
    BuildLimits,
    ContainerInfo,
    ContainerSpec,
    DockerEvent,
    ImageBuild,
    ImageRemoval,
    JobLimits,
    JobResult,
    JobSpec,
    ResourceUsage,
)

__all__ = [
    "Backend",
    "BotMount",
    "BuildContext",
    "BuildLimits",
    "ContainerInfo",
    "ContainerSpec",
    "DockerEvent",
    "ImageBuild",
    "ImageRemoval",
    "JobLimits",
    "JobResult",
    "JobSpec",
    "ResourceUsage",
]
