#!/usr/bin/env bash
# A member's self-service copy through sharekeepd against an admin's offline restore of the
# same folder, same run.
#
#   bench/restore-stream.sh [--size-mib N] [--rounds N] [--out DIR]
#
# Makes a share of about N MiB (default 1024: 96 files of 8 MiB and 4,000 files of 64 KiB,
# random content, made here), a policy giving a test group read access, runs the release
# sharekeepd on it and backs it up. Then, ROUNDS times, after `sync`:
#   admin:  sharekeepctl --repo REPO restore latest --to DIR      (root, offline, 2 threads)
#   member: sharekeepctl restore --share S latest --to DIR       (as a real member: sharekeepd
#           streams the entries, sharekeepctl writes them with the member's own rights)
# Both copies are checked identical (sha256 of every file). Prints the median wall time of
# each, their ratio (target: member <= 1.5x admin), and the peak RSS of the member's
# sharekeepctl and of sharekeepd. Needs root (it creates and removes a test user), setpriv
# and /usr/bin/time (apt-get install time). Exits non-zero when any step fails.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
size=1024
rounds=3
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --size-mib) size=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--size-mib N] [--rounds N] [--out DIR]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "run as root (it creates a test user)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is needed: apt-get install time" >&2; exit 1; }
command -v setpriv >/dev/null || { echo "setpriv is needed: apt-get install util-linux" >&2; exit 1; }

(cd "$top" && cargo build --release -q -p sharekeep -p sharekeepctl)
skd="$top/target/release/sharekeepd"
sk="$top/target/release/sharekeepctl"

# The share must be reachable by the test user: under /tmp unless told otherwise.
[ -n "$out" ] || out=$(mktemp -d /tmp/sk-bench-stream-XXXXXX)
mkdir -p "$out"; chmod 755 "$out"
prefix="skb$$"
group="${prefix}team"; member="${prefix}member"
daemon_pid=""
cleanup() {
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null || true
  userdel "$member" 2>/dev/null || true
  groupdel "$group" 2>/dev/null || true
  rm -rf "$out"
}
trap cleanup EXIT
groupadd "$group"
useradd -M -U -s /bin/sh -G "$group" "$member"
uid=$(id -u "$member"); gid=$(id -g "$member")

share="$out/share"; repo="$out/repo"
echo "== share: $size MiB (random content)"
big=$(( size * 3 / 4 / 8 )); small=$(( size * 1024 / 4 / 64 ))
mkdir -p "$share/Scans" "$share/Clients"
for i in $(seq 1 "$big"); do head -c 8M /dev/urandom > "$share/Scans/scan-$i.pdf"; done
for i in $(seq 1 "$small"); do
  d="$share/Clients/client-$(( i % 100 ))"; mkdir -p "$d"
  head -c 64K /dev/urandom > "$d/devis-$i.docx"
done
du -sh "$share" | sed 's/^/   /'

mkdir -p "$out/policies"
cat > "$out/policies/bench.toml" <<EOF
[share]
name = "bench"
path = "$share"
owner = "root"
group = "$group"

[access]
read = ["@$group"]
write = ["root"]

[backup]
schedule = "0 0 0 1 1 *"
repository = "$repo"
EOF
sock="$out/ctl.sock"
"$skd" --policies "$out/policies" --state "$out/state" --socket "$sock" --log-level warn \
  2> "$out/sharekeepd.log" &
daemon_pid=$!
for _ in $(seq 1 200); do [ -S "$sock" ] && break; sleep 0.05; done
[ -S "$sock" ] || { cat "$out/sharekeepd.log" >&2; echo "sharekeepd did not start" >&2; exit 1; }
"$sk" --socket "$sock" -q backup --share bench > /dev/null

home="$out/home"; mkdir -p "$home"; chown "$uid:$gid" "$home"; chmod 700 "$home"
sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
expected=$(sums "$share")
wall() { awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; printf "%.3f", s}' "$1"; }
rss() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }
cpu() { awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {printf "%.2f", u + s}' "$1"; }
daemon_cpu() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$daemon_pid/stat"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

admin_t=(); member_t=(); member_rss=0
admin_copy() {
  sync
  /usr/bin/time -v -o "$out/t-admin" "$sk" --repo "$repo" -q restore latest --to "$out/admin-copy" > /dev/null
  admin_t+=("$(wall "$out/t-admin")")
}
member_copy() {
  sync
  d0=$(daemon_cpu)
  setpriv --reuid="$uid" --regid="$gid" --init-groups \
    /usr/bin/time -v -o "$home/t-member" "$sk" --socket "$sock" -q restore --share bench latest --to "$home/copy" > /dev/null
  member_t+=("$(wall "$home/t-member")")
  d1=$(daemon_cpu)
}
for r in $(seq 1 "$rounds"); do
  rm -rf "$out/admin-copy" "$home/copy"
  # Alternate which goes first, so that neither always pays the other's write-back.
  if [ $(( r % 2 )) = 1 ]; then admin_copy; member_copy; else member_copy; admin_copy; fi
  m=$(rss "$home/t-member"); [ "$m" -gt "$member_rss" ] && member_rss=$m
  [ "$(sums "$out/admin-copy")" = "$expected" ] || { echo "admin copy differs from the share" >&2; exit 1; }
  [ "$(sums "$home/copy")" = "$expected" ] || { echo "member copy differs from the share" >&2; exit 1; }
  owner=$(stat -c %u "$home/copy/Scans/scan-1.pdf")
  [ "$owner" = "$uid" ] || { echo "member copy is not the member's (owner $owner)" >&2; exit 1; }
  echo "   round $r: admin ${admin_t[-1]} s (cpu $(cpu "$out/t-admin") s), member ${member_t[-1]} s (cpu: sharekeepctl $(cpu "$home/t-member") s, sharekeepd $(echo "$d0 $d1" | awk '{printf "%.2f", $2 - $1}') s)"
done
daemon_rss=$(awk '/VmHWM/ {print $2}' "/proc/$daemon_pid/status")
a=$(printf '%s\n' "${admin_t[@]}" | median)
m=$(printf '%s\n' "${member_t[@]}" | median)
ratio=$(echo "$m $a" | awk '{printf "%.2f", $1 / $2}')
echo
printf '%-44s %10s %12s\n' "restore of the share ($size MiB), median of $rounds" "wall (s)" "peak RSS"
printf '%-44s %10s %12s\n' "admin: offline restore --to (root)" "$a" "$(rss "$out/t-admin") KiB"
printf '%-44s %10s %12s\n' "member: streamed copy, written as the member" "$m" "$member_rss KiB"
printf '%-44s %10s %12s\n' "sharekeepd during the copies" "" "$daemon_rss KiB"
echo "member / admin: ${ratio}x (target <= 1.5x)"
