"""A .zip upload read into a Tree in memory: nothing is extracted to disk, nothing may escape."""

from __future__ import annotations

import io
import stat
import zipfile

from protocol.errors import InvalidSource
from runner.builds.tree import MAX_FILES, Tree, safe_relpath

_JUNK = ("__MACOSX/",)


def read_zip(data: bytes, max_bytes: int) -> Tree:
    """Refuse the whole archive on any entry that escapes (zip-slip), is absolute or is a symlink."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as e:
        raise InvalidSource("the file is not a valid .zip archive", field="file") from e
    tree, total, entries = Tree(), 0, 0
    with archive:
        for info in archive.infolist():
            name = info.filename
            if name.startswith(_JUNK) or name.endswith("/.DS_Store") or name == ".DS_Store":
                continue
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise InvalidSource(f"the archive holds a symlink ({name}); zip real files", field="file")
            try:
                rel = safe_relpath(name.rstrip("/"), "archive entry")
            except InvalidSource as e:
                raise InvalidSource(
                    f"the archive entry {name!r} would land outside the bot's folder; refused",
                    field="file",
                ) from e
            # Folders count toward the file limit too: a million empty folders is no small archive.
            entries += 1
            total += 0 if info.is_dir() else info.file_size
            if total > max_bytes or entries > MAX_FILES:
                raise InvalidSource(
                    f"the archive unpacks to more than {max_bytes // (1024 * 1024)} MB or {MAX_FILES} files",
                    field="file",
                )
            if info.is_dir():
                continue
            with archive.open(info) as f:
                content = f.read(info.file_size + 1)
            if len(content) != info.file_size:
                raise InvalidSource(f"the archive entry {name!r} is corrupt", field="file")
            tree.files[rel] = content
            if mode & 0o111:
                tree.executables.add(rel)
    return _strip_common_folder(tree)


def _strip_common_folder(tree: Tree) -> Tree:
    """A zip of a folder (mybot/main.py ...) is read as the folder's contents."""
    tops = {path.split("/", 1)[0] for path in tree.files}
    if len(tops) != 1 or any("/" not in path for path in tree.files):
        return tree
    cut = len(tops.pop()) + 1
    return Tree(
        files={path[cut:]: data for path, data in tree.files.items()},
        executables={path[cut:] for path in tree.executables},
    )
