"""Git mode from chat: deploys from a repository on the local git server, pulls, refusals, failed
builds, credentials that never show, and .zip packages, with the real control bot and runner.

Dependency sets carry an environment marker unique to the test (always true), so pip really runs
even though dependency images are a cache shared across sessions; the images go at teardown.
"""

from __future__ import annotations

import contextlib
import io
import secrets
import zipfile
from collections.abc import Callable, Iterator

import docker
import docker.errors
import pytest

from protocol.models import Command, Op
from tests.fakes.telegram import FakeTelegram, Message
from tests.fixtures.controlbot import Chat, ControlbotProcess, deploy, runner_call
from tests.fixtures.git_server import PRIVATE_PASSWORD, GitServer, git, sleeper, zip_bytes

pytestmark = pytest.mark.e2e

BUILD_TIMEOUT = 240.0
# Every Bot API method the control bot answers a chat with.
SENDING_METHODS = ("sendMessage", "editMessageText", "sendDocument", "answerCallbackQuery", "copyMessage")


@pytest.fixture
def git_chat(
    chat_user: Callable[..., Chat], controlbot: ControlbotProcess, docker_client: docker.DockerClient
) -> Iterator[Callable[..., Chat]]:
    """Users whose bots (and the dependency images built for them) are removed at teardown."""
    made: list[Chat] = []

    def make(first_name: str = "Gita") -> Chat:
        made.append(chat_user(first_name))
        return made[-1]

    yield make
    redis_url = controlbot.env["REDIS_URL"]
    for chat in made:
        listing = runner_call(redis_url, Command(op=Op.LIST, owner=chat.id))
        for bot in listing.bots or []:
            runner_call(redis_url, Command(op=Op.DELETE, owner=chat.id, name=bot.name))
            if bot.image and not bot.image.startswith("botrunner/runtime:"):
                with contextlib.suppress(docker.errors.APIError):  # shared with another bot, or gone
                    docker_client.images.remove(bot.image)


def finished(chat: Chat, progress: Message, timeout: float = BUILD_TIMEOUT) -> Message:
    """The progress message once it ends: the card (🟢 running, ✅ updated) or an error (❌)."""
    return chat.fake.wait_until_sync(
        lambda: (m := chat.current(progress)) and any(s in (m.text or "") for s in ("🟢", "✅", "❌")) and m,
        timeout,
        f"message {progress.message_id} to finish; it is now {chat.current(progress).text!r}",
    )


def command(chat: Chat, text: str, first: str = "⏳ cloning") -> Message:
    """Send a deploy command and return its final message."""
    mark = chat.mark()
    chat.send(text)
    return finished(chat, chat.wait(first, after=mark))


def progress_texts(
    fake: FakeTelegram, controlbot: ControlbotProcess, chat: Chat, message: Message
) -> list[str]:
    """The text of every edit of one message, in order."""
    return [
        str(call["text"])
        for call in fake.calls(controlbot.token, "editMessageText")
        if str(call.get("chat_id")) == str(chat.id) and int(call["message_id"]) == message.message_id
    ]


def assert_nothing_deployed(chat: Chat, docker_client: docker.DockerClient, *names: str) -> None:
    for name in names:
        with pytest.raises(docker.errors.NotFound):
            docker_client.containers.get(f"botrunner-{chat.id}-{name}")
    mark = chat.mark()
    chat.send("/list")
    chat.wait("No bots yet", after=mark)


