# shellcheck shell=bash
# shellcheck disable=SC2034,SC2154 # sets results for, and reads settings of, its caller
# bench/lib.sh — helpers shared by bench/pipeline_bench.sh and
# bench/fleet_bench.sh; sourced, not run. The caller sets `bench_name` (for
# messages), `root` (the repository), `work` (its temp folder) and `satoru`
# (the binary) before using them, and calls bench_cleanup from its EXIT trap.
# Everything started here is stopped by its pid, never by name: other people
# run sshd and satoru on the same machine.

daemon_pid=""
proxy_pid=""
keep=false

die() {
  echo "$bench_name: $*" >&2
  exit 1
}

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# bench_setup, after the caller parsed its options (build, logs, work, keep):
# resolves the build tree and the logs folder, checks the tools, makes the work
# folder (a new one under $TMPDIR unless given), installs the EXIT trap (stops
# what was started here, then removes the work folder unless keep=true) and the
# ERR trap, and writes the restic password file (never in argv).
bench_setup() {
  build=$(cd -- "$build" && pwd -P) || die "no build folder $build"
  if [[ -n "$logs" ]]; then
    mkdir -p "$logs"
    logs=$(cd -- "$logs" && pwd -P)
  fi
  satoru="$build/bin/satoru"
  [[ -x "$satoru" ]] || die "no $satoru: build it first (bench/run does)"
  compgen -G "$build/plugins/libsatoru-plugin-*.so" >/dev/null || die "no plugins in $build/plugins"
  local tool
  for tool in restic rsync sqlite3 gzip ssh python3 curl xargs /usr/bin/time /usr/sbin/sshd; do
    command -v "$tool" >/dev/null || die "$tool is missing: run scripts/bootstrap"
  done
  if [[ -z "$work" ]]; then
    work=$(mktemp -d "${TMPDIR:-/tmp}/satoru-$bench_name.XXXXXX")
  else
    mkdir -p "$work"
    work=$(cd -- "$work" && pwd -P)
  fi
  trap bench_exit EXIT
  trap 'echo "$bench_name: line $LINENO failed (exit $?): $BASH_COMMAND" >&2' ERR
  printf '%s\n' "satoru-bench-password" >"$work/restic.pass"
  chmod 600 "$work/restic.pass"
  export RESTIC_PASSWORD_FILE="$work/restic.pass"
}

bench_exit() {
  bench_cleanup
  if [[ "$keep" == false ]]; then rm -rf -- "$work"; else echo "kept $work" >&2; fi
}

# stop_child VAR: TERM to the pid in variable VAR (a child of this shell), wait
# for it, clear VAR.
stop_child() {
  local -n pid_var=$1
  [[ -n "$pid_var" ]] || return 0
  kill -TERM "$pid_var" 2>/dev/null || true
  wait "$pid_var" 2>/dev/null || true
  pid_var=""
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

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
    echo "$bench_name: '$*' exited $status; last lines of $out:" >&2
    tail -n 20 "$out" >&2
    exit 1
  fi
}

repo_raw_bytes() {
  restic -r "$1" stats --mode raw-data --json --no-lock |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["total_size"])'
}

# -- the edge host -----------------------------------------------------------------

