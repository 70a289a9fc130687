"""Turn what a user sent (a .py, a .zip, a git URL) into files, an entry point and an image."""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import re
import tarfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from prometheus_client import Counter, Histogram

from protocol.errors import BotrunnerError, ErrorCode, InvalidSource
from protocol.models import Note, NoteKind, SourceInfo, SourceKind, SourceSpec, Stage
from runner import metrics
from runner.builds.cache import ImageCache
from runner.builds.clonejob import CloneRequest, clone_in_job, clone_job
from runner.builds.deps import normalize, tree_dependencies
from runner.builds.gitclone import Checkout
from runner.builds.giturl import (
    GitFailed,
    GitRefused,
    check_branch,
    check_commit,
    check_host,
    check_url,
    display_url,
    redact,
)
from runner.builds.pep723 import script_dependencies
from runner.builds.progress import LOG_CTX, ProgressFn
from runner.builds.repoimage import DOCKERFILE
from runner.builds.tools import ToolsImage
from runner.builds.tree import Tree, choose_entrypoint, safe_relpath
from runner.builds.zipsrc import read_zip
from runner.settings import Settings
from runner.state import BotRecord

__all__ = ["Prepared", "ProgressFn", "Sources", "pack_files", "prepare_file", "unpack_files"]

log = logging.getLogger(__name__)

# Prometheus (served by runner/metrics.py): every code preparation, builds included.
BUILDS = Counter(
    "botrunner_builds_total",
    "Code prepared for a deploy (clone, dependencies, image), by source kind and result.",
    ["kind", "result"],
    registry=metrics.REGISTRY,
)
BUILD_DURATION = Histogram(
    "botrunner_build_duration_seconds",
    "Time to prepare a deploy's code, builds included.",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
    registry=metrics.REGISTRY,
)

RuntimeImageFn = Callable[[], Awaitable[str]]

_SAFE_FILENAME = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class Prepared:
    """A source ready to run: the image, the files for /app, and what python runs."""

    image: str
    files: dict[str, bytes]
    entrypoint: str  # "" with own_image: the image's own CMD runs
    info: SourceInfo
    notes: tuple[Note, ...] = ()
    own_image: bool = False  # built from the bot's Dockerfile: the code is in the image, not /app
    git_url: str | None = None  # the URL as given, credentials included: the record only, never shown


def safe_py_filename(filename: str | None) -> str:
    base = (filename or "bot.py").rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    base = _SAFE_FILENAME.sub("_", base).lstrip(".-") or "bot.py"
    return base if base.endswith(".py") else f"{base}.py"


def check_python_text(data: bytes, max_bytes: int) -> None:
    """A bot must be UTF-8 text; a syntax error is fine (it shows in the logs)."""
    if not data:
        raise InvalidSource("the file is empty", field="file")
    if len(data) > max_bytes:
        raise InvalidSource(f"the file is larger than {max_bytes // (1024 * 1024)} MB", field="file")
    if b"\0" in data:
        raise InvalidSource("this is a binary file, not Python source; send a .py file", field="file")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidSource("the file is not UTF-8 text; send a .py file", field="file") from e


def prepare_file(spec: SourceSpec, data: bytes, runtime_image: str, max_bytes: int) -> Prepared:
    """Simple mode: one .py on the shared runtime image, no build."""
    filename = safe_py_filename(spec.filename)
    check_python_text(data, max_bytes)
    info = SourceInfo(kind=SourceKind.FILE, filename=filename, sha256=hashlib.sha256(data).hexdigest())
    return Prepared(image=runtime_image, files={filename: data}, entrypoint=filename, info=info)


