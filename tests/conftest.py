"""Root conftest: the shared fixtures live in tests/fixtures/, one module per concern."""

from protocol.aio import keep_cancels

# As the runner and the control bot do before their event loops: the suite runs workers, leases and
# clients in its own loop too (Python 3.11's wait_for drops cancels; protocol/aio.py).
keep_cancels()

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.telegram",
    "tests.fixtures.runner",
    "tests.fixtures.git_server",
    "tests.fixtures.controlbot",
    "tests.fixtures.swarm",
]
