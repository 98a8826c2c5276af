#!/usr/bin/env bash
# fleet_bench.sh — satoru backing up a fleet of N small sites with one daemon,
# against the hand-written script (bench/baseline_backup.sh) run for each site
# with 8 in parallel (xargs -P 8), on one loopback edge host.
#
# Usage: bench/fleet_bench.sh [--build DIR] [--sites "10 100 1000"] [--work DIR]
#                             [--keep] [--workers N] [--summary FILE] [--logs DIR]
#                             [--user-rc] [--latency MS]
#                             [--queue cli|cli-each|scheduler]
#                             [--satoru-only] [--time-limit S]
#
#   --build DIR       build tree with bin/satoru and plugins/ (default: build)
#   --sites "N ..."   fleet sizes, each measured once (default "10 100 1000")
#   --work DIR        where the data, staging and repositories go (a new temp
#                     folder under $TMPDIR, removed at the end)
#   --keep            keep the work folder
#   --workers N       satoru's job_worker_concurrency and the script's xargs -P (8)
#   --summary FILE    append TSV rows (bench, measure, value, unit, target,
#                     verdict) for bench/run
#   --logs DIR        keep the daemon's log, the job table, the three slowest
#                     jobs' events and the script's output
#   --user-rc         remote commands read the user's real shell startup files
#                     (as in pipeline_bench.sh; by default the edge HOME is empty)
#   --latency MS      add MS ms to every round trip (bench/delay_proxy.py)
#   --queue HOW       cli (default): one `satoru run --all` for the whole fleet,
#                     timed from its start; cli-each: one `satoru run SITE`
#                     per site (as before `run` took several sites);
#                     scheduler: the daemon queues the fleet itself
#                     (site_scan_interval_hours 24: every site is due at its
#                     first tick, spread over up to 60 s), timed from the
#                     daemon's start; no rerun then (nothing is due again)
#   --satoru-only     skip the script (a probe of satoru alone)
#   --time-limit S    stop waiting for satoru's jobs after S s and report the
#                     rate so far (sites finished per minute) instead of a total
#
# The fleet: sites site-0001 ... site-N on the one edge host, distinguished by
# path: each has a folder of 20 files (256 KiB in all, half random, half text)
# and a SQLite database of 200 rows (~0.4 MB), from fixed seeds
# (bench/gen_dataset.py fleet). For each N, with fresh staging and one fresh
# restic repository per side (initialised untimed):
#   first   the whole fleet backed up once
#   rerun   the same again with nothing changed
# satoru: one `satoru daemon` (job_worker_concurrency 8, retry_max_attempts 1
# so a failure shows instead of waiting for a retry), started and settled
# untimed; the clock runs from queueing the fleet (`satoru run --all`, as an
# operator or cron would) until no job of the phase
# is queued or running. CPU is the daemon's utime + stime with its reaped
# children (rsync, ssh, restic) from /proc/PID/stat, plus the queueing calls;
# peak RSS is the daemon's VmHWM. The script: `xargs -P 8` over the sites,
# each site its own staging folder, all sites one shared restic repository
# (as satoru's); CPU from GNU time (the script and all its children). Both
# count the edge sshd's sessions (remote commands) and connections.
set -euo pipefail
set -o errtrace

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
root=$(cd -- "$here/.." && pwd -P)
bench_name=fleet_bench
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

build="$root/build"
sizes="10 100 1000"
work=""
workers=8
summary=""
logs=""
user_rc=false
latency=0
queue=cli
satoru_only=false
time_limit=0

while [[ $# -gt 0 ]]; do
  case $1 in
  --build) build=$2; shift 2 ;;
  --sites) sizes=$2; shift 2 ;;
  --work) work=$2; shift 2 ;;
  --keep) keep=true; shift ;;
  --workers) workers=$2; shift 2 ;;
  --summary) summary=$2; shift 2 ;;
  --logs) logs=$2; shift 2 ;;
  --user-rc) user_rc=true; shift ;;
  --latency) latency=$2; shift 2 ;;
  --queue) queue=$2; shift 2 ;;
  --satoru-only) satoru_only=true; shift ;;
  --time-limit) time_limit=$2; shift 2 ;;
  -h | --help)
    sed -n '/^# Usage:/,/^# The fleet/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  *) die "unknown argument $1 (see --help)" ;;
  esac
done
for n in $sizes; do
  [[ "$n" =~ ^[1-9][0-9]*$ && "$n" -le 9999 ]] || die "--sites takes numbers from 1 to 9999"