def pack_files(files: dict[str, bytes]) -> bytes:
    """The files of /app as one tar blob: what the runner keeps to recreate a lost container."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path, data in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def unpack_files(blob: bytes) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        for member in tar.getmembers():
            f = tar.extractfile(member)
            if f is not None:
                out[member.name] = f.read()
    return out


def resolve_spec(source: SourceSpec | None, pull: bool, previous: BotRecord | None) -> SourceSpec:
    """What an update deploys: new code, or (pull) the recorded repository at a branch or commit."""
    no_url = source is not None and source.kind is SourceKind.GIT and not source.git_url
    wants_pull = pull or (no_url and previous is not None)
    if not wants_pull:
        if source is None:
            raise InvalidSource("an update needs new code: a .py file, a .zip, or a git pull", field="file")
        return source
    if previous is None or previous.git_url is None:
        raise InvalidSource(
            "only a bot deployed from git can pull; send its new code instead", field="source"
        )
    given = source if source is not None and source.kind is SourceKind.GIT else None
    return SourceSpec(
        kind=SourceKind.GIT,
        git_url=previous.git_url,
        branch=(given.branch if given else None) or previous.source.branch,
        commit=given.commit if given else None,
        entrypoint=given.entrypoint if given else None,
    )


def check_policy(policy: str, admin: bool) -> None:
    """RUNNER_DOCKERFILE_POLICY: refuse a repository's own Dockerfile before anything is built."""
    if policy == "everyone" or (policy == "admins" and admin):
        return
    who = "for admins only" if policy == "admins" else "for nobody"
    raise BotrunnerError(
        f"the repository has a {DOCKERFILE}, and this runner builds a repository's own "
        f"{DOCKERFILE} {who} (RUNNER_DOCKERFILE_POLICY={policy}). An admin can allow it; "
        f"or remove the {DOCKERFILE} to run the bot on the shared runtime",
        code=ErrorCode.DOCKERFILE_NOT_ALLOWED,
        field="source",
    )


def deps_note(deps: list[str], cached: bool) -> Note:
    return Note(kind=NoteKind.DEPS_CACHED if cached else NoteKind.DEPS_INSTALLED, count=len(deps))