def test_deploy_from_git_with_dependencies_then_pull_new_commits(
    git_chat: Callable[..., Chat],
    git_server: GitServer,
    fake_telegram: FakeTelegram,
    controlbot: ControlbotProcess,
    unique_name: Callable[[str], str],
    test_session_id: str,
) -> None:
    chat = git_chat()
    repo_name, name = unique_name("chatrepo"), unique_name("gitchat")
    req = f'tomli==2.0.1; os_name != "{test_session_id}-{repo_name}"'
    v1 = (
        "import tomli\nprint('git v1 up', tomli.loads('a = 1')['a'], flush=True)\n"
        "import time\ntime.sleep(600)\n"
    )
    repo = git_server.create(repo_name, {"main.py": v1, "requirements.txt": f"{req}\n"}, "first version")
    sha1 = git("rev-parse", "HEAD", cwd=repo.work)
    url = git_server.git_url(repo_name)

    card = command(chat, f"/start_bot {name} --git {url}")
    text = card.text or ""
    # One message went through the stages, at most about once a second, and ended as the card.
    assert text.startswith("⏳ cloning → 📦 installing dependencies → 🚀 starting → 🟢 running"), text
    edits = progress_texts(fake_telegram, controlbot, chat, card)
    # Edits are throttled to about one a second, so a quick pip may never show as the last stage.
    assert any("📦 installing dependencies" in t for t in edits), edits
    assert len(edits) <= 4, edits
    assert "entry point: main.py; dependencies: installed (1)" in text
    assert f"Source: {url} (main)" in text
    assert f"Commit: {sha1[:7]} first version" in text
    assert "Entry point: main.py" in text and "Dependencies: 1" in text
    mark = chat.mark()
    chat.press(card, "Update")
    hint = chat.wait("pull the latest commit of main", after=mark)
    assert f"/update {name}" in (hint.text or "")
    chat.logs_until(name, "git v1 up 1")

    # A new commit: /update with no file pulls the branch head, reusing the dependency image.
    sha2 = repo.commit({"main.py": v1.replace("git v1", "git v2")}, "second version")
    card = command(chat, f"/update {name}")
    text = card.text or ""
    assert text.startswith("⏳ cloning → ⏹ stopping → 🚀 starting → ✅ updated"), text
    assert "dependencies: cached (1)" in text
    assert f"Commit: {sha2[:7]} second version" in text
    chat.logs_until(name, "git v2 up 1")
    mark = chat.mark()
    chat.send(f"/status {name}")
    status = chat.wait(f"{name} — running", after=mark)
    assert f"Commit: {sha2[:7]} second version" in (status.text or "")

    # --commit goes back to a named commit.
    card = command(chat, f"/update {name} --commit {sha1[:12]}")
    assert f"Commit: {sha1[:7]} first version" in (card.text or ""), card.text
    assert "✅ updated" in (card.text or "")


def test_refused_urls_get_a_clear_answer_and_deploy_nothing(
    git_chat: Callable[..., Chat], docker_client: docker.DockerClient, unique_name: Callable[[str], str]
) -> None:
    chat = git_chat()
    name = unique_name("refused")
    refusals = [
        # The runner's refusals, shown as it words them.
        ("file:///etc", "That git URL is refused: file:// URLs are not allowed"),
        ('"ext::sh -c x"', "That git URL is refused: git transport helpers such as ext:: are not allowed"),
        ("/etc", "That git URL is refused: local paths are not allowed"),
        ("ssh://git@127.0.0.1/x.git", "That git URL is refused: ssh:// URLs are not allowed"),
        # Never even sent: git could read these as options.
        ("--upload-pack=x", "may not be empty or start with '-'"),
        ("-u", "may not be empty or start with '-'"),
    ]
    for url, answer in refusals:
        mark = chat.mark()
        chat.send(f"/start_bot {name} --git {url}")
        reply = chat.wait("❌", after=mark)
        assert answer in (reply.text or ""), (url, reply.text)
        assert "GIT_REFUSED" in (reply.text or ""), (url, reply.text)
    # A URL without --git gets a pointer, not a KEY=VALUE complaint.
    mark = chat.mark()
    chat.send(f"/start_bot {name} https://example.com/x.git")
    reply = chat.wait("❌", after=mark)
    assert "put --git before its URL" in (reply.text or "")
    assert_nothing_deployed(chat, docker_client, name)


def test_credentials_in_a_url_are_used_but_never_shown(
    git_chat: Callable[..., Chat],
    git_server: GitServer,
    fake_telegram: FakeTelegram,
    controlbot: ControlbotProcess,
    unique_name: Callable[[str], str],
) -> None:
    chat = git_chat()
    repo_name, name, other = unique_name("private"), unique_name("private"), unique_name("wrongpw")
    git_server.create(repo_name, {"bot.py": sleeper("private bot up")}, "private start")
    url = git_server.http_url(repo_name, private=True)
    wrong = f"wrong-{secrets.token_hex(4)}"

    card = command(chat, f"/start_bot {name} --git {url} GREETING=hello")
    text = card.text or ""
    assert "🟢 running" in text and "entry point: bot.py" in text
    assert f"127.0.0.1:{git_server.http.port}/private/{repo_name}.git" in text
    chat.logs_until(name, "private bot up")
    # The stored credentials serve the pull too.
    card = command(chat, f"/update {name}")
    assert "✅ updated" in (card.text or ""), card.text

    # A wrong password fails the clone: said clearly, and the password is not repeated either.
    card = command(
        chat, f"/start_bot {other} --git {git_server.http_url(repo_name, private=True, password=wrong)}"
    )
    assert "❌ Git failed" in (card.text or "") and "GIT_FAILED" in (card.text or ""), card.text

    # The messages that carried credentials are gone; nothing the bot sent ever held them.
    for m in chat.messages():
        if not m.from_bot and "--git" in (m.text or ""):
            assert m.deleted, m.text
    for secret in (PRIVATE_PASSWORD, wrong, "alice:"):
        for m in chat.sent():
            assert secret not in (m.text or "") + (m.caption or ""), m.text
            assert m.document is None or secret.encode() not in m.document.data
        for method in SENDING_METHODS:
            for call in fake_telegram.calls(controlbot.token, method):
                if str(call.get("chat_id")) == str(chat.id):
                    assert secret not in str(call), (method, call)
        assert secret not in controlbot.log_text()


