"""A bot that crashes at startup, so tests can see a traceback in its logs and a failed exit."""


def main() -> None:
    print("Starting Error Bot…", flush=True)
    raise ValueError("TEST ERROR")


if __name__ == "__main__":
    main()