class Sources:
    """Prepares every kind of source; clones and builds run in threads, never on the loop."""

    def __init__(self, settings: Settings, images: ImageCache, runtime: RuntimeImageFn) -> None:
        self.settings = settings
        self.images = images
        self.runtime = runtime
        self.tools = ToolsImage(
            images.backend,
            configured=settings.runner_tools_image,
            base=settings.runner_base_image,
            ca_bundle=settings.runner_ca_bundle,
            limits=images.limits,
        )

    async def prepare(
        self,
        spec: SourceSpec,
        payload: bytes | None,
        progress: ProgressFn,
        *,
        prefer: tuple[str, ...] = (),
        ctx: str = "",
        admin: bool = False,
    ) -> Prepared:
        """prefer: entry points to try before the defaults (the one a pulled bot ran before);
        ctx: who asked, for the log lines; admin: whether the sender is one (Dockerfile policy)."""
        token = LOG_CTX.set(ctx)
        started, outcome = time.perf_counter(), "ok"
        try:
            return await self._prepare(spec, payload, progress, prefer, admin)
        except BotrunnerError as e:
            outcome = e.code.value
            raise
        finally:
            LOG_CTX.reset(token)
            BUILDS.labels(spec.kind.value, outcome).inc()
            BUILD_DURATION.observe(time.perf_counter() - started)

    async def _prepare(
        self,
        spec: SourceSpec,
        payload: bytes | None,
        progress: ProgressFn,
        prefer: tuple[str, ...],
        admin: bool,
    ) -> Prepared:
        if spec.kind is SourceKind.GIT:
            return await self._git(spec, progress, prefer, admin)
        assert payload is not None
        if spec.kind is SourceKind.ZIP:
            if len(payload) > self.settings.runner_max_source_bytes:
                limit = self.settings.runner_max_source_bytes >> 20
                raise InvalidSource(f"the archive is larger than {limit} MB", field="file")
            tree = await asyncio.to_thread(read_zip, payload, self.settings.max_repo_bytes)
            name = (spec.filename or "bot.zip").rsplit("/", 1)[-1][:200]
            info = SourceInfo(kind=SourceKind.ZIP, filename=name, sha256=hashlib.sha256(payload).hexdigest())
            return await self._tree(tree, spec, info, progress, prefer, admin)
        return await self._file(spec, payload, progress)

    async def _file(self, spec: SourceSpec, data: bytes, progress: ProgressFn) -> Prepared:
        runtime = await self.runtime()
        prepared = prepare_file(spec, data, runtime, self.settings.runner_max_source_bytes)
        deps = normalize(script_dependencies(data.decode("utf-8")))
        if not deps:
            return prepared
        image, cached = await self.images.deps_image(runtime, deps, progress)
        info = prepared.info.model_copy(update={"dependencies": deps})
        return replace(prepared, image=image, info=info, notes=(deps_note(deps, cached),))

    async def _git(
        self, spec: SourceSpec, progress: ProgressFn, prefer: tuple[str, ...], admin: bool
    ) -> Prepared:
        if not spec.git_url:
            raise GitRefused("a git deploy needs the repository's URL", field="git_url")
        s = self.settings
        url = check_url(spec.git_url, s.git_allowed_schemes)
        branch, commit = check_branch(spec.branch), check_commit(spec.commit)
        await asyncio.to_thread(check_host, url, s.git_allowed_hosts)
        if spec.entrypoint:
            safe_relpath(spec.entrypoint, "entry point")
        shown = display_url(url)
        ctx = LOG_CTX.get()
        log.info("cloning %s branch=%s commit=%s %s", shown, branch or "(default)", commit or "(head)", ctx)
        await progress(Stage.CLONING, f"cloning {shown}")
        try:
            checkout, tree = await self._clone(url, branch, commit)
        except BotrunnerError:
            raise
        except Exception as e:  # its text may carry the URL: log and report it redacted, no traceback
            log.error("cloning %s failed unexpectedly: %s %s", shown, redact(repr(e), url), ctx)
            raise GitFailed(f"git could not fetch {shown}; try again", field="git_url") from None
        log.info("cloned %s at %s %s", shown, checkout.commit[:12], ctx)
        info = SourceInfo(
            kind=SourceKind.GIT,
            git_url=shown,
            branch=checkout.branch,
            commit=checkout.commit,
            commit_subject=checkout.subject,
        )
        return replace(await self._tree(tree, spec, info, progress, prefer, admin), git_url=url)

    async def _clone(self, url: str, branch: str | None, commit: str | None) -> tuple[Checkout, Tree]:
        """In a sandboxed job container (clonejob.py), never in this process."""
        s = self.settings
        request = CloneRequest(url, branch, commit, timeout=s.git_clone_timeout, max_bytes=s.max_repo_bytes)
        spec = clone_job(await self.tools.get(), request, s.git_allowed_schemes, self.images.limits)
        return await clone_in_job(self.images.backend, spec, request)

    async def _tree(
        self,
        tree: Tree,
        spec: SourceSpec,
        info: SourceInfo,
        progress: ProgressFn,
        prefer: tuple[str, ...],
        admin: bool,
    ) -> Prepared:
        """A repository or an unpacked .zip: its own Dockerfile, or its dependencies and /app files."""
        links = len(tree.dropped_links)
        notes = [Note(kind=NoteKind.SYMLINKS_IGNORED, count=links)] if links else []
        if DOCKERFILE in tree.files:
            check_policy(self.settings.runner_dockerfile_policy, admin)
            # The image decides how it starts (its CMD/ENTRYPOINT); it may not even have `python`.
            image, cached = await self.images.repo_image(tree, progress)
            notes.insert(0, Note(kind=NoteKind.DOCKERFILE_CACHED if cached else NoteKind.DOCKERFILE_BUILT))
            if spec.entrypoint:
                notes.append(Note(kind=NoteKind.ENTRYPOINT_IGNORED))
            return Prepared(image, {}, "", info, tuple(notes), own_image=True)
        entry, _given = choose_entrypoint(tree, spec.entrypoint, prefer)
        deps, _origin = tree_dependencies(tree)
        info = info.model_copy(update={"entrypoint": entry, "dependencies": deps})
        notes.insert(0, Note(kind=NoteKind.ENTRYPOINT, path=entry))
        image = await self.runtime()
        if deps:
            image, cached = await self.images.deps_image(image, deps, progress)
            notes.append(deps_note(deps, cached))
        return Prepared(image, tree.files, entry, info, tuple(notes))
