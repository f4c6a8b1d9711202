#!/usr/bin/env bash
# Idempotent set-up for nsx-l2gw-lab on Debian 12 / Ubuntu 22.04+ (run as root).
# Installs the Debian packages the lab drives, then a virtual environment made
# from the *system* python with --system-site-packages so Debian's mininet and
# openvswitch python bindings are importable next to the pinned PyPI packages.
# Starts no system service: every OVS/FRR instance the lab needs is private to
# a node's namespace and started by the lab itself.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PKGS=(openvswitch-switch openvswitch-vtep openvswitch-common mininet frr
      iperf3 tcpdump tshark fping iputils-arping iproute2 iputils-ping ethtool procps
      python3 python3-venv python3-pip python3-openvswitch vagrant
      ovn-central ovn-controller-vtep    # OVN: tests/integration/test_ovn_interop.py
      etcd-server etcd-client            # the controller cluster (docs/cluster.md)
      nftables python3-nftables          # the service VM's firewall (devices/servicevm)
      chromium chromium-driver)          # the web view's browser tests (tests/integration/test_web.py)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: must run as root (try: sudo make setup)" >&2; exit 1
fi
command -v apt-get >/dev/null || { echo "setup: needs a Debian or Ubuntu machine (apt-get not found)" >&2; exit 1; }

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # Package scripts may try to start services; there may be no init system.
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: Debian packages present"
fi

# The distribution's OVS service may have been started by the package; the lab
# never uses it (each node runs its own instance), so leave it as it is. The
# same for OVN's (ovn-central, ovn-controller-vtep, where systemd runs): the
# OVN interop test starts its own OVN daemons on private sockets.

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys; sys.exit(0 if sys.prefix != sys.base_prefix else 1)'; then
  echo "setup: creating virtual environment $VENV from /usr/bin/python3"
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi
stamp="$VENV/.requirements.sha"
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing pinned Python packages (requirements.txt)"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r requirements.txt
  echo "$want" > "$stamp"
else
  echo "setup: Python packages up to date"
fi
"$VENV/bin/python" -c 'import mininet.net, yaml, matplotlib, pytest' \
  || { echo "setup: the virtual environment cannot import mininet/yaml/matplotlib/pytest" >&2; exit 1; }
echo "setup: done"
