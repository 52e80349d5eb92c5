#!/usr/bin/env bash
# Mutated repositories against the readers, for a fixed time.
#
#   bench/fuzz.sh [SECONDS] [SEED]
#
# Runs tests/src/bin/sk-fuzz-repo.rs (release build): a small valid repository is copied and
# one of its files (index, pack, snapshot, config) mutated (bit flips, huge length fields,
# truncation, inserted bytes; index and snapshot files renamed to their new hash), then opened,
# listed, read and checked with --read-data, again and again for SECONDS (default 60). Prints
# the runs, the damage found, the panics (must be 0) and the largest single allocation (must
# stay under the documented caps: 64 MiB trees, 16 MiB data blobs). Exits non-zero otherwise.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
seconds=${1:-60}
seed=${2:-$RANDOM}
(cd "$top" && cargo build --release -q -p sharekeep-tests --bin sk-fuzz-repo)
echo "== $seconds s of mutated repositories (seed $seed)"
"$top/target/release/sk-fuzz-repo" "$seconds" "$seed"