done
[[ "$workers" =~ ^[1-9][0-9]*$ ]] || die "--workers must be a positive number"
[[ "$latency" =~ ^[0-9]+$ ]] || die "--latency must be a number of milliseconds"
[[ "$queue" == cli || "$queue" == cli-each || "$queue" == scheduler ]] ||
  die "--queue takes cli, cli-each or scheduler"
[[ "$time_limit" =~ ^[0-9]+$ ]] || die "--time-limit must be a number of seconds"

bench_setup

# One sshd plays every site: let it take all of them connecting at once
# (sshd's default MaxStartups drops new connections beyond 10 unauthenticated).
start_edge "$work/edge" "$user_rc" --max-startups 200
[[ "$latency" -eq 0 ]] || start_delay_proxy "$latency"
user=$(id -un)
remote="$edge/remote"
max=0
for n in $sizes; do ((n <= max)) || max=$n; done
log "edge host on 127.0.0.1:$port; generating $max sites in $remote"
python3 "$here/gen_dataset.py" fleet "$remote" "$max" >/dev/null

hz=$(getconf CLK_TCK)

site_names() { for ((i = 1; i <= $1; i++)); do printf 'site-%04d\n' "$i"; done; }

# n phase tool wall_s cpu_s hwm_kb sessions connections ok failed queue_s own_cpu_s
results="$work/results.tsv"
: >"$results"

satoru_config() {
  local dir=$1 n=$2 i sep=""
  {
    cat <<EOF
{
  "staging_root": "$dir/staging",
  "restic_repo_path": "$dir/repo",
  "restic_password_file": "$work/restic.pass",
  "database_path": "$dir/satoru.db",
  "plugin_dir": "$build/plugins",
  "metrics_listen": "127.0.0.1:$(free_port)",
  "site_scan_interval_hours": $([[ $queue == scheduler ]] && echo 24 || echo 0),
  "restic_retention_interval_hours": 0,
  "restic_sync_interval_hours": 0,
  "job_worker_concurrency": $workers,
  "retry_max_attempts": 1,
  "ssh": {"identity_file": "$edge/client_key", "known_hosts_file": "$edge/known_hosts"},
  "sites": [
EOF
    for ((i = 1; i <= n; i++)); do
      printf -v name 'site-%04d' "$i"
      printf '%s    {"name": "%s", "host": "127.0.0.1", "port": %s, "user": "%s", "targets": [
      {"mode": "directory", "path": "%s/%s/files"},
      {"mode": "sqlite_dump", "path": "%s/%s/app.db"}]}' \
        "$sep" "$name" "$port" "$user" "$remote" "$name" "$remote" "$name"
      sep=$',\n'
    done
    printf '\n  ]\n}\n'
  } >"$dir/satoru.json"
}

# Jobs of this phase (id > $1) not finished yet, and sites not yet queued
# when the scheduler queues them ($3 sites expected).
jobs_pending() {
  sqlite3 -readonly "$2/satoru.db" \
    "SELECT $3 - COUNT(*) + IFNULL(SUM(status IN ('queued', 'running')), 0) FROM jobs
     WHERE id > $1 AND type = 'backup'"
}

# utime + stime of the daemon alone, in clock ticks.
daemon_own_ticks() {
  sed 's/.*) //' "/proc/$daemon_pid/stat" | awk '{ print $12 + $13 }'
}

