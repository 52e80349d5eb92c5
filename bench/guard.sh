#!/usr/bin/env bash
# The share that defends itself, measured: the SMB attack of the guard test (a member rewrites
# 500 files of the scale-0.05 folder with random bytes through smbclient, renames each to
# *.locked, drops a ransom note in each folder) run N times (default 5) against a real smbd and
# sharekeepd; for each run, how long until the attacker's writes were refused and how many of
# the 500 files were damaged before. Prints each run, then the median and the worst.
# Needs root, samba and smbclient (as the tests do).
#
#   bench/guard.sh [--runs N]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
runs=5
[ "${1:-}" = "--runs" ] && runs=$2
cd "$top"
cargo build -q --workspace --bins
cargo test -q -p sharekeep-tests --test all --no-run 2>/dev/null
results=$(mktemp)
for i in $(seq "$runs"); do
  line=$(cargo test -q -p sharekeep-tests --test all -- --exact \
      guard::a_member_encrypting_the_share_over_smb_is_locked_out_within_seconds --nocapture 2>&1 |
    sed -nE 's/^guard: attacker refused after ([0-9.]+)(ms|s|µs), ([0-9]+) of 500 files damaged.*/\1 \2 \3/p')
  [ -n "$line" ] || { echo "run $i: the test did not report (run it alone to see why)" >&2; exit 1; }
  read -r t unit damaged <<<"$line"
  ms=$(awk -v t="$t" -v u="$unit" 'BEGIN { printf "%.0f", (u == "s") ? t * 1000 : (u == "µs") ? t / 1000 : t }')
  echo "run $i: refused after $ms ms, $damaged of 500 files damaged"
  echo "$ms $damaged" >>"$results"
done
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
worst() { sort -n | tail -1; }
echo "median: $(cut -d' ' -f1 "$results" | median) ms, worst $(cut -d' ' -f1 "$results" | worst) ms; damaged: median $(cut -d' ' -f2 "$results" | median), worst $(cut -d' ' -f2 "$results" | worst) of 500 (the test requires < 5 s and < 100)"
rm -f "$results"
