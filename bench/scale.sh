#!/usr/bin/env bash
# The engine at scale: a million small files, sharekeep against restic, and memory growth.
#
#   bench/scale.sh [--files N] [--snapshots K] [--out DIR]
#
# 1. Memory growth: sharekeep backs up and restores folders of 100k, 300k and N small files
#    (`sk-dataset small`: 1–8 KiB each, 100 per folder); peak RSS of each, and the growth per
#    million files between the smallest and the largest.
# 2. Side by side with restic (--compression auto) on the N-file folder, cold cache: initial
#    backup, no-change backup, full restore into an empty folder (sharekeep's verified identical
#    with diff -r). Wall time, peak RSS (/usr/bin/time -v), ratios.
# 3. After K snapshots in all (one file edited between them), `versions PATH` of that file and
#    `ls` of one folder of the latest snapshot.
# Needs restic and /usr/bin/time (apt-get install restic time), and about 7 GiB of disk per
# million files for the folder, twice that for the two restores (each removed after use), and
# the two repositories.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
files=1000000
snapshots=100
out="$here/out-scale"
while [ $# -gt 0 ]; do
  case "$1" in
    --files) files=$2; shift 2 ;;
    --snapshots) snapshots=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--files N] [--snapshots K] [--out DIR]" >&2; exit 2 ;;
  esac
done
command -v restic >/dev/null || { echo "restic is needed: apt-get install restic" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is needed: apt-get install time" >&2; exit 1; }
[ "$snapshots" -ge 3 ] || { echo "--snapshots must be at least 3" >&2; exit 2; }

(cd "$top" && cargo build --release -q -p sharekeepctl -p sharekeep-tests --bin sharekeepctl --bin sk-dataset)
gen="$top/target/release/sk-dataset"
sk="$top/target/release/sharekeepctl"
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR="$out/restic-cache"

rm -rf "$out"; mkdir -p "$out"
results="$out/results.tsv"; growth="$out/growth.tsv"
: > "$results"; : > "$growth"
# Every measured step starts from a cold cache: `sync`, then the page cache and the kernel's
# buffer heads dropped. Besides being what a night's backup or a restore after a disaster
# meets, this keeps ext4 from slowing down whichever tool creates files right after another
# deleted a million (its `recently_deleted` check scans cached inode table blocks: 4x slower
# restores were seen here without the drop).
[ -w /proc/sys/vm/drop_caches ] || { echo "run as root: every step drops the page cache" >&2; exit 1; }
cold() { sync; echo 3 > /proc/sys/vm/drop_caches; }
# run TOOL CMD...: runs CMD from a cold cache; sets $wall (s) and $rss (KiB).
run() {
  cold
  run_warm "$@"
}
# run_warm CMD...: the same, cache as it is (browsing: the repository was just opened).
run_warm() {
  local start end
  start=$(date +%s.%N)
  /usr/bin/time -v -o "$out/time.txt" "$@" > "$out/last.log" 2>&1 || { cat "$out/last.log" "$out/time.txt" >&2; exit 1; }
  end=$(date +%s.%N)
  wall=$(echo "$start $end" | awk '{printf "%.3f", $2 - $1}')
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$out/time.txt")
}
measure() {
  local step=$1 tool=$2; shift 2
  run "$@"
  printf '%s\t%s\t%s\t%s\n' "$step" "$tool" "$wall" "$rss" >> "$results"
}

# 1. Memory growth with the number of files.
for n in $(printf '%s\n' 100000 300000 "$files" | awk -v m="$files" '$1 <= m' | sort -nu); do
  data="$out/data-$n"
  echo "== $n small files"
  "$gen" small "$data" --files "$n" >/dev/null
  repo="$out/sk-$n"
  "$sk" -q -r "$repo" init
  run "$sk" -q -r "$repo" backup "$data"; b=$rss; bw=$wall
  rm -rf "$out/restore"
  run "$sk" -q -r "$repo" restore latest --to "$out/restore"; r=$rss; rw=$wall
  rm -rf "$out/restore"
  printf '%s\t%s\t%s\t%s\t%s\n' "$n" "$b" "$r" "$bw" "$rw" >> "$growth"
  if [ "$n" != "$files" ]; then rm -rf "$data" "$repo"; fi
done

# 2. Side by side on the largest folder (its sharekeep repository from step 1 is the first run).
data="$out/data-$files"; skrepo="$out/sk-$files"; rrepo="$out/restic-repo"
rm -rf "$skrepo"
"$sk" -q -r "$skrepo" init
restic -q -r "$rrepo" init >/dev/null
echo "== side by side on $files files"
measure "initial backup" sharekeep "$sk" -q -r "$skrepo" backup "$data"
measure "initial backup" restic restic -q -r "$rrepo" backup --compression auto "$data"
measure "no-change backup" sharekeep "$sk" -q -r "$skrepo" backup "$data"
measure "no-change backup" restic restic -q -r "$rrepo" backup --compression auto "$data"
rm -rf "$out/restore"
measure "full restore" sharekeep "$sk" -q -r "$skrepo" restore latest --to "$out/restore"
diff -r "$data" "$out/restore" >/dev/null || { echo "sharekeep's restore differs from the data" >&2; exit 1; }
rm -rf "$out/restore"
measure "full restore" restic restic -q -r "$rrepo" restore latest --target "$out/restore"
rm -rf "$out/restore"
sk_size=$(du -sb "$skrepo" | cut -f1); r_size=$(du -sb "$rrepo" | cut -f1)

# 3. K snapshots, one file edited between them; then versions and ls.
one=$(cd "$data" && find . -type f | sort | sed -n 1p | sed 's|^\./||')
folder=$(dirname "$one")
have=2
echo "== $snapshots snapshots"
while [ "$have" -lt "$snapshots" ]; do
  echo "edit $have" >> "$data/$one"
  "$sk" -q -r "$skrepo" backup "$data"
  have=$((have + 1))
done
# The first of three runs starts from a cold cache; the median is reported.
cold
for i in 1 2 3; do
  run_warm "$sk" -r "$skrepo" versions "$one"
  printf 'versions\t%s\t%s\n' "$wall" "$rss" >> "$out/browse.tsv"
  run_warm "$sk" -r "$skrepo" ls latest "$folder"
  printf 'ls\t%s\t%s\n' "$wall" "$rss" >> "$out/browse.tsv"
done
nver=$("$sk" -r "$skrepo" versions "$one" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["versions"]) if isinstance(d, dict) else len(d))')

