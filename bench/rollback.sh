#!/usr/bin/env bash
# A ransomware incident rolled back, measured: a member (a local process as them) rewrites
# every file of a folder of N small files (default 10,000; 1-8 KiB in N/100 folders) with
# random bytes, renames each to *.locked and drops a note in each folder, under a guard with
# action = "alert" so the attack runs to its end and every change is in the incident. Then
# `sharekeepctl rollback --incident` brings every file back (checked byte for byte) and
# removes the copies and notes. Prints the rollback's wall time (target <= 10 s for 10,000
# files), the dry run's, and restic 0.14's restore of the same folder into an empty one, same
# run (what a restic user starts with, before sorting damaged from intact by hand).
# Needs root (test users), python3 and restic.
#
#   bench/rollback.sh [--files N]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
files=10000
[ "${1:-}" = "--files" ] && files=$2
[ "$(id -u)" = 0 ] || { echo "run as root (it creates test users)" >&2; exit 1; }
command -v restic >/dev/null || { echo "restic is needed: apt-get install restic" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is needed" >&2; exit 1; }
cd "$top"
cargo build --release -q --workspace --bins
SHAREKEEP_BIN_DIR="$top/target/release" SK_ROLLBACK_FILES=$files \
  cargo test -q -p sharekeep-tests --test all -- --ignored --exact guard::rollback_benchmark --nocapture 2>&1 |
  grep -E '^(attack|rollback):|panicked|FAILED' || { echo "the benchmark did not report" >&2; exit 1; }
