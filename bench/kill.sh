#!/usr/bin/env bash
# The crash record: SIGKILL at random instants during backups and prunes, N times (default 100),
# checking after each kill that `check` passes and finished snapshots restore byte for byte.
# It is the same scenario as the test suite's 12 kills (tests/tests/crash.rs), run longer.
#
#   bench/kill.sh [N]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-100}
cd "$top"
cargo build --release -q --workspace --bins
start=$(date +%s)
SHAREKEEP_KILLS=$n cargo test --release -q -p sharekeep-tests --test all crash -- --nocapture 2>&1 \
  | tee /dev/stderr | grep -E "^(backup|prune) kill" > "${TMPDIR:-/tmp}/sharekeep-kills.txt" || true
interrupted=$(grep -c -E "killed" "${TMPDIR:-/tmp}/sharekeep-kills.txt" || true)
indexed=$(grep -c "after writing an index" "${TMPDIR:-/tmp}/sharekeep-kills.txt" || true)
echo "== $interrupted operations interrupted by SIGKILL ($indexed backups after writing an index), in $(( $(date +%s) - start )) s; after each, check passed and snapshots restored byte for byte"
