#!/usr/bin/env bash
# Installs everything virtd-node needs on a fresh Debian 12 machine with
# Node 20: the system packages the daemons and the tests use, the npm
# dependencies, and the build. Run as root (or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  systemd                 # systemd-socket-activate; a real systemd for the unit tests
  libsystemd0             # sd_notify and the journal, through koffi
  util-linux              # unshare, nsenter, setpriv (namespaces in tests)
  passwd                  # useradd: tests run session mode as a real ordinary user
  openssl                 # tests make their own CA and certificates
  python3                 # stands in for systemd's notify socket in one test
  iproute2
  procps
  libvirt-clients         # real virsh/virt-admin, to compare against
  libvirt-daemon          # real libvirtd/virtlogd/virtlockd binaries (no units enabled)
  python3-libvirt         # the benchmark's real-libvirt client (bench/py/real_client.py)
  gcc                     # builds core's signal shim (LD_PRELOADed across re-exec; npm run build)
  libc6-dev               # its headers (signal.h, dlfcn.h)
)

if [ "$(id -u)" -eq 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
  fi
  # Debian's stock config files, unpacked but not installed: installing
  # libvirt-daemon-system would enable real libvirt's socket units.
  if [ ! -f .cache/libvirt-stock/etc/libvirt/libvirtd.conf ]; then
    mkdir -p .cache/libvirt-stock
    (cd .cache && apt-get download libvirt-daemon-system >/dev/null 2>&1 && dpkg-deb -x libvirt-daemon-system_*.deb libvirt-stock) \
      || echo "note: could not fetch libvirt-daemon-system; the stock-config test will skip" >&2
  fi
else
  echo "note: not root; skipping system packages (${PACKAGES[*]})" >&2
fi

npm ci --no-audit --no-fund
npm run build