# start_edge DIR USER_RC [edge-host options]: a loopback sshd as the edge host;
# sets edge, port (what clients connect to: the sshd, or the delay proxy once
# start_delay_proxy ran) and sshd_port. Unless USER_RC is true, remote
# commands get an empty HOME (authorized_keys environment="HOME=..."), so the
# machine's own ~/.bashrc is not paid per remote command.
start_edge() {
  edge=$1
  local user_rc=$2
  shift 2
  if [[ "$user_rc" == true ]]; then
    sshd_port=$("$root/scripts/edge-host" start "$edge" "$@")
  else
    # --remote-path turns PermitUserEnvironment on; the PATH is sshd's default.
    sshd_port=$("$root/scripts/edge-host" start "$edge" "$@" \
      --remote-path /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
    mkdir -p "$edge/home"
    sed -i "s|^environment=\"PATH=[^\"]*\"|&,environment=\"HOME=$edge/home\"|" \
      "$edge/authorized_keys"
    grep -q 'environment="HOME=' "$edge/authorized_keys" || die "cannot set the edge host's HOME"
  fi
  port=$sshd_port
}

# start_delay_proxy MS: bench/delay_proxy.py between 127.0.0.1:<new port> and
# the edge sshd, adding MS ms to every round trip; sets port to the proxy's and
# pins the host key for it too (known_hosts names host and port).
start_delay_proxy() {
  local ms=$1 i
  rm -f -- "$work/proxy.port"
  python3 "$root/bench/delay_proxy.py" --to "$sshd_port" --delay-ms "$ms" \
    --port-file "$work/proxy.port" </dev/null >"$work/proxy.log" 2>&1 &
  proxy_pid=$!
  for ((i = 0; i < 100; i++)); do
    [[ ! -s "$work/proxy.port" ]] || break
    kill -0 "$proxy_pid" 2>/dev/null || die "the delay proxy exited: $(cat "$work/proxy.log")"
    sleep 0.1
  done
  [[ -s "$work/proxy.port" ]] || die "the delay proxy did not start"
  port=$(<"$work/proxy.port")
  local pinned
  pinned=$(sed -n "s/^\[127\.0\.0\.1\]:$sshd_port /[127.0.0.1]:$port /p" "$edge/known_hosts")
  printf '%s\n' "$pinned" >>"$edge/known_hosts"
  log "delay proxy: 127.0.0.1:$port -> sshd :$sshd_port, +$ms ms per round trip"
}

stop_delay_proxy() { stop_child proxy_pid; }

# "SESSIONS CONNECTIONS" the edge sshd started so far (scripts/edge-host
# sessions): a session per remote command, rsync transfer or SFTP
# subsystem; a connection per SSH handshake.
edge_sessions() {
  "$root/scripts/edge-host" sessions "$edge"
}

# -- a satoru daemon ---------------------------------------------------------------

# start_daemon CONFIG LOG: starts `satoru daemon`, waits for /metrics, then
# lets its start-up work (repository check, metrics refresh) finish untimed.
start_daemon() {
  local config=$1 out=$2 metrics i
  metrics=$(sed -n 's/.*"metrics_listen": "\(.*\)".*/\1/p' "$config")
  "$satoru" --config "$config" daemon >"$out" 2>&1 &
  daemon_pid=$!
  for ((i = 0; i < 600; i++)); do
    curl -sf -o /dev/null "http://$metrics/metrics" && break
    kill -0 "$daemon_pid" 2>/dev/null || die "the daemon exited: $(tail -n 5 "$out")"
    sleep 0.1
  done
  sleep "${DAEMON_SETTLE_S:-5}"
}

stop_daemon() { stop_child daemon_pid; }

# utime + stime + cutime + cstime of the daemon (with the children it reaped),
# in clock ticks.
daemon_cpu_ticks() {
  sed 's/.*) //' "/proc/$daemon_pid/stat" | awk '{ print $12 + $13 + $14 + $15 }'
}

daemon_hwm_kb() {
  awk '/^VmHWM:/ { print $2 }' "/proc/$daemon_pid/status"
}

# Stops what this file started, then the edge host.
bench_cleanup() {
  stop_daemon
  stop_delay_proxy
  [[ -z "${edge:-}" ]] || "$root/scripts/edge-host" stop "$edge" >/dev/null 2>&1 || true
}

# Aligned columns for TSV on stdin (python3 is in scripts/bootstrap; `column`
# is not always installed).
table() {
  python3 -c '
import sys
rows = [line.rstrip("\n").split("\t") for line in sys.stdin if line.strip()]
widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(max(map(len, rows)))]
for r in rows:
    print("  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip())
'
}
