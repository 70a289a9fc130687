#!/usr/bin/env bash
# Builds a local Debian bookworm base image with python3 for machines without a container registry.
# Usage: scripts/build-base-image.sh [IMAGE]   (default botrunner-test/python:bookworm)
# It behaves like the official python:*-slim image: `python` is on PATH, pip may install
# into the system, and the host's CA certificates are trusted (TLS-intercepting proxies).
set -euo pipefail
IMAGE="${1:-botrunner-test/python:bookworm}"
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "base image $IMAGE already present"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap is missing (apt-get install -y debootstrap)" >&2; exit 1; }
ROOTFS="$(mktemp -d /var/tmp/botrunner-rootfs.XXXXXX)"
trap 'rm -rf "$ROOTFS"' EXIT
echo "debootstrap bookworm into $ROOTFS (about a minute)"
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
  bookworm "$ROOTFS" >/tmp/botrunner-debootstrap.log 2>&1 \
  || { tail -n 30 /tmp/botrunner-debootstrap.log >&2; exit 1; }
ln -sf python3 "$ROOTFS/usr/bin/python"
rm -f "$ROOTFS"/usr/lib/python3*/EXTERNALLY-MANAGED
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$ROOTFS/usr/local/share/ca-certificates/"
  chroot "$ROOTFS" update-ca-certificates >/dev/null 2>&1 || true
fi
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
tar -C "$ROOTFS" -c . | docker import \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'ENV LANG=C.UTF-8' -c 'CMD ["python3"]' - "$IMAGE" >/dev/null
echo "built $IMAGE"
