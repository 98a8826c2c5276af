#!/usr/bin/env bash
# baseline_backup.sh — the hand-written sequential backup that
# bench/pipeline_bench.sh measures satoru against: what an operator would
# script with ssh, sqlite3, gzip, rsync and restic, one step after the other.
#
#   directories: rsync -a --delete over ssh into STAGING/<name>/
#   databases:   ssh: sqlite3 VACUUM INTO a temp copy + gzip -1; pull it with
#                ssh cat; gunzip into STAGING/<name>/; ssh: remove the temp copy
#   then one `restic backup` per target, from inside its staging folder.
#
# Environment (all required unless marked optional):
#   BASELINE_HOST, BASELINE_PORT, BASELINE_USER   the edge host
#   BASELINE_KEY, BASELINE_KNOWN_HOSTS            ssh identity and pinned host key
#   BASELINE_DIRS, BASELINE_DBS                   space-separated remote paths
#   BASELINE_STAGING, BASELINE_REPO               local staging root and restic repository
#   RESTIC_PASSWORD_FILE                          the repository's password
#   BASELINE_STATS (optional)                     file to append "<path> <bytes pulled>"
#                                                 per database to
set -euo pipefail

: "${BASELINE_HOST:?}" "${BASELINE_PORT:?}" "${BASELINE_USER:?}" "${BASELINE_KEY:?}"
: "${BASELINE_KNOWN_HOSTS:?}" "${BASELINE_STAGING:?}" "${BASELINE_REPO:?}"
: "${RESTIC_PASSWORD_FILE:?}"
export RESTIC_PASSWORD_FILE

ssh_opts=(-F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes
  -o "UserKnownHostsFile=$BASELINE_KNOWN_HOSTS" -o IdentitiesOnly=yes
  -i "$BASELINE_KEY" -p "$BASELINE_PORT")
remote="$BASELINE_USER@$BASELINE_HOST"

# The command is built here on purpose and runs in the remote shell.
# shellcheck disable=SC2029
remote_sh() { ssh "${ssh_opts[@]}" "$remote" "$@"; }

read -r -a dirs <<<"${BASELINE_DIRS:-}"
read -r -a dbs <<<"${BASELINE_DBS:-}"
targets=()

for dir in "${dirs[@]}"; do
  name=$(basename "$dir")
  mkdir -p "$BASELINE_STAGING/$name"
  rsync -a --delete -e "ssh ${ssh_opts[*]}" "$remote:$dir/" "$BASELINE_STAGING/$name/"
  targets+=("$name")
done

for db in "${dbs[@]}"; do
  name=$(basename "$db" .db)
  mkdir -p "$BASELINE_STAGING/$name"
  # The remote paths are ours (no spaces or quotes), so plain quoting will do.
  tmp=$(remote_sh "set -e; t=\$(mktemp -d /tmp/baseline.XXXXXXXX);
    sqlite3 '$db' \"VACUUM INTO '\$t/copy.db'\"; gzip -1 \"\$t/copy.db\"; echo \"\$t\"")
  remote_sh "cat '$tmp/copy.db.gz'" >"$BASELINE_STAGING/$name/$name.db.gz"
  if [[ -n "${BASELINE_STATS:-}" ]]; then
    echo "$db $(stat -c %s "$BASELINE_STAGING/$name/$name.db.gz")" >>"$BASELINE_STATS"
  fi
  gunzip -f "$BASELINE_STAGING/$name/$name.db.gz"
  remote_sh "rm -rf '$tmp'"
  targets+=("$name")
done

for name in "${targets[@]}"; do
  (cd "$BASELINE_STAGING/$name" && restic -r "$BASELINE_REPO" backup --quiet --host baseline \
    --tag "target=$name" .)
done
