#!/usr/bin/env bash
# sharekeep against restic on the same department folder, same steps, one tool after the other.
#
#   bench/compare.sh [--scale S] [--rounds N] [--out DIR]
#
# Builds the department folder of the repository's own generator (`sk-dataset create`, scale
# 1.0: 1.2 GiB, 16k files), then for each
# step runs sharekeep, then restic (--compression auto), on the same data, after `sync` so both
# start with the page cache as warm and no write-back pending:
#   initial backup, no-change backup, backup after one day of edits (sk-dataset edit --round 1),
#   full restore into an empty folder, and (after more days, to reach N snapshots) the restore
#   of one file.
# Prints wall time, peak RSS (/usr/bin/time -v) and repository size for each, and the ratio
# sharekeep/restic. Needs restic and /usr/bin/time (apt-get install restic time).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
scale=1.0
rounds=10
out="$here/out"
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) scale=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--scale S] [--rounds N] [--out DIR]" >&2; exit 2 ;;
  esac
done
command -v restic >/dev/null || { echo "restic is needed: apt-get install restic" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is needed: apt-get install time" >&2; exit 1; }

(cd "$top" && cargo build --release -q -p sharekeepctl -p sharekeep-tests --bin sharekeepctl --bin sk-dataset)
gen="$top/target/release/sk-dataset"
sk="$top/target/release/sharekeepctl"
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR="$out/restic-cache"

rm -rf "$out"; mkdir -p "$out"
# ext4 avoids reusing inodes freed in the last minutes (`recently_deleted`), which makes file
# creation up to 4x slower, for both tools, right after a previous run's files were removed;
# dropping the cache of inode-table blocks ends that (root only), and within the run what a
# step made is moved aside, not deleted, until the end.
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
trash="$out/trash"; mkdir -p "$trash"
aside() { for p in "$@"; do [ -e "$p" ] && mv "$p" "$trash/$(basename "$p").$RANDOM$RANDOM"; done; return 0; }
data="$out/data"
echo "== dataset: sk-dataset create --scale $scale"
"$gen" create "$data" --scale "$scale" >/dev/null
du -sh "$data" | sed 's/^/   /'

results="$out/results.tsv"
: > "$results"
# measure STEP TOOL CMD...: wall seconds and peak RSS (KiB) of CMD, after a sync.
measure() {
  local step=$1 tool=$2; shift 2
  sync
  local start end wall rss
  start=$(date +%s.%N)
  /usr/bin/time -v -o "$out/time.txt" "$@" > "$out/last.log" 2>&1 || { cat "$out/last.log" "$out/time.txt" >&2; exit 1; }
  end=$(date +%s.%N)
  wall=$(echo "$start $end" | awk '{printf "%.3f", $2 - $1}')
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$out/time.txt")
  printf '%s\t%s\t%s\t%s\n' "$step" "$tool" "$wall" "$rss" >> "$results"
}
reposize() { du -sb "$1" | cut -f1; }

skrepo="$out/sk-repo"; rrepo="$out/restic-repo"
# Steps that can be repeated run $repeat times (into a fresh repository or folder); the
# median is reported, as write-back and the VM's disk make single runs vary by up to 50%.
repeat=3
for i in $(seq "$repeat"); do
  rm -rf "$skrepo" "$rrepo"
  "$sk" -q -r "$skrepo" init
  restic -q -r "$rrepo" init >/dev/null
  measure "initial backup" sharekeep "$sk" -q -r "$skrepo" backup "$data"
  measure "initial backup" restic restic -q -r "$rrepo" backup --compression auto "$data"
done
for i in $(seq "$repeat"); do
  measure "no-change backup" sharekeep "$sk" -q -r "$skrepo" backup "$data"
  measure "no-change backup" restic restic -q -r "$rrepo" backup --compression auto "$data"
done
sk_before=$(reposize "$skrepo"); r_before=$(reposize "$rrepo")
"$gen" edit "$data" --round 1 >/dev/null
measure "day-1 backup" sharekeep "$sk" -q -r "$skrepo" backup "$data"
measure "day-1 backup" restic restic -q -r "$rrepo" backup --compression auto "$data"
sk_growth=$(( $(reposize "$skrepo") - sk_before )); r_growth=$(( $(reposize "$rrepo") - r_before ))
sk_size=$(reposize "$skrepo"); r_size=$(reposize "$rrepo")

for i in $(seq "$repeat"); do
  aside "$out/restore-sk" "$out/restore-restic"
  measure "full restore" sharekeep "$sk" -q -r "$skrepo" restore latest --to "$out/restore-sk"
  measure "full restore" restic restic -q -r "$rrepo" restore latest --target "$out/restore-restic"
done
diff -r "$data" "$out/restore-sk" >/dev/null || { echo "sharekeep's restore differs from the data" >&2; exit 1; }
# The physical limit on this machine, same conditions: reading every file of the folder, and
# copying it (what a restore from a plain copy would cost).
for i in $(seq "$repeat"); do
  aside "$out/copy"
  measure "limit: cat of every file" cat sh -c 'cd "$1" && find . -type f -print0 | xargs -0 cat > /dev/null' sh "$data"
  measure "limit: cp -a of the folder" cp cp -a "$data" "$out/copy"
done
aside "$out/copy"

# More working days, to have N snapshots in each repository.
# Snapshots so far: $repeat initial ones (each in a fresh repository, the last kept) is 1,
# plus $repeat no-change ones and day 1.
have=$((repeat + 2))
for r in $(seq 2 $((rounds - have + 1))); do
  "$gen" edit "$data" --round "$r" >/dev/null
  "$sk" -q -r "$skrepo" backup "$data"
  restic -q -r "$rrepo" backup --compression auto "$data" >/dev/null
done
one=$(cd "$data" && find clients -type f -name "*.docx" | sort | sed -n 1p)
for i in $(seq "$repeat"); do
  aside "$out/one-sk" "$out/one-restic"
  measure "one-file restore" sharekeep "$sk" -q -r "$skrepo" restore latest "$one" --to "$out/one-sk"
  measure "one-file restore" restic restic -q -r "$rrepo" restore latest --target "$out/one-restic" --include "$data/$one"
done
cmp "$data/$one" "$out/one-sk/$one"
nsnap=$("$sk" -r "$skrepo" snapshots --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')

echo
echo "== sharekeep vs restic $(restic version | awk '{print $2}'), $(nproc) cores, scale $scale ($nsnap snapshots for the one-file restore)"
python3 - "$results" "$sk_growth" "$r_growth" "$sk_size" "$r_size" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
sk_growth, r_growth, sk_size, r_size = map(int, sys.argv[2:6])
steps = []
runs = {}
for step, tool, wall, rss in rows:
    if step not in steps:
        steps.append(step)
    runs.setdefault((step, tool), []).append((float(wall), int(rss)))
def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]
# Median wall time; peak RSS is the largest seen.
data = {k: (median([w for w, _ in v]), max(r for _, r in v)) for k, v in runs.items()}
counts = {k: len(v) for k, v in runs.items()}
print("| step (median of runs) | sharekeep | restic | time ratio | sharekeep RSS | restic RSS | RSS ratio |")
print("|---|---:|---:|---:|---:|---:|---:|")
for s in steps:
    if s.startswith("limit"):
        continue
    (sw, sr), (rw, rr) = data[(s, "sharekeep")], data[(s, "restic")]
    print(f"| {s} ({counts[(s, 'sharekeep')]}) | {sw:.3f} s | {rw:.3f} s | {sw / max(rw, 0.005):.2f}x | {sr / 1024:.0f} MiB | {rr / 1024:.0f} MiB | {sr / rr:.2f}x |")
mib = 1 << 20
print(f"| repository after day 1 | {sk_size / mib:.0f} MiB | {r_size / mib:.0f} MiB | {sk_size / r_size:.2f}x | | | |")
print(f"| day-1 growth | {sk_growth / mib:.1f} MiB | {r_growth / mib:.1f} MiB | {sk_growth / max(r_growth, 1):.2f}x | | | |")
restore = data[("full restore", "sharekeep")][0]
print()
print("| physical limit on this machine (median of runs) | time | sharekeep's full restore / limit |")
print("|---|---:|---:|")
for s, tool in [("limit: cat of every file", "cat"), ("limit: cp -a of the folder", "cp")]:
    w = data[(s, tool)][0]
    print(f"| {s[7:]} ({counts[(s, tool)]}) | {w:.3f} s | {restore / w:.2f}x |")
PY
rm -rf "$trash"
