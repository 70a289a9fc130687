"""Entry point of the `botrunner` console script and of `python -m cli`."""

from __future__ import annotations

from cli.app import app


def main() -> None:
    app(prog_name="botrunner")


if __name__ == "__main__":
    main()