# The whole fleet by satoru's daemon; records a results row.
run_satoru() {
  local n=$1 phase=$2 dir=$3 base=0 t0 t1 q1 ticks0=0 own0=0 ticks1 s0 c0 s1 c1 qcpu=0 ok failed
  sync
  read -r s0 c0 < <(edge_sessions)
  if [[ $queue == scheduler ]]; then
    # The daemon queues the fleet itself: the clock runs from its start.
    t0=$EPOCHREALTIME
    DAEMON_SETTLE_S=0 start_daemon "$dir/satoru.json" "$dir/daemon.log"
    q1=$t0
  else
    base=$(sqlite3 -readonly "$dir/satoru.db" "SELECT COALESCE(MAX(id), 0) FROM jobs")
    ticks0=$(daemon_cpu_ticks)
    own0=$(daemon_own_ticks)
    t0=$EPOCHREALTIME
    # Queue every site (the daemon starts on the first ones meanwhile).
    if [[ $queue == cli ]]; then
      /usr/bin/time -f '%U %S' -o "$dir/queue.time" \
        "$satoru" --config "$dir/satoru.json" run --all >/dev/null 2>>"$dir/queue.err"
    else
      # shellcheck disable=SC2016 # expanded by that bash
      /usr/bin/time -f '%U %S' -o "$dir/queue.time" bash -c '
        while read -r site; do "$0" --config "$1" run "$site" >/dev/null 2>>"$2" || exit 1; done' \
        "$satoru" "$dir/satoru.json" "$dir/queue.err" < <(site_names "$n")
    fi
    q1=$EPOCHREALTIME
    qcpu=$(awk '{ print $1 + $2 }' "$dir/queue.time")
  fi
  while (($(jobs_pending "$base" "$dir" "$n") > 0)); do
    kill -0 "$daemon_pid" 2>/dev/null || die "the daemon died: $(tail -n 5 "$dir/daemon.log")"
    if ((time_limit > 0)) && awk -v a="$t0" -v b="$EPOCHREALTIME" -v l="$time_limit" \
      'BEGIN { exit !(b - a >= l) }'; then
      log "N=$n $phase satoru: time limit of $time_limit s reached"
      break
    fi
    sleep 0.2
  done
  t1=$EPOCHREALTIME
  read -r s1 c1 < <(edge_sessions)
  ticks1=$(daemon_cpu_ticks)
  local own
  own=$(awk -v a="$own0" -v b="$(daemon_own_ticks)" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) / hz }')
  IFS='|' read -r ok failed < <(sqlite3 -readonly "$dir/satoru.db" \
    "SELECT IFNULL(SUM(status IN ('success', 'warning')), 0),
            IFNULL(SUM(status IN ('failed', 'interrupted')), 0)
     FROM jobs WHERE id > $base AND type = 'backup'")
  wall_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  local queue_s cpu
  queue_s=$(awk -v a="$t0" -v b="$q1" 'BEGIN { printf "%.3f", b - a }')
  cpu=$(awk -v a="$ticks0" -v b="$ticks1" -v hz="$hz" -v q="$qcpu" \
    'BEGIN { printf "%.2f", (b - a) / hz + q }')
  printf '%s\t%s\tsatoru\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$phase" "$wall_s" \
    "$cpu" "$(daemon_hwm_kb)" "$((s1 - s0))" "$((c1 - c0))" "$ok" "$failed" "$queue_s" "$own" \
    >>"$results"
  log "N=$n $phase satoru: ${wall_s} s (queueing ${queue_s} s), CPU ${cpu} s (daemon alone ${own} s), $ok ok, $failed failed, $((s1 - s0)) remote commands, VmHWM $(daemon_hwm_kb) kB"
  ((failed == 0)) || log "N=$n $phase satoru: FAILED jobs: $(sqlite3 -readonly "$dir/satoru.db" \
    "SELECT s.name || ': ' || j.error FROM jobs j JOIN sites s ON s.id = j.site_id
     WHERE j.id > $base AND j.status NOT IN ('success', 'warning') LIMIT 3")"
}

# The whole fleet by the script, 8 sites at once; records a results row.
run_script() {
  local n=$1 phase=$2 dir=$3 s0 c0 s1 c1
  sync
  read -r s0 c0 < <(edge_sessions)
  site_names "$n" >"$dir/sites"
  measure "$dir/$phase.log" xargs -P "$workers" -I '{}' -a "$dir/sites" \
    env BASELINE_HOST=127.0.0.1 BASELINE_PORT="$port" BASELINE_USER="$user" \
    BASELINE_KEY="$edge/client_key" BASELINE_KNOWN_HOSTS="$edge/known_hosts" \
    BASELINE_DIRS="$remote/{}/files" BASELINE_DBS="$remote/{}/app.db" \
    BASELINE_STAGING="$dir/staging/{}" BASELINE_REPO="$dir/repo" "$here/baseline_backup.sh"
  read -r s1 c1 < <(edge_sessions)
  printf '%s\t%s\tscript\t%s\t%s\t%s\t%s\t%s\t%s\t0\t0\t0\n' "$n" "$phase" "$wall_s" "$cpu_s" \
    "$maxrss_kb" "$((s1 - s0))" "$((c1 - c0))" "$n" >>"$results"
  log "N=$n $phase script: ${wall_s} s, CPU ${cpu_s} s, $((s1 - s0)) remote commands"
}

