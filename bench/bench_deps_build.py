"""A dependency build: the sandboxed pip job container (commit) against the old `docker build`.

Run:  .venv/bin/python bench/bench_deps_build.py [--runs 5] [--base-image IMAGE] [--package tomli==2.0.1]

Both paths install the same package into the same runtime image (built first, or found), on the
host network, interleaved run by run. Each run uses a requirement with a marker no cache has seen
(`pkg; os_name != "<random>"`), so pip really runs every time. Prints the medians and their ratio
(target: the job path at most 1.2x the old build). Everything it makes is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from runner.backend.base import BuildContext, BuildLimits, ImageBuild, JobLimits  # noqa: E402
from runner.backend.docker import DockerBackend  # noqa: E402
from runner.builds.pipjob import install, requirements_text  # noqa: E402
from runner.builds.runtime import ensure_runtime_image  # noqa: E402
from runner.settings import Settings  # noqa: E402

# The Dockerfile the runner used before the sandbox: pip as root in a `docker build`.
OLD_DOCKERFILE = """\
FROM {runtime}
COPY requirements.txt /tmp/botrunner-requirements.txt
RUN pip install --no-cache-dir --no-input --progress-bar off -r /tmp/botrunner-requirements.txt \\
    && rm /tmp/botrunner-requirements.txt
"""
CA = Path("/etc/ssl/certs/ca-certificates.crt")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--base-image", default="botrunner-test/python:bookworm")
    ap.add_argument("--package", default="tomli==2.0.1")
    args = ap.parse_args()
    s = Settings(runner_base_image=args.base_image, runner_ca_bundle=CA if CA.is_file() else None)
    backend = DockerBackend(instance=f"bench-{secrets.token_hex(3)}", network_mode="host", restart_max=0)
    limits = BuildLimits("host", 900, s.build_memory_bytes)
    runtime = await ensure_runtime_image(
        backend,
        base=s.runner_base_image,
        packages=s.runner_runtime_packages,
        ca_bundle=s.runner_ca_bundle,
        limits=limits,
    )
    pip = JobLimits("host", 900, s.build_memory_bytes, s.runner_build_cpu_limit, s.runner_build_pids_limit)
    times: dict[str, list[float]] = {"docker build (old)": [], "pip job + commit (new)": []}
    made: list[str] = []
    try:
        for run in range(args.runs):
            for path in list(times) if run % 2 == 0 else list(reversed(times)):
                deps = [f'{args.package}; os_name != "bench{secrets.token_hex(6)}"']
                tag = f"botrunner/deps:bench-{secrets.token_hex(6)}"
                made.append(tag)
                t0 = time.perf_counter()
                if path.startswith("docker build"):
                    ctx = BuildContext(
                        OLD_DOCKERFILE.format(runtime=runtime),
                        {"requirements.txt": requirements_text(deps).encode()},
                    )
                    await backend.build_image(ImageBuild(ctx, tag, limits))
                else:
                    await install(backend, runtime, deps, tag, pip)
                times[path].append(time.perf_counter() - t0)
                print(f"run {run + 1} {path}: {times[path][-1]:.2f} s", flush=True)
    finally:
        for tag in made:
            await backend.remove_image(tag)
    old, new = (statistics.median(v) for v in times.values())
    print("\n| path | n | median s | min s | max s |\n|---|---|---|---|---|")
    for path, v in times.items():
        print(f"| {path} | {len(v)} | {statistics.median(v):.2f} | {min(v):.2f} | {max(v):.2f} |")
    print(f"\nratio of medians (new / old): {new / old:.2f}x  (package: {args.package})")


if __name__ == "__main__":
    asyncio.run(main())
