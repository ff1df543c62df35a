#!/usr/bin/env bash
# A Debian bookworm base image with Python 3.11 for `podman build` where no base image can be pulled (no Docker
# Hub here): debootstrap a minimal root filesystem and import it. Does nothing when the image exists.
#   deploy/base-image.sh [IMAGE]       (default localhost/cardflow/bookworm-python:3.11; needs root)
set -euo pipefail
IMAGE=${1:-localhost/cardflow/bookworm-python:3.11}
need=()
for pkg in podman runc debootstrap; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
if [ ${#need[@]} -gt 0 ]; then
  echo "cardflow: installing Debian packages the image build needs: ${need[*]} (apt-get; needs root)" >&2
  [ "$(id -u)" -eq 0 ] || { echo "cardflow: not root; run: sudo apt-get install -y ${need[*]}" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >/dev/null
fi
if podman image exists "$IMAGE"; then
  echo "base image $IMAGE: present"
  exit 0
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo "base image $IMAGE: debootstrap bookworm (about a minute)"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$dir" \
  http://deb.debian.org/debian >"$dir.log" 2>&1 || { tail -20 "$dir.log"; exit 1; }
# the image's apt gets the same sources as this machine (deb.debian.org, security updates)
cp /etc/apt/sources.list.d/debian.sources "$dir/etc/apt/sources.list.d/" 2>/dev/null || true
tar -C "$dir" -c . | podman import --change 'CMD ["/bin/bash"]' - "$IMAGE" >/dev/null
echo "base image $IMAGE: imported"