for n in $sizes; do
  for tool in satoru script; do
    mkdir -p "$work/n$n/$tool/staging"
    restic -r "$work/n$n/$tool/repo" init >/dev/null
  done
  sdir="$work/n$n/satoru"
  satoru_config "$sdir" "$n"
  "$satoru" --config "$sdir/satoru.json" check-config >/dev/null
  [[ $queue == scheduler ]] || start_daemon "$sdir/satoru.json" "$sdir/daemon.log"
  phases="first rerun"
  [[ $queue != scheduler && $time_limit -eq 0 ]] || phases=first
  for phase in $phases; do
    # Who goes first alternates: satoru in the first phase, the script in the rerun.
    if [[ $phase == first ]]; then
      run_satoru "$n" "$phase" "$sdir"
      [[ $satoru_only == true ]] || run_script "$n" "$phase" "$work/n$n/script"
    else
      [[ $satoru_only == true ]] || run_script "$n" "$phase" "$work/n$n/script"
      run_satoru "$n" "$phase" "$sdir"
    fi
  done
  stop_daemon
  if [[ -n "$logs" ]]; then
    cp -- "$sdir/daemon.log" "$logs/n$n-daemon.log"
    sqlite3 -readonly -separator ' ' "$sdir/satoru.db" \
      "SELECT j.id, s.name, j.status, j.started_at - j.created_at, j.finished_at - j.started_at,
         j.error FROM jobs j JOIN sites s ON s.id = j.site_id ORDER BY j.id" >"$logs/n$n-jobs.txt"
    # The three slowest jobs' events, in ms since each job started: where
    # an outlier waited.
    sqlite3 -readonly -separator ' ' "$sdir/satoru.db" \
      "SELECT e.job_id, e.ts - j.started_at, e.level, e.step, e.target, e.message
         FROM job_events e JOIN jobs j ON j.id = e.job_id
        WHERE e.job_id IN (SELECT id FROM jobs ORDER BY finished_at - started_at DESC LIMIT 3)
        ORDER BY e.job_id, e.id" >"$logs/n$n-slowest-jobs.txt"
    [[ $satoru_only == true ]] || cp -- "$work/n$n/script/first.log" "$logs/n$n-script-first.log"
  fi
  # Keep the results, free the disk.
  rm -rf -- "$work/n$n"
done

# -- the summary -------------------------------------------------------------------------

load=$(cut -d' ' -f1-3 /proc/loadavg)
python3 - "$results" "$summary" "$load" "$workers" "$latency" "$user_rc" "$queue" "$time_limit" <<'EOF'
import sys

path, summary_path, load, workers, latency, user_rc, queue, limit = sys.argv[1:9]
rows = [line.rstrip("\n").split("\t") for line in open(path) if line.strip()]
data = {}
for n, phase, tool, wall, cpu, hwm, sessions, conns, ok, failed, queued, own in rows:
    data[(int(n), phase, tool)] = dict(
        wall=float(wall), cpu=float(cpu), hwm=int(hwm), sessions=int(sessions),
        conns=int(conns), ok=int(ok or 0), failed=int(failed or 0), queue=float(queued),
        own=float(own))
out = []
def row(measure, value, unit, target="-", verdict="-"):
    out.append((measure, value, unit, target, verdict))

mode = f"{workers} at once, queued by {queue}" \
    + (f", +{latency} ms per round trip" if latency != "0" else "") \
    + (", user shell rc files" if user_rc == "true" else "") \
    + (f", satoru stopped after {limit} s" if limit != "0" else "")
print(f"\nfleet benchmark: {mode}; load average at the end {load}")
partial = [k for k in data if k[2] == "satoru" and data[k]["ok"] + data[k]["failed"] < k[0]
           or (k[0], k[1], "script") not in data]
for k in sorted(partial):
    # A probe: satoru alone or stopped by --time-limit; report its rate.
    s, n = data[k], k[0]
    done = s["ok"] + s["failed"]
    print(f"N={n} {k[1]} satoru alone: {done} of {n} sites done in {s['wall']:.1f} s = "
          f"{60 * done / s['wall']:.0f} sites/min, CPU {s['cpu'] / max(done, 1):.3f} s per site "
          f"done (daemon alone {s['own']:.1f} s), daemon peak RSS {s['hwm'] / 1024:.1f} MB, "
          f"{s['sessions'] / max(done, 1):.2f} remote commands per site done, "
          f"{s['failed']} failed")
    row(f"N={n} {k[1]} satoru alone: sites done / wall", f"{done}/{s['wall']:.1f}", "s")
    row(f"N={n} {k[1]} satoru alone: sites per minute", f"{60 * done / s['wall']:.0f}", "")
    row(f"N={n} {k[1]} satoru alone: CPU per site done", f"{s['cpu'] / max(done, 1):.3f}", "s")
    row(f"N={n}: satoru daemon peak RSS (VmHWM)", f"{s['hwm'] / 1024:.1f}", "MB",
        "< 150" if n >= 1000 else "-",
        ("met" if s["hwm"] < 150 * 1024 else "MISSED") if n >= 1000 else "-")
for k in partial:
    del data[k]