echo
echo "== sharekeep vs restic $(restic version | awk '{print $2}'), $(nproc) cores, $files files of 1–8 KiB"
python3 - "$results" "$growth" "$out/browse.tsv" "$sk_size" "$r_size" "$files" "$nver" "$snapshots" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
growth = [l.rstrip("\n").split("\t") for l in open(sys.argv[2])]
browse = [l.rstrip("\n").split("\t") for l in open(sys.argv[3])]
sk_size, r_size, files, nver, snaps = map(int, sys.argv[4:9])
data = {(s, t): (float(w), int(r)) for s, t, w, r in rows}
print("| step | sharekeep | restic | time ratio | sharekeep RSS | restic RSS | RSS ratio |")
print("|---|---:|---:|---:|---:|---:|---:|")
for s in ["initial backup", "no-change backup", "full restore"]:
    (sw, sr), (rw, rr) = data[(s, "sharekeep")], data[(s, "restic")]
    print(f"| {s} | {sw:.2f} s | {rw:.2f} s | {sw / rw:.2f}x | {sr / 1024:.0f} MiB | {rr / 1024:.0f} MiB | {sr / rr:.2f}x |")
mib = 1 << 20
print(f"| repository | {sk_size / mib:.0f} MiB | {r_size / mib:.0f} MiB | {sk_size / r_size:.2f}x | | | |")
print()
print("| files | backup peak RSS | restore peak RSS | backup | restore |")
print("|---:|---:|---:|---:|---:|")
for n, b, r, bw, rw in growth:
    print(f"| {int(n):,} | {int(b) / 1024:.1f} MiB | {int(r) / 1024:.1f} MiB | {float(bw):.1f} s | {float(rw):.1f} s |")
(n0, b0, r0, *_), (n1, b1, r1, *_) = growth[0], growth[-1]
per = 1e6 / (int(n1) - int(n0)) / 1024 if int(n1) > int(n0) else 0
print(f"growth per million files: backup {(int(b1) - int(b0)) * per:.1f} MiB, restore {(int(r1) - int(r0)) * per:.1f} MiB")
print()
for what in ["versions", "ls"]:
    ws = sorted(float(w) for k, w, _ in browse if k == what)
    print(f"{what} on the {snaps}-snapshot repository: median {ws[len(ws) // 2] * 1000:.0f} ms (runs: {', '.join(f'{w * 1000:.0f}' for w in ws)} ms)" + (f", {nver} versions listed" if what == "versions" else ""))
PY
