#!/usr/bin/env bash
# Installs the real peers the tests and the demo talk to: LXD 5.0 (Debian), Incus 6.0
# (bookworm-backports), nginx (serves simplestreams trees), busybox for test images,
# tmux (drives the command line in a real terminal in the tests), time and curl
# (the benchmarks' peak RSS and raw HTTP peer).
# Idempotent.
set -euo pipefail

need=()
command -v lxd >/dev/null 2>&1 || need+=(lxd lxd-client)
[ -x /usr/libexec/incus/incusd ] || need+=(incus)
command -v busybox >/dev/null 2>&1 || need+=(busybox-static)
command -v xz >/dev/null 2>&1 || need+=(xz-utils)
[ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
[ -x /usr/bin/time ] || need+=(time)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v squashfs >/dev/null 2>&1 || command -v mksquashfs >/dev/null 2>&1 || need+=(squashfs-tools)
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "install-daemons: missing ${need[*]}; run as root to install them" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
. /etc/os-release
if [ "${ID:-}" != debian ]; then
  # Ubuntu ships LXD only as a snap, whose wrapper ignores LXD_DIR: the throwaway
  # daemons the tests start need the Debian packages.
  echo "install-daemons: needs Debian 12 (bookworm); this is ${PRETTY_NAME:-unknown}" >&2
  echo "install-daemons: install lxd (5.0) and incus (6.0) packages by hand, then rerun" >&2
  exit 1
fi
# Incus 6.0 is only in bookworm-backports: add it on the Debian mirror already configured.
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  mirror=$(grep -rhoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null | head -n1 | tr -d ' ' || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  echo "deb ${mirror%/} bookworm-backports main" > /etc/apt/sources.list.d/lxdimages-backports.list
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends lxd lxd-client busybox-static xz-utils squashfs-tools nginx-light tmux time curl iproute2 >/dev/null
apt-get install -y -qq --no-install-recommends -t bookworm-backports incus >/dev/null
