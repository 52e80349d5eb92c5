#!/usr/bin/env bash
# What a member renaming a big folder back and forth costs sharekeepd.
#
#   bench/rename-storm.sh [--entries N] [--seconds S]
#
# Runs the release sharekeepd on a share holding a folder of N entries (default 2,200) that a
# test member may write, lets the member rename it back and forth (`mv -T a b; mv -T b a`) for S
# seconds (default 10), and prints the renames done and the CPU the service used (user +
# system, from /proc), as a share of one core (target: at most 10%). Needs root (it creates and
# removes a test user). Exits non-zero when a step fails.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
entries=2200; seconds=10
while [ $# -gt 0 ]; do
  case "$1" in
    --entries) entries=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    *) echo "usage: $0 [--entries N] [--seconds S]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "run as root (it creates a test user)" >&2; exit 1; }
(cd "$top" && cargo build --release -q -p sharekeep)
skd="$top/target/release/sharekeepd"
out=$(mktemp -d /tmp/sk-bench-storm-XXXXXX); chmod 755 "$out"
group="skr$$team"; member="skr$$member"; pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  userdel "$member" 2>/dev/null || true; groupdel "$group" 2>/dev/null || true
  rm -rf "$out"
}
trap cleanup EXIT
groupadd "$group"; useradd -M -U -s /bin/sh -G "$group" "$member"
mkdir -p "$out/share/Docs/a" "$out/policies"
for i in $(seq 1 "$entries"); do : > "$out/share/Docs/a/f$i.txt"; done
cat > "$out/policies/p.toml" <<EOF2
[share]
name = "storm"
path = "$out/share"
owner = "root"
group = "$group"

[access]
read = ["@$group"]
write = ["root"]

[[rule]]
path = "Docs"
write = ["@$group"]
EOF2
"$skd" --policies "$out/policies" --state "$out/state" --socket "$out/ctl.sock" --log-level warn 2> "$out/log" &
pid=$!
for _ in $(seq 1 200); do [ -S "$out/ctl.sock" ] && break; sleep 0.05; done
[ -S "$out/ctl.sock" ] || { cat "$out/log" >&2; exit 1; }
for _ in $(seq 1 200); do setpriv --reuid="$member" --regid="$member" --init-groups test -r "$out/share/Docs/a/f$entries.txt" && break; sleep 0.05; done
sleep 1
cpu() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$pid/stat"; }
c0=$(cpu); t0=$(date +%s.%N)
n=$(setpriv --reuid="$member" --regid="$member" --init-groups sh -c \
  "cd '$out/share/Docs'; end=\$(( \$(date +%s) + $seconds )); n=0; while [ \$(date +%s) -lt \$end ]; do mv -T a b && mv -T b a; n=\$((n+2)); done; echo \$n")
sleep 0.5
c1=$(cpu); t1=$(date +%s.%N)
used=$(echo "$c0 $c1" | awk '{printf "%.2f", $2 - $1}')
share=$(echo "$used $t0 $t1" | awk '{printf "%.1f", 100 * $1 / ($3 - $2)}')
echo "folder of $entries entries renamed $n times in $seconds s by a member"
echo "sharekeepd CPU: $used s, ${share}% of one core (target <= 10%)"
kill -0 "$pid" || { echo "sharekeepd died" >&2; exit 1; }
