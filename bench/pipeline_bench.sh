#!/usr/bin/env bash
# pipeline_bench.sh — satoru's whole backup pipeline against a hand-written
# sequential script (bench/baseline_backup.sh) on a loopback edge host.
#
# Usage: bench/pipeline_bench.sh [--build DIR] [--runs N] [--work DIR] [--keep]
#                                [--compress true|false] [--target-concurrency N]
#                                [--summary FILE]
#
#   --build DIR               build tree with bin/satoru and plugins/ (default: build)
#   --runs N                  repetitions, each on fresh staging and repositories (3)
#   --work DIR                where the data, staging and repositories go (a new
#                             temp folder under $TMPDIR, removed at the end)
#   --keep                    keep the work folder
#   --compress B              the directory targets' `compress` option (default:
#                             the plugin default, true)
#   --target-concurrency N    satoru's target_concurrency (default: satoru's, 2)
#   --summary FILE            append TSV rows (bench, measure, value, unit,
#                             target, verdict) for bench/run
#   --via-daemon              run satoru's jobs in a `satoru daemon` started (untimed)
#                             per repetition; `run --wait` then only follows the
#                             job. Without it (the default) `run --wait` runs the
#                             job in-process, start-up and shut-down included.
#   --logs DIR                keep every run's output in DIR (satoru's with its
#                             job's events and their times in ms since queued)
#   --user-rc                 let remote commands read the user's real shell
#                             startup files (by default the edge host's HOME is
#                             an empty folder, see below)
#
# The site: 2 directory targets (1,000 files, 100 MiB each, half random, half
# text) and 2 sqlite_dump targets (25,600 rows of ~2 KB, ~50 MB each), all
# generated with fixed seeds by bench/gen_dataset.py. Each repetition measures,
# for satoru (`satoru run SITE --wait`, in-process) and for the script, each
# with its own staging and restic repository (initialised untimed):
#   first      the first backup into empty staging and an empty repository
#   rerun      the same again with nothing changed
#   clustered  after updating 1% of db1's rows with consecutive ids
#   appended   after appending 1% more rows to db1
#   scattered  after updating 1% of db1's rows at random (the worst case)
# and for the three changes the bytes pulled for db1 and the repository growth
# (restic stats --mode raw-data before/after). Wall times are medians over the
# repetitions; who runs first alternates between repetitions.
#
# The edge host is this machine's own user (root) behind a loopback sshd, and
# bash sources ~/.bashrc for every command sshd runs. A heavy ~/.bashrc (pyenv
# init on the CI image: ~110 ms) would be paid per remote command, which is a
# property of that machine, not of a typical edge host; so remote commands get
# an empty HOME (authorized_keys environment="HOME=..."). --user-rc turns this
# off to measure the sensitivity to slow login shells.
set -euo pipefail
set -o errtrace # the ERR trap below names the failing command, also inside functions

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
root=$(cd -- "$here/.." && pwd -P)

build="$root/build"
runs=3
work=""
keep=false
compress=""
target_concurrency=""
summary=""
user_rc=false
via_daemon=false
logs=""
daemon_pid=""

die() {
  echo "pipeline_bench: $*" >&2
  exit 1
}

while [[ $# -gt 0 ]]; do
  case $1 in
  --build) build=$2; shift 2 ;;
  --runs) runs=$2; shift 2 ;;
  --work) work=$2; shift 2 ;;
  --keep) keep=true; shift ;;
  --compress) compress=$2; shift 2 ;;
  --target-concurrency) target_concurrency=$2; shift 2 ;;
  --summary) summary=$2; shift 2 ;;
  --user-rc) user_rc=true; shift ;;
  --via-daemon) via_daemon=true; shift ;;
  --logs) logs=$2; shift 2 ;;
  -h | --help)
    sed -n '/^# Usage:/,/^# The site/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive number"
[[ -z "$compress" || "$compress" == true || "$compress" == false ]] ||
  die "--compress must be true or false"
[[ -z "$target_concurrency" || "$target_concurrency" =~ ^[1-9][0-9]*$ ]] ||
  die "--target-concurrency must be a positive number"

build=$(cd -- "$build" && pwd -P) || die "no build folder $build"
if [[ -n "$logs" ]]; then
  mkdir -p "$logs"
  logs=$(cd -- "$logs" && pwd -P)
fi
satoru="$build/bin/satoru"
[[ -x "$satoru" ]] || die "no $satoru: build it first (bench/run does)"
compgen -G "$build/plugins/libsatoru-plugin-*.so" >/dev/null || die "no plugins in $build/plugins"
for tool in restic rsync sqlite3 gzip ssh python3 /usr/bin/time /usr/sbin/sshd; do
  command -v "$tool" >/dev/null || die "$tool is missing: run scripts/bootstrap"