def test_a_failing_dependency_install_shows_the_build_log(
    git_chat: Callable[..., Chat],
    git_server: GitServer,
    docker_client: docker.DockerClient,
    unique_name: Callable[[str], str],
) -> None:
    chat = git_chat()
    repo_name, name = unique_name("baddeps"), unique_name("baddeps")
    missing = f"botrunner-no-such-package-{secrets.token_hex(4)}"
    git_server.create(repo_name, {"requirements.txt": f"{missing}==0.0.1\n", "main.py": "print('never')\n"})

    mark = chat.mark()
    card = command(chat, f"/start_bot {name} --git {git_server.git_url(repo_name)}")
    text = card.text or ""
    assert text.startswith("❌ The build failed"), text
    assert "Fix what the build log shows and deploy again. Its last lines:" in text and missing in text
    assert "\x1b[" not in text  # pip's red ERROR lines come without their terminal colours
    assert text.rstrip().endswith("BUILD_FAILED")
    assert any(e["type"] == "pre" for e in card.entities)
    doc = chat.wait(lambda m: m.document is not None, after=mark)
    assert doc.document is not None and doc.document.file_name == f"{name}-build.txt"
    assert missing.encode() in doc.document.data and b"\x1b[" not in doc.document.data
    assert b"$ pip install -r requirements.txt" in doc.document.data  # the whole log, not its tail
    assert "Build log of" in (doc.caption or "")
    assert_nothing_deployed(chat, docker_client, name)


def test_zip_packages_deploy_update_and_zip_slip_is_refused(
    git_chat: Callable[..., Chat],
    docker_client: docker.DockerClient,
    unique_name: Callable[[str], str],
) -> None:
    chat = git_chat()
    name, slip, guided = unique_name("zipchat"), unique_name("zipslip"), unique_name("zipflow")

    # A zip of a folder is read as the folder: its main.py runs.
    card = deploy(chat, name, zip_bytes({"pkg/main.py": sleeper("zip v1 up")}), filename="pkg.zip")
    text = card.text or ""
    assert text.startswith("⏳ downloading → 🚀 starting → 🟢 running"), text
    assert "entry point: main.py" in text and "Source: pkg.zip" in text
    chat.logs_until(name, "zip v1 up")

    # /update with a new .zip, naming the entry point.
    package = zip_bytes({"main.py": sleeper("not me"), "src/run.py": sleeper("zip v2 up")})
    mark = chat.mark()
    chat.send_file("pkg.zip", package, f"/update {name} --entrypoint src/run.py")
    card = finished(chat, chat.wait("⏳ downloading", after=mark))
    assert "✅ updated" in (card.text or "") and "entry point: src/run.py" in (card.text or ""), card.text
    chat.logs_until(name, "zip v2 up")

    # Zip-slip: an entry that would land outside the bot's folder refuses the whole archive.
    evil = _zip_with([("main.py", b"print(1)\n"), ("../evil.py", b"print('escaped')\n")])
    card = deploy(chat, slip, evil, filename="evil.zip")
    assert "❌" in (card.text or "") and "would land outside the bot's folder" in (card.text or "")
    assert "INVALID_SOURCE" in (card.text or "")
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(f"botrunner-{chat.id}-{slip}")

    # A .zip sent with no caption starts the guided flow like a .py.
    mark = chat.mark()
    chat.send_file("flow.zip", zip_bytes({"bot.py": sleeper("zip flow up")}))
    chat.wait("What should the bot be called?", after=mark)
    mark = chat.mark()
    chat.send(guided)
    ask = chat.wait("environment variables", after=mark)
    mark = chat.mark()
    chat.press(ask, "No variables")
    confirm = chat.wait("Deploy", after=mark)
    chat.press(confirm, "🚀 Deploy")
    card = finished(chat, confirm)
    assert "🟢 running" in (card.text or "") and "entry point: bot.py" in (card.text or ""), card.text


def _zip_with(entries: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path, data in entries:
            zf.writestr(zipfile.ZipInfo(path), data)
    return buf.getvalue()
