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
log="${TMPDIR:-/tmp}/sharekeep-kills.log"
# The test's own verdict decides: a failed check or restore after any kill fails this script.
if ! SHAREKEEP_KILLS=$n cargo test --release -q -p sharekeep-tests --test all crash -- --nocapture > "$log" 2>&1; then
  cat "$log" >&2
  echo "== the crash scenario FAILED (log above)" >&2
  exit 1
fi
interrupted=$(grep -E "^(backup|prune) kill" "$log" | grep -c "killed" || true)
indexed=$(grep -c "after writing an index" "$log" || true)
[ "$interrupted" -gt 0 ] || { echo "== no operation was interrupted: nothing was measured" >&2; exit 1; }
echo "== $interrupted operations interrupted by SIGKILL ($indexed backups after writing an index), in $(( $(date +%s) - start )) s; after each, check passed and snapshots restored byte for byte"