done

if [[ -z "$work" ]]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/satoru-pipeline-bench.XXXXXX")
else
  mkdir -p "$work"
  work=$(cd -- "$work" && pwd -P)
fi
edge="$work/edge"

cleanup() {
  stop_daemon
  "$root/scripts/edge-host" stop "$edge" >/dev/null 2>&1 || true
  if [[ "$keep" == false ]]; then rm -rf -- "$work"; else echo "kept $work" >&2; fi
}
trap cleanup EXIT
trap 'echo "pipeline_bench: line $LINENO failed (exit $?): $BASH_COMMAND" >&2' ERR

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# The daemon of --via-daemon: started per repetition, stopped by its pid.
start_daemon() {
  local dir=$1 metrics i
  metrics=$(sed -n 's/.*"metrics_listen": "\(.*\)".*/\1/p' "$dir/satoru.json")
  "$satoru" --config "$dir/satoru.json" daemon >"$dir/daemon.log" 2>&1 &
  daemon_pid=$!
  for ((i = 0; i < 300; i++)); do
    curl -sf -o /dev/null "http://$metrics/metrics" && break
    kill -0 "$daemon_pid" 2>/dev/null || die "the daemon exited: $(tail -n 5 "$dir/daemon.log")"
    sleep 0.1
  done
  # Let its start-up work (repository check, metrics refresh) finish untimed.
  sleep 5
}

stop_daemon() {
  [[ -n "$daemon_pid" ]] || return 0
  kill -TERM "$daemon_pid" 2>/dev/null || true
  wait "$daemon_pid" 2>/dev/null || true
  daemon_pid=""
}

