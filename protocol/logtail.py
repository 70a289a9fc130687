"""Following a log by polling with `since`: shared by the API's streamed follow and its clients.

The runner reads `since` in whole seconds, so each poll reaches back FOLLOW_MARGIN_S and the lines
already shown are dropped by matching them (`drop_overlap`).
"""

from __future__ import annotations

FOLLOW_MARGIN_S = 1.0
FOLLOW_TAIL = 10_000
REMEMBERED_LINES = 2_000


def drop_overlap(seen: list[str], new: list[str]) -> list[str]:
    """The lines of `new` after the last place where it lines up with the end of `seen`.

    A poll reaches back a little, so `new` may start before, inside or after the lines shown.
    """
    if not seen:
        return new
    for end in range(len(new), 0, -1):
        k = min(len(seen), end)
        if new[end - k : end] == seen[-k:]:
            return new[end:]
    return new
