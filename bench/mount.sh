#!/usr/bin/env bash
# `sharekeepctl mount` against `restic mount` on the same data, same run.
#
#   bench/mount.sh [--scale S] [--files N [--without-restic]] [--out DIR]
#
# Builds the department folder (sk-dataset, scale 1.0: 1.2 GiB, 16k files) plus a folder of
# 10,000 entries and one 1 GiB file, backs it up with both tools, mounts both repositories,
# then, page cache dropped before each step (when the kernel lets us):
#   list:  `ls -f` of the 10,000-entry folder in the snapshot   (target: <= 0.2 s)
#   ls -R: every folder of the snapshot, with attributes (`ls -lR`)
#   read:  `cat` of the 1 GiB file to /dev/null                 (target: >= 300 MB/s)
#   tar:   `tar cf /dev/null` of the whole snapshot (every file read)
# Every step's output is compared between the two mounts (the listings must be the same and
# `tar` must read the same bytes). Prints wall times, MB/s, the ratio sharekeep/restic and the
# peak RSS of each mount process (target: <= 64 MiB). Needs root, restic, fuse3 and
# /usr/bin/time. Exits non-zero when any step fails.
#
# --files N adds N small files (`sk-dataset small`: 1-8 KiB, 100 per folder) under small/: the
# mount's memory must not grow with the repository (a million files: a million data blobs)
# nor with how much of it was walked. --without-restic measures sharekeep alone (restic needs
# minutes per step and gigabytes at that size; compare at the default size).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
scale=1.0
out="$here/out/mount"
files=0
tools="sk restic"
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) scale=$2; shift 2 ;;
    --files) files=$2; shift 2 ;;
    --without-restic) tools="sk"; shift ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--scale S] [--files N [--without-restic]] [--out DIR]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "run as root (mounting)" >&2; exit 1; }
[ "$tools" = sk ] || command -v restic >/dev/null || { echo "restic is needed: apt-get install restic" >&2; exit 1; }
command -v fusermount3 >/dev/null || { echo "fuse3 is needed: apt-get install fuse3" >&2; exit 1; }

(cd "$top" && cargo build --release -q -p sharekeepctl -p sharekeep-tests --bin sharekeepctl --bin sk-dataset)
sk="$top/target/release/sharekeepctl"
gen="$top/target/release/sk-dataset"
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR="$out/restic-cache"

cleanup() {
  for m in "$out/sk-mnt" "$out/restic-mnt"; do
    mountpoint -q "$m" 2>/dev/null && umount -l "$m" || true
  done
  [ -n "${skpid:-}" ] && kill "$skpid" 2>/dev/null || true
  [ -n "${rpid:-}" ] && kill "$rpid" 2>/dev/null || true
}
trap cleanup EXIT
cleanup
rm -rf "$out"; mkdir -p "$out/sk-mnt" "$out/restic-mnt"
data="$out/data"
echo "== dataset: sk-dataset create --scale $scale, a folder of 10,000 entries, a 1 GiB file"
"$gen" create "$data" --scale "$scale" >/dev/null
mkdir -p "$data/exports/10000"
(cd "$data/exports/10000" && seq -f 'extrait-%05g.csv' 10000 | xargs touch)
head -c 1G /dev/urandom > "$data/archives/sauvegarde-1G.bin"
if [ "$files" -gt 0 ]; then
  echo "== $files small files under small/"
  "$gen" small "$data/small" --files "$files" >/dev/null
fi
du -sh "$data" | sed 's/^/   /'

"$sk" -q -r "$out/sk-repo" init
"$sk" -q -r "$out/sk-repo" backup "$data"
if [ "$tools" != sk ]; then
  restic -q -r "$out/restic-repo" init >/dev/null
  restic -q -r "$out/restic-repo" backup --compression auto "$data" >/dev/null
fi

mounted_at=$(date +%s.%N)
"$sk" -q -r "$out/sk-repo" mount "$out/sk-mnt" 2> "$out/sk-mount.log" &
skpid=$!
if [ "$tools" != sk ]; then
  restic -r "$out/restic-repo" mount "$out/restic-mnt" > "$out/restic-mount.log" 2>&1 &
  rpid=$!
fi
for _ in $(seq 600); do
  [ -e "$out/sk-mnt/latest" ] && { [ "$tools" = sk ] || [ -e "$out/restic-mnt/snapshots/latest" ]; } && break
  sleep 0.1
done
[ -e "$out/sk-mnt/latest" ] || { cat "$out/sk-mount.log" >&2; echo "sharekeep's mount did not come up" >&2; exit 1; }
echo "   sharekeep's mount up in $(echo "$mounted_at $(date +%s.%N)" | awk '{printf "%.2f", $2 - $1}') s"
[ "$tools" = sk ] || [ -e "$out/restic-mnt/snapshots/latest" ] || { cat "$out/restic-mount.log" >&2; echo "restic's mount did not come up" >&2; exit 1; }
skroot="$out/sk-mnt/latest$data"
[ -d "$skroot" ] || skroot="$out/sk-mnt/latest"
rroot="$out/restic-mnt/snapshots/latest$data"

