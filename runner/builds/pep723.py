"""PEP 723 inline script metadata: the `# /// script` block of a single-file bot."""

from __future__ import annotations

import re
import tomllib

from protocol.errors import InvalidSource
from runner.builds.deps import check_requirement

# The reference regular expression from PEP 723.
_BLOCK_RE = re.compile(r"(?m)^# /// (?P<type>[a-zA-Z0-9-]+)$\s(?P<content>(^#(| .*)$\s)+)^# ///$")


def script_dependencies(source: str) -> list[str]:
    """The `dependencies` of the script block, or [] when there is none."""
    blocks = [m for m in _BLOCK_RE.finditer(source) if m.group("type") == "script"]
    if not blocks:
        return []
    if len(blocks) > 1:
        raise InvalidSource("the file has more than one '# /// script' metadata block", field="file")
    content = "".join(
        line[2:] if line.startswith("# ") else line[1:]
        for line in blocks[0].group("content").splitlines(keepends=True)
    )
    try:
        meta = tomllib.loads(content)
    except tomllib.TOMLDecodeError as e:
        raise InvalidSource(f"the '# /// script' block is not valid TOML: {e}", field="file") from e
    raw = meta.get("dependencies", [])
    if not isinstance(raw, list) or not all(isinstance(d, str) for d in raw):
        raise InvalidSource("'# /// script': dependencies must be a list of strings", field="file")
    return [check_requirement(d, "# /// script") for d in raw]
