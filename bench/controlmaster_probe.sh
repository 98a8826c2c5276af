#!/usr/bin/env bash
# Usage: bench/controlmaster_probe.sh [--latency MS] [--runs N] [--files N]
#
# What one OpenSSH ControlMaster connection per site per job would save each
# rsync of a directory target (issue 11, way 1), measured before building it:
# an rsync of an unchanged folder of N small files from a loopback edge host
# behind bench/delay_proxy.py (+MS ms per round trip), with the ssh options
# satoru uses (pinned known_hosts, StrictHostKeyChecking=yes), once with a new
# SSH connection per rsync (today) and once through an already open master
# (ControlPath in a 0700 folder). Prints the medians of N runs of each,
# alternating. Needs root (scripts/edge-host), like the other benchmarks.
#
#   --latency MS  added per round trip (default 50)
#   --runs N      repetitions of each (default 7)
#   --files N     files in the folder (default 200)
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
root=$(cd -- "$here/.." && pwd -P)
bench_name=controlmaster_probe
latency=50
runs=7
files=200
build="${BUILD:-$root/build}"
logs=""
work=""
source "$here/lib.sh"

while [[ $# -gt 0 ]]; do
  case $1 in
  --latency) latency=$2; shift 2 ;;
  --runs) runs=$2; shift 2 ;;
  --files) files=$2; shift 2 ;;
  -h | --help)
    sed -n '/^# Usage:/,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ "$latency" =~ ^[0-9]+$ && "$runs" =~ ^[1-9][0-9]*$ && "$files" =~ ^[1-9][0-9]*$ ]] ||
  die "--latency, --runs and --files take numbers"

bench_setup
start_edge "$work/edge" false
[[ "$latency" -eq 0 ]] || start_delay_proxy "$latency"
src="$edge/remote/data"
mkdir -p "$src"
for ((i = 0; i < files; i++)); do head -c 2048 /dev/urandom >"$src/f$i"; done
mkdir -m 0700 "$work/run"
ssh_base=(ssh -F /dev/null -i "$edge/client_key" -p "$port" -l "$(id -un)"
  -o StrictHostKeyChecking=yes -o BatchMode=yes
  -o "UserKnownHostsFile=$edge/known_hosts" -o GlobalKnownHostsFile=/dev/null
  -o IdentitiesOnly=yes)
sock="$work/run/master.sock"
pull() { # pull DEST [ssh options...]
  local dest=$1
  shift
  rsync -e "${ssh_base[*]} $*" -a --delete "127.0.0.1:$src/" "$dest/" >/dev/null
}
mkdir -p "$work/plain" "$work/muxed"
pull "$work/plain"
"${ssh_base[@]}" -o ControlMaster=yes -o "ControlPath=$sock" -o ControlPersist=no -N -f 127.0.0.1
pull "$work/muxed" -o ControlMaster=no -o "ControlPath=$sock"

seconds() { python3 -c 'import sys,time; print(f"{time.monotonic():.6f}")'; }
plain=() muxed=()
for ((r = 0; r < runs; r++)); do
  t0=$(seconds)
  pull "$work/plain"
  t1=$(seconds)
  pull "$work/muxed" -o ControlMaster=no -o "ControlPath=$sock"
  t2=$(seconds)
  plain+=("$(python3 -c "print($t1 - $t0)")")
  muxed+=("$(python3 -c "print($t2 - $t1)")")
done
"${ssh_base[@]}" -o "ControlPath=$sock" -O exit 127.0.0.1 2>/dev/null || true
python3 - "$latency" "$files" "${plain[*]}" "${muxed[*]}" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import statistics, sys
latency, files, plain, muxed, load = sys.argv[1:]
p = [float(x) for x in plain.split()]
m = [float(x) for x in muxed.split()]
print(f"rsync of an unchanged folder of {files} files, +{latency} ms per round trip, "
      f"{len(p)} runs each (load {load}):")
print(f"  new SSH connection per rsync: median {statistics.median(p):.3f} s  ({' '.join(f'{x:.2f}' for x in p)})")
print(f"  through a ControlMaster:      median {statistics.median(m):.3f} s  ({' '.join(f'{x:.2f}' for x in m)})")
print(f"  saved per rsync: {statistics.median(p) - statistics.median(m):.3f} s")
PY