drop() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
# timed NAME TOOL CMD...: wall seconds of CMD (output to $out/NAME.TOOL), after dropping caches.
results="$out/results.tsv"; : > "$results"
timed() {
  local name=$1 tool=$2; shift 2
  drop
  local start end
  start=$(date +%s.%N)
  "$@" > "$out/$name.$tool" 2> "$out/$name.$tool.err" || { cat "$out/$name.$tool.err" >&2; echo "$name ($tool) failed" >&2; exit 1; }
  end=$(date +%s.%N)
  printf '%s\t%s\t%s\n' "$name" "$tool" "$(echo "$start $end" | awk '{printf "%.3f", $2 - $1}')" >> "$results"
}
for tool in $tools; do
  root=$skroot; [ $tool = restic ] && root=$rroot
  timed list $tool ls -f "$root/exports/10000"
  timed lsR $tool sh -c "cd '$root' && ls -lR --time-style=+%s . | awk '{print \$1, \$5, \$6, \$7}'"
  timed read $tool sh -c "cat '$root/archives/sauvegarde-1G.bin' > /dev/null"
  sha256sum < "$root/archives/sauvegarde-1G.bin" > "$out/sum.$tool"
  timed tar $tool sh -c "cd '$root' && tar cf - . | wc -c"
done
# The big file's content through each mount (read again after the timing).
want=$(sha256sum < "$data/archives/sauvegarde-1G.bin")
for tool in $tools; do
  [ "$(cat "$out/sum.$tool")" = "$want" ] || { echo "the 1 GiB file read back through $tool's mount differs" >&2; exit 1; }
done
# Without restic: the listing against the folder itself, the archive's size against GNU tar's
# of the folder.
if [ "$tools" = sk ]; then
  ls -f "$data/exports/10000" > "$out/list.restic"
  (cd "$data" && tar cf - . | wc -c) > "$out/tar.restic"
fi
for step in list tar; do
  if [ "$step" = list ]; then
    cmp <(sort "$out/list.sk") <(sort "$out/list.restic") >/dev/null || { echo "the 10,000-entry listings differ" >&2; exit 1; }
  else
    cmp "$out/$step.sk" "$out/$step.restic" >/dev/null || { echo "$step: the two mounts gave different results" >&2; exit 1; }
  fi
done
# Peak memory of each mount process, then unmount both.
skrss=$(awk '/VmHWM/ {print $2}' "/proc/$skpid/status")
held=$(stat -f -c %c "$out/sk-mnt")
rrss=1
[ "$tools" = sk ] || rrss=$(awk '/VmHWM/ {print $2}' "/proc/$rpid/status")
kill -TERM "$skpid"; wait "$skpid" || { echo "sharekeep's mount did not stop cleanly" >&2; exit 1; }
skpid=""
cleanup

echo "   entries the sharekeep mount holds for the kernel after the steps: $held"
awk -F'\t' -v skrss="$skrss" -v rrss="$rrss" '
  { t[$1 "." $2] = $3 }
  END {
    printf "\n%-34s %10s %10s %8s\n", "step", "sharekeep", "restic", "ratio"
    n["list"] = "ls -f of a 10,000-entry folder (s)"; n["lsR"] = "ls -lR of the snapshot (s)"
    n["read"] = "cat of a 1 GiB file (s)"; n["tar"] = "tar of the whole snapshot (s)"
    split("list lsR read tar", order, " ")
    r = ("read.restic" in t)
    for (i = 1; i <= 4; i++) { s = order[i]
      if (r) printf "%-34s %10.3f %10.3f %7.2fx\n", n[s], t[s ".sk"], t[s ".restic"], t[s ".sk"] / t[s ".restic"]
      else printf "%-34s %10.3f %10s %8s\n", n[s], t[s ".sk"], "-", "-" }
    if (r) {
      printf "%-34s %10.0f %10.0f\n", "1 GiB read (MB/s)", 1073.741824 / t["read.sk"], 1073.741824 / t["read.restic"]
      printf "%-34s %10.1f %10.1f %7.2fx\n", "peak RSS of the mount (MiB)", skrss / 1024, rrss / 1024, skrss / rrss
    } else {
      printf "%-34s %10.0f %10s\n", "1 GiB read (MB/s)", 1073.741824 / t["read.sk"], "-"
      printf "%-34s %10.1f %10s\n", "peak RSS of the mount (MiB)", skrss / 1024, "-"
    }
  }' "$results"
