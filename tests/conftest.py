"""Root conftest: the shared fixtures live in tests/fixtures/, one module per concern."""

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.telegram",
    "tests.fixtures.runner",
    "tests.fixtures.git_server",
    "tests.fixtures.controlbot",
    "tests.fixtures.swarm",
]
