#!/usr/bin/env bash
# Retention and prune against restic on the same history: 30 working days of
# `sk-dataset edit` backed up by both tools (one snapshot a day, dated), then
# `forget --keep-daily 7 --prune` by each, same run. Prints wall time, peak RSS and repository
# sizes. Needs restic and /usr/bin/time.
#
#   bench/prune.sh [--scale S] [--days N] [--out DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
scale=1.0; days=30; out="$here/out/prune"
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) scale=$2; shift 2 ;;
    --days) days=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--scale S] [--days N] [--out DIR]" >&2; exit 2 ;;
  esac
done
(cd "$top" && cargo build --release -q -p sharekeepctl -p sharekeep-tests --bin sharekeepctl --bin sk-dataset)
gen="$top/target/release/sk-dataset"
sk="$top/target/release/sharekeepctl"
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR="$out/restic-cache"
rm -rf "$out"; mkdir -p "$out"
data="$out/data"; skrepo="$out/sk-repo"; rrepo="$out/restic-repo"
"$gen" create "$data" --scale "$scale" >/dev/null
"$sk" -q -r "$skrepo" init
restic -q -r "$rrepo" init >/dev/null
echo "== $days days of history"
for d in $(seq 1 "$days"); do
  [ "$d" -gt 1 ] && "$gen" edit "$data" --round "$d" >/dev/null
  when="$(date -d "2026-10-01 + $((d - 1)) days" +%Y-%m-%d) 18:30:00"
  "$sk" -q -r "$skrepo" backup "$data" --time "$when"
  restic -q -r "$rrepo" backup --compression auto --time "$when" "$data" >/dev/null
done
size() { du -sb "$1" | cut -f1; }
sk_before=$(size "$skrepo"); r_before=$(size "$rrepo")
measure() {
  sync
  local s e
  s=$(date +%s.%N)
  /usr/bin/time -v -o "$out/time.txt" "$@" > "$out/last.log" 2>&1 || { cat "$out/last.log" >&2; exit 1; }
  e=$(date +%s.%N)
  echo "$(echo "$s $e" | awk '{printf "%.2f", $2 - $1}') $(awk -F': ' '/Maximum resident/ {print $2}' "$out/time.txt")"
}
# Not in a process substitution: a failing step must stop the script, not print a blank figure.
measure "$sk" -q -r "$skrepo" forget --keep-daily 7 --prune > "$out/m-sk"
measure restic -q -r "$rrepo" forget --keep-daily 7 --prune > "$out/m-restic"
read -r sk_t sk_rss < "$out/m-sk"
read -r r_t r_rss < "$out/m-restic"
"$sk" -q -r "$skrepo" check --read-data >/dev/null
sk_after=$(size "$skrepo"); r_after=$(size "$rrepo")
mib() { awk -v b="$1" 'BEGIN {printf "%.0f MiB", b / 1048576}'; }
echo "| forget --keep-daily 7 --prune, $days days | sharekeep | restic | ratio |"
echo "|---|---:|---:|---:|"
echo "| wall time | ${sk_t} s | ${r_t} s | $(echo "$sk_t $r_t" | awk '{printf "%.2fx", $1 / $2}') |"
echo "| peak RSS | $((sk_rss / 1024)) MiB | $((r_rss / 1024)) MiB | $(echo "$sk_rss $r_rss" | awk '{printf "%.2fx", $1 / $2}') |"
echo "| repository before | $(mib "$sk_before") | $(mib "$r_before") | |"
echo "| repository after | $(mib "$sk_after") | $(mib "$r_after") | |"
