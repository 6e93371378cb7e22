#!/usr/bin/env bash
# Installs from Debian what PhotonCloud's tests (and, with --bench, its
# benchmarks) need, skipping what is already there. Safe to run repeatedly.
set -euo pipefail

# command → Debian package
declare -A need=(
  [etcdctl]=etcd-client     # the etcd v3 client: tests that ChainFire's gRPC API is etcd's
  [jq]=jq                   # the seed's examples pipe into jq
  [curl]=curl               # the seed's examples are curl commands
  [ip]=iproute2             # the seed replay runs in a network namespace
  [busybox]=busybox         # PrismNET's data-plane tests: udhcpc, ping and nc inside instance namespaces
  [nft]=nftables            # PrismNET's data-plane tests read the ruleset the agent wrote
  [qemu-system-x86_64]=qemu-system-x86 # PlasmaVMC runs its VMs on QEMU (TCG here)
  [qemu-img]=qemu-utils     # PlasmaVMC's disks are qcow2 overlays
  [s3cmd]=s3cmd             # LightningSTOR's e2e: real S3 clients
  [rclone]=rclone
  [prometheus]=prometheus   # NightLight's e2e: a real Prometheus remote-writes to it and answers the same queries
)
if [[ "${1:-}" == "--bench" ]]; then
  need[etcd]=etcd-server    # the stock etcd ChainFire is benchmarked against
  need[pg_ctlcluster]=postgresql # the PostgreSQL ledger CreditService is benchmarked against
  need[iperf3]=iperf3       # PrismNET's VXLAN throughput against a plain veth
  need[nginx]=nginx         # the web server LightningSTOR's GETs are benchmarked against
fi

missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  SUDO=sudo
else
  SUDO=
fi
echo "installing from Debian: ${missing[*]}" >&2
$SUDO apt-get update -qq -o DPkg::Lock::Timeout=300
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}" >&2