# utime + stime + cutime + cstime of the daemon, in clock ticks.
daemon_cpu_ticks() {
  sed 's/.*) //' "/proc/$daemon_pid/stat" | awk '{ print $12 + $13 + $14 + $15 }'
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# -- the edge host and its data ----------------------------------------------------

if [[ "$user_rc" == true ]]; then
  port=$("$root/scripts/edge-host" start "$edge")
else
  # --remote-path turns PermitUserEnvironment on; the PATH is sshd's default.
  port=$("$root/scripts/edge-host" start "$edge" \
    --remote-path /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
  mkdir -p "$edge/home"
  sed -i "s|^environment=\"PATH=[^\"]*\"|&,environment=\"HOME=$edge/home\"|" \
    "$edge/authorized_keys"
  grep -q 'environment="HOME=' "$edge/authorized_keys" || die "cannot set the edge host's HOME"
fi
user=$(id -un)
remote="$edge/remote"
log "edge host on 127.0.0.1:$port; generating data in $remote"
python3 "$here/gen_dataset.py" dir "$remote/dir1" satoru-bench-dir1 >/dev/null
python3 "$here/gen_dataset.py" dir "$remote/dir2" satoru-bench-dir2 >/dev/null
mkdir -p "$work/pristine"
python3 "$here/gen_dataset.py" db "$work/pristine/db1.db" satoru-bench-db1 >/dev/null
python3 "$here/gen_dataset.py" db "$remote/db2.db" satoru-bench-db2 >/dev/null
db1="$remote/db1.db"

printf '%s\n' "satoru-bench-password" >"$work/restic.pass"
chmod 600 "$work/restic.pass"
export RESTIC_PASSWORD_FILE="$work/restic.pass"

# rep phase tool wall_s maxrss_kb own_hwm_kb db1_bytes db1_size growth data_added cpu_s
results="$work/results.tsv"
: >"$results"

# -- helpers ---------------------------------------------------------------------------

# Runs a command under GNU time, sampling the VmHWM of its process (satoru
# itself, without its children) until it exits. Sets wall_s, maxrss_kb (GNU
# time: the largest of the process and its children), own_hwm_kb and cpu_s
# (user + system of the process and its children: the local side only; the
# edge host's sshd, rsync, sqlite3 and gzip are not counted).
measure() {
  local out=$1 tfile child="" hwm="" t0 t1 status
  shift
  tfile=$(mktemp "$work/time.XXXXXX")
  own_hwm_kb=0
  t0=$EPOCHREALTIME
  /usr/bin/time -f '%M %U %S' -o "$tfile" "$@" >"$out" 2>&1 &
  local tpid=$!
  while kill -0 "$tpid" 2>/dev/null; do
    # No child yet (time has not forked) or already gone: try again next tick.
    [[ -n "$child" ]] || child=$( (ps -o pid= --ppid "$tpid" 2>/dev/null || true) | head -n1 | tr -d ' ')
    if [[ -n "$child" && -r "/proc/$child/status" ]]; then
      hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$child/status" 2>/dev/null || true)
      [[ -z "$hwm" ]] || own_hwm_kb=$hwm
    fi
    sleep 0.1
  done
  status=0
  wait "$tpid" || status=$?
  t1=$EPOCHREALTIME
  wall_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  read -r maxrss_kb cpu_s < <(tail -n1 "$tfile" | awk '{ printf "%s %.2f\n", $1, $2 + $3 }')
  rm -f -- "$tfile"
  if [[ $status -ne 0 ]]; then
    echo "pipeline_bench: '$*' exited $status; last lines of $out:" >&2
    tail -n 20 "$out" >&2
    exit 1
  fi
}

repo_raw_bytes() {
  restic -r "$1" stats --mode raw-data --json --no-lock |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["total_size"])'
}

satoru_config() {
  local dir=$1 extra="" options=""
  [[ -z "$target_concurrency" ]] || extra="\"target_concurrency\": $target_concurrency,"
  [[ -z "$compress" ]] || options=", \"options\": {\"compress\": $compress}"
  cat >"$dir/satoru.json" <<EOF
{
  "staging_root": "$dir/staging",
  "restic_repo_path": "$dir/repo",
  "restic_password_file": "$work/restic.pass",
  "database_path": "$dir/satoru.db",
  "plugin_dir": "$build/plugins",
  "metrics_listen": "127.0.0.1:$(free_port)",
  "site_scan_interval_hours": 0,
  "restic_retention_interval_hours": 0,
  "restic_sync_interval_hours": 0,
  $extra
  "ssh": {"identity_file": "$edge/client_key", "known_hosts_file": "$edge/known_hosts"},
  "sites": [{
    "name": "bench-edge", "host": "127.0.0.1", "port": $port, "user": "$user",
    "targets": [
      {"mode": "directory", "path": "$remote/dir1"$options},
      {"mode": "directory", "path": "$remote/dir2"$options},
      {"mode": "sqlite_dump", "path": "$remote/db1.db"},
      {"mode": "sqlite_dump", "path": "$remote/db2.db"}
    ]
  }]
}
EOF
}

# One backup by satoru; records a results row.
run_satoru() {
  local rep=$1 phase=$2 dir=$3 before after bytes added size
  sync
  before=$(repo_raw_bytes "$dir/repo")
  local ticks_before=0
  [[ -z "$daemon_pid" ]] || ticks_before=$(daemon_cpu_ticks)
  measure "$dir/$phase.log" "$satoru" --config "$dir/satoru.json" run bench-edge --wait
  if [[ -n "$daemon_pid" ]]; then
    # The job ran in the daemon: its peak so far and its CPU (with the
    # children it reaped), not the follower's.
    own_hwm_kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$daemon_pid/status")
    maxrss_kb=0
    cpu_s=$(awk -v a="$ticks_before" -v b="$(daemon_cpu_ticks)" -v hz="$(getconf CLK_TCK)" \
      'BEGIN { printf "%.2f", (b - a) / hz }')
  fi
  after=$(repo_raw_bytes "$dir/repo")
  {
    echo "-- job events: ms since queued, level, step, target, message"
    sqlite3 -readonly -separator ' ' "$dir/satoru.db" \
      "SELECT e.ts - j.created_at, e.level, e.step, e.target, e.message FROM job_events e
       JOIN jobs j ON j.id = e.job_id WHERE j.id = (SELECT MAX(id) FROM jobs) ORDER BY e.id"
    echo "-- wall ${wall_s} s"
  } >>"$dir/$phase.log"
  [[ -z "$logs" ]] || cp -- "$dir/$phase.log" "$logs/rep$rep-$phase-satoru.log"
  IFS='|' read -r bytes added < <(sqlite3 -readonly "$dir/satoru.db" \
    "SELECT last_bytes, last_data_added FROM site_targets WHERE path = '$db1'")
  size=$(stat -c %s "$db1")
  printf '%s\t%s\tsatoru\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rep" "$phase" "$wall_s" \
    "$maxrss_kb" "$own_hwm_kb" "$bytes" "$size" "$((after - before))" "$added" "$cpu_s" >>"$results"
  log "rep $rep $phase satoru: ${wall_s} s, db1 pulled $bytes B, repo +$((after - before)) B"
}

# One backup by the baseline script; records a results row.
run_script() {
  local rep=$1 phase=$2 dir=$3 before after bytes size
  sync
  before=$(repo_raw_bytes "$dir/repo")
  : >"$dir/stats"
  measure "$dir/$phase.log" env BASELINE_HOST=127.0.0.1 BASELINE_PORT="$port" \
    BASELINE_USER="$user" BASELINE_KEY="$edge/client_key" \
    BASELINE_KNOWN_HOSTS="$edge/known_hosts" BASELINE_DIRS="$remote/dir1 $remote/dir2" \
    BASELINE_DBS="$remote/db1.db $remote/db2.db" BASELINE_STAGING="$dir/staging" \
    BASELINE_REPO="$dir/repo" BASELINE_STATS="$dir/stats" "$here/baseline_backup.sh"
  after=$(repo_raw_bytes "$dir/repo")
  bytes=$(awk -v p="$db1" '$1 == p { print $2 }' "$dir/stats")
  echo "-- wall ${wall_s} s" >>"$dir/$phase.log"
  [[ -z "$logs" ]] || cp -- "$dir/$phase.log" "$logs/rep$rep-$phase-script.log"
  size=$(stat -c %s "$db1")
  printf '%s\t%s\tscript\t%s\t%s\t0\t%s\t%s\t%s\t0\t%s\n' "$rep" "$phase" "$wall_s" \
    "$maxrss_kb" "$bytes" "$size" "$((after - before))" "$cpu_s" >>"$results"
  log "rep $rep $phase script: ${wall_s} s, db1 pulled $bytes B, repo +$((after - before)) B"
}

# Both tools on the same edge state; who goes first alternates per repetition.
run_both() {
  local rep=$1 phase=$2
  if ((rep % 2 == 1)); then
    run_satoru "$rep" "$phase" "$work/rep$rep/satoru"
    run_script "$rep" "$phase" "$work/rep$rep/script"
  else
    run_script "$rep" "$phase" "$work/rep$rep/script"
    run_satoru "$rep" "$phase" "$work/rep$rep/satoru"
  fi
}

# -- the repetitions ---------------------------------------------------------------------

for ((rep = 1; rep <= runs; rep++)); do
  cp -- "$work/pristine/db1.db" "$db1"
  for tool in satoru script; do
    mkdir -p "$work/rep$rep/$tool/staging"
    restic -r "$work/rep$rep/$tool/repo" init >/dev/null
  done
  satoru_config "$work/rep$rep/satoru"
  "$satoru" --config "$work/rep$rep/satoru/satoru.json" check-config >/dev/null
  [[ "$via_daemon" == false ]] || start_daemon "$work/rep$rep/satoru"
  run_both "$rep" first
  run_both "$rep" rerun
  for change in clustered appended scattered; do
    python3 "$here/gen_dataset.py" change "$db1" "$change" "satoru-bench-rep$rep" >/dev/null
    run_both "$rep" "$change"
  done
  stop_daemon
  # Keep the results, free the disk (staging and repositories are ~1 GB a repetition).
  rm -rf -- "$work/rep$rep/satoru/staging" "$work/rep$rep/satoru/repo" \
    "$work/rep$rep/script/staging" "$work/rep$rep/script/repo"
done

# -- the summary -------------------------------------------------------------------------

load=$(cut -d' ' -f1-3 /proc/loadavg)
mode=$([[ "$via_daemon" == true ]] && echo "via a daemon" || echo "in-process run --wait")
[[ "$user_rc" == false ]] || mode="$mode, user shell rc files"
python3 - "$results" "$summary" "$load" "$compress" "$target_concurrency" "$mode" <<'EOF'
import statistics
import sys

path, summary_path, load, compress, tconc, mode = sys.argv[1:7]
rows = [line.rstrip("\n").split("\t") for line in open(path) if line.strip()]
data = {}
for rep, phase, tool, wall, maxrss, hwm, b, size, growth, added, cpu in rows:
    data.setdefault((phase, tool), []).append(
        dict(wall=float(wall), maxrss=int(maxrss), hwm=int(hwm), bytes=int(b or 0),
             size=int(size), growth=int(growth), added=int(added or 0), cpu=float(cpu)))

def med(phase, tool, key):
    return statistics.median(r[key] for r in data[(phase, tool)])

out = []
def row(measure, value, unit, target="-", verdict="-"):
    out.append((measure, value, unit, target, verdict))

config = (f"compress={compress or 'default(true)'}, "
          f"target_concurrency={tconc or 'default(2)'}, {mode}")
print(f"\npipeline benchmark: {len(data[('first', 'satoru')])} repetitions, config {config}, "
      f"load average at the end {load}")
print(f"{'phase':<10} {'satoru wall s (runs)':<26} {'script wall s (runs)':<26} {'ratio':>6} "
      f"{'target':<13} {'local CPU s satoru/script':>26}")
targets = {"first": 0.8, "rerun": 0.6}
for phase in ["first", "rerun", "clustered", "appended", "scattered"]:
    s = [r["wall"] for r in data[(phase, "satoru")]]
    b = [r["wall"] for r in data[(phase, "script")]]
    ratio = statistics.median(s) / statistics.median(b)
    target = targets.get(phase)
    verdict = "-" if target is None else ("met" if ratio <= target else "MISSED")
    runs_s = f"{statistics.median(s):.2f} ({' '.join(f'{x:.2f}' for x in s)})"
    runs_b = f"{statistics.median(b):.2f} ({' '.join(f'{x:.2f}' for x in b)})"
    goal = f"<= {target} {verdict}" if target else ""
    cpu = f"{med(phase, 'satoru', 'cpu'):.1f} / {med(phase, 'script', 'cpu'):.1f}"
    print(f"{phase:<10} {runs_s:<26} {runs_b:<26} {ratio:>6.2f} {goal:<13} {cpu:>26}")
    row(f"{phase}: satoru wall", f"{statistics.median(s):.2f}", "s")
    row(f"{phase}: script wall (baseline)", f"{statistics.median(b):.2f}", "s")
    row(f"{phase}: satoru/script", f"{ratio:.2f}", "x",
        f"<= {target}" if target else "-", verdict)
    row(f"{phase}: local CPU satoru/script",
        f"{med(phase, 'satoru', 'cpu'):.1f}/{med(phase, 'script', 'cpu'):.1f}", "s")

print(f"\n{'change':<10} {'db1 size':>10} {'satoru pulled':>14} {'script pulled':>14} "
      f"{'satoru repo+':>13} {'script repo+':>13} {'satoru data_added':>18}")
for phase in ["clustered", "appended", "scattered"]:
    size = med(phase, "satoru", "size")
    sp, bp = med(phase, "satoru", "bytes"), med(phase, "script", "bytes")
    sg, bg = med(phase, "satoru", "growth"), med(phase, "script", "growth")
    sa = med(phase, "satoru", "added")
    pct = lambda x: f"{100 * x / size:.1f}%"
    print(f"{phase:<10} {size / 1e6:>8.1f}MB {sp / 1e6:>7.2f}MB {pct(sp):>6} "
          f"{bp / 1e6:>7.2f}MB {pct(bp):>6} {sg / 1e6:>6.2f}MB {pct(sg):>6} "
          f"{bg / 1e6:>6.2f}MB {pct(bg):>6} {sa / 1e6:>10.2f}MB {pct(sa):>6}")
    worst = phase == "scattered"
    pv = "met" if sp <= 0.15 * size else "MISSED"
    gv = "met" if sg <= 0.10 * size else "MISSED"
    row(f"{phase}: db1 bytes pulled by satoru", pct(sp), "of size",
        "(worst case, reported)" if worst else "<= 15%", "-" if worst else pv)
    row(f"{phase}: db1 bytes pulled by script", pct(bp), "of size")
    row(f"{phase}: satoru repository growth", pct(sg), "of size",
        "(worst case, reported)" if worst else "<= 10%", "-" if worst else gv)
    row(f"{phase}: script repository growth", pct(bg), "of size")

def peak(tool, key):
    return max(r[key] for (phase, t), rs in data.items() if t == tool for r in rs) / 1024

own, total, script_total = peak("satoru", "hwm"), peak("satoru", "maxrss"), peak("script", "maxrss")
who = "satoru daemon" if "daemon" in mode else "satoru process"
print(f"\npeak RSS over all runs: {who} alone (VmHWM) {own:.1f} MB; "
      + (f"GNU time (largest of satoru and its children, i.e. restic) {total:.1f} MB; "
         if total else "")
      + f"script (GNU time: its largest child, restic) {script_total:.1f} MB")
row(f"{who} peak RSS (own VmHWM)", f"{own:.1f}", "MB")
if total:
    row("satoru peak RSS (GNU time, incl. children)", f"{total:.1f}", "MB")
row("script peak RSS (GNU time, largest child)", f"{script_total:.1f}", "MB")

if summary_path:
    with open(summary_path, "a") as f:
        for r in out:
            f.write("pipeline\t" + "\t".join(r) + "\n")
EOF
# Every run's figures, beside the summary.
[[ -z "$summary" ]] || cp -- "$results" "${summary%.tsv}.pipeline-runs.tsv"
