#!/usr/bin/env bash
# scripts/demo.sh — the shmwarden story in under a minute, on this machine (make demo).
#
# Real PyTorch workers share tensors through shmwarden; then the whole process tree
# and its manager are SIGKILLed, as the OOM killer would. `shmwarden ls` shows the leak
# and its bytes, `shmwarden sweep` reclaims it, and `ls` shows the host clean. Works in
# a private temp base and touches only the objects of the processes it starts.
# Headings are bold only on a terminal, and never when NO_COLOR is set to anything but
# the empty string (https://no-color.org): a pipe or a log file gets plain text.
# BUILD names the build directory (default build).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
SHMWARDEN=$PWD/$build/shmwarden
PY=/usr/bin/python3
base=$(mktemp -d "${TMPDIR:-/tmp}/shmw-demo-XXXXXX")
tree=
cleanup() {
	[ -n "$tree" ] && kill -9 -- "-$tree" 2>/dev/null || true
	"$SHMWARDEN" sweep --tmpdir "$base" >/dev/null 2>&1 || true
	rm -rf "$base"
}
trap cleanup EXIT
export TMPDIR=$base
bold= plain=
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
	bold=$'\033[1m' plain=$'\033[0m'
fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
leaked() { ls /dev/shm | grep -c "^torch_\($1\)_" || true; }

say "0. Two C programs share a buffer through libshmwarden (examples/producer.c, consumer.c)"
SHMWARDEN_MANAGER=$build/torch_shm_manager $build/examples/producer -n 2 -p /shmw_demo_

say "1. PyTorch shares 20 tensors of 1 MiB through shmwarden (file_system strategy)"
setsid "$PY" scripts/torch_share.py 2 10 --numel 262144 --hold 300 \
	--manager "$build/torch_shm_manager" >"$base/report.json" 2>"$base/torch.err" &
tree=$!
for _ in $(seq 600); do [ -s "$base/report.json" ] && break; sleep 0.1; done
[ -s "$base/report.json" ] || { cat "$base/torch.err" >&2; echo "demo: PyTorch did not start" >&2; exit 1; }
pids=$("$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print("\\|".join(map(str,[r["pid"]]+r["workers"])))' "$base/report.json")
"$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print("received %d tensors intact (%d bad); journal rows: %d" % (r["received"], r["bad"], r["journal_rows"]))' "$base/report.json"
"$SHMWARDEN" ls --tmpdir "$base"

say "2. SIGKILL the whole tree and its manager (what the OOM killer does)"
mgr=$("$SHMWARDEN" ls --tmpdir "$base" --json | "$PY" -c 'import json,sys; print(" ".join(str(m["pid"]) for m in json.load(sys.stdin)["managers"] if m["pid"] > 0))')
kill -9 -- "-$tree" $mgr
wait "$tree" 2>/dev/null || true
tree=
sleep 0.5
echo "objects of the dead tree still in /dev/shm: $(leaked "$pids")"
"$SHMWARDEN" ls --tmpdir "$base"

say "3. shmwarden sweep (what cron or the systemd timer runs)"
"$SHMWARDEN" sweep --tmpdir "$base"

say "4. Clean again"
"$SHMWARDEN" ls --tmpdir "$base"
n=$(leaked "$pids")
echo "objects of the dead tree still in /dev/shm: $n"
[ "$n" -eq 0 ] || { echo "demo: $n objects leaked" >&2; exit 1; }
say "Without shmwarden those 20 objects would have stayed in /dev/shm until reboot."
