"""The .dockerignore format, which every engine's builder reads the same way.

It lives beside the backends, so the build policy in runner/builds needs no engine library.
"""

from __future__ import annotations

from collections.abc import Callable

from docker.utils.build import PatternMatcher


def ignored(patterns: list[str]) -> Callable[[str], bool]:
    """A test of a context path against .dockerignore patterns, as the docker CLI applies them."""
    matcher = PatternMatcher(patterns)
    return lambda path: bool(matcher.matches(path))