sizes = sorted({k[0] for k in data if (k[0], "first", "script") in data})
if sizes:
    print(f"{'N':>5} {'phase':<6} {'satoru s':>9} {'(queueing)':>10} {'script s':>9} {'ratio':>6} "
          f"{'goal':<11} {'sites/min s/b':>15} {'CPU s/site s/b':>15} {'satoru RSS':>11} "
          f"{'cmds/site s/b':>14} {'conns/site s/b':>15} {'failed':>6}")
for n in sizes:
    for phase in ["first", "rerun"]:
        if (n, phase, "satoru") not in data or (n, phase, "script") not in data:
            continue
        s, b = data[(n, phase, "satoru")], data[(n, phase, "script")]
        ratio = s["wall"] / b["wall"]
        verdict = "met" if ratio <= 0.5 else "MISSED"
        spm, bpm = 60 * n / s["wall"], 60 * n / b["wall"]
        print(f"{n:>5} {phase:<6} {s['wall']:>9.2f} {s['queue']:>10.2f} {b['wall']:>9.2f} "
              f"{ratio:>6.2f} {'<= 0.5 ' + verdict:<11} {spm:>7.0f}/{bpm:<7.0f} "
              f"{s['cpu'] / n:>7.3f}/{b['cpu'] / n:<7.3f} {s['hwm'] / 1024:>8.1f} MB "
              f"{s['sessions'] / n:>6.2f}/{b['sessions'] / n:<7.2f} "
              f"{s['conns'] / n:>6.2f}/{b['conns'] / n:<8.2f} {s['failed']:>6}")
        p = f"N={n} {phase}"
        # 1 preflight + 1 folder + 2 for a copied database (1 when unchanged)
        goal = 4 if phase == "first" else 3
        row(f"{p}: satoru wall (queueing {s['queue']:.1f} s)", f"{s['wall']:.2f}", "s")
        row(f"{p}: script wall, 8 in parallel (baseline)", f"{b['wall']:.2f}", "s")
        row(f"{p}: satoru/script", f"{ratio:.2f}", "x", "<= 0.5", verdict)
        row(f"{p}: sites per minute satoru/script", f"{spm:.0f}/{bpm:.0f}", "")
        row(f"{p}: CPU per site satoru/script", f"{s['cpu'] / n:.3f}/{b['cpu'] / n:.3f}", "s")
        row(f"{p}: remote commands per site satoru/script",
            f"{s['sessions'] / n:.2f}/{b['sessions'] / n:.2f}", "",
            f"<= {goal}", "met" if s["sessions"] / n <= goal else "MISSED")
        row(f"{p}: satoru jobs failed", str(s["failed"]), "", "0",
            "met" if s["failed"] == 0 else "MISSED")
    hwm = max(v["hwm"] for k, v in data.items() if k[0] == n and k[2] == "satoru") / 1024
    big = n >= 1000
    row(f"N={n}: satoru daemon peak RSS (VmHWM)", f"{hwm:.1f}", "MB",
        "< 150" if big else "-", ("met" if hwm < 150 else "MISSED") if big else "-")
if len(sizes) > 1 and all((m, p, t) in data for m in sizes for p in ["first", "rerun"]
                          for t in ["satoru", "script"]):
    lo, hi = sizes[0], sizes[-1]
    print(f"\ngrowth from N={lo} to N={hi} (per site; 1.00 = constant):")
    for phase in ["first", "rerun"]:
        for tool in ["satoru", "script"]:
            a, z = data[(lo, phase, tool)], data[(hi, phase, tool)]
            wall = (z["wall"] / hi) / (a["wall"] / lo)
            cpu = (z["cpu"] / hi) / (a["cpu"] / lo) if a["cpu"] else float("nan")
            print(f"  {phase:<6} {tool:<7} wall per site x{wall:.2f}, CPU per site x{cpu:.2f}")
            row(f"{phase} {tool}: per-site wall / CPU, N={hi} vs N={lo}",
                f"{wall:.2f}/{cpu:.2f}", "x")
    a = data[(lo, "rerun", "satoru")]["hwm"] / 1024
    z = data[(hi, "rerun", "satoru")]["hwm"] / 1024
    print(f"  satoru daemon peak RSS {a:.1f} MB -> {z:.1f} MB "
          f"({(z - a) * 1024 / (hi - lo):.1f} KB per added site)")
if summary_path:
    with open(summary_path, "a") as f:
        for r in out:
            f.write("fleet\t" + "\t".join(r) + "\n")
EOF
[[ -z "$summary" ]] || cp -- "$results" "${summary%.tsv}.fleet-runs.tsv"
