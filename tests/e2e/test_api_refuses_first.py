"""The HTTP API refuses before it reads: a huge unauthenticated body costs the control bot nothing."""

from __future__ import annotations

import re
import select
import socket
import time
from urllib.parse import urlsplit

import pytest

from tests.fixtures.controlbot import ControlbotProcess

pytestmark = pytest.mark.e2e

MB = 2**20
BODY_BYTES = 60 * MB
CHUNK = MB
GROWTH_LIMIT_KB = 40 * 1024


def vm_hwm_kb(pid: int) -> int:
    """The process's peak resident set size so far."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/<pid>/status")


def send_huge(api_url: str, *, chunked: bool) -> tuple[int, float, int]:
    """PUT 60 MB of JSON-ish bytes to /api/bots/x/env without a token, stopping as soon as the server
    answers. Returns (status, seconds to the answer, bytes of body sent by then)."""
    url = urlsplit(api_url)
    sock = socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=30)
    length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {BODY_BYTES}"
    head = f"PUT /api/bots/x/env HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n{length}\r\n\r\n"
    started = time.monotonic()
    sent = 0
    try:
        sock.sendall(head.encode())
        block = b'{"env": {"A": "' + b"x" * (CHUNK - 16) + b'"'
        while sent < BODY_BYTES:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            piece = f"{len(block):x}\r\n".encode() + block + b"\r\n" if chunked else block
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(block)
        response = b""
        while b"\r\n" not in response:
            data = sock.recv(4096)
            if not data:
                break
            response += data
        elapsed = time.monotonic() - started
    finally:
        sock.close()
    match = re.match(rb"HTTP/1\.[01] (\d{3})", response)
    assert match, f"no HTTP answer: {response[:200]!r}"
    return int(match[1]), elapsed, sent


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_huge_unauthenticated_body_is_refused_at_once_without_memory(
    controlbot: ControlbotProcess, chunked: bool
) -> None:
    assert controlbot.proc is not None and controlbot.api_url is not None
    pid = controlbot.proc.pid
    before = vm_hwm_kb(pid)
    status, elapsed, sent = send_huge(controlbot.api_url, chunked=chunked)
    after = vm_hwm_kb(pid)
    print(f"{status} after {elapsed:.2f} s, {sent / MB:.0f} MB sent, VmHWM {before} -> {after} kB")
    assert status in (401, 413)
    assert elapsed < 10, f"answered after {elapsed:.1f} s"
    assert sent < BODY_BYTES, "the whole body was taken before the answer"
    assert after - before < GROWTH_LIMIT_KB, f"peak RSS grew by {(after - before) / 1024:.1f} MB"
