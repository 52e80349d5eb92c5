#!/usr/bin/env bash
# The main job on an example share, end to end, on this machine: builds sharekeep, creates an
# example department folder (../shared/bench/gen_dataset.py, small scale) and a local
# repository under ./try/, backs the folder up, simulates a working day, backs up again,
# shows the history of an overwritten proposal, and restores it in place (the overwritten
# content is kept in a pre-restore snapshot).
#
#   scripts/try.sh [--scale S]      (default 0.05: ~60 MiB, ~800 files)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
scale=0.05
[ "${1:-}" = "--scale" ] && scale=$2
work="$top/try"
share="$work/partages/commercial"
repo="$work/repository"
cd "$top"
cargo build --release -q -p sharekeepctl
sk="$top/target/release/sharekeepctl"
rm -rf "$work"; mkdir -p "$work/partages"
python3 "$top/../shared/bench/gen_dataset.py" create "$share" --scale "$scale" >/dev/null
export SHAREKEEP_REPO="$repo"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "sharekeepctl init"
"$sk" init
step "sharekeepctl backup $share --exclude '~\$*' --exclude '*.tmp'"
"$sk" backup "$share" --exclude '~$*' --exclude '*.tmp'
step "a working day of edits, then the evening backup"
python3 "$top/../shared/bench/gen_dataset.py" mutate "$share" --round 1 >/dev/null
doc=$(cd "$share" && find clients -name '*.docx' | sort | sed -n 1p)
"$sk" backup "$share" --exclude '~$*' --exclude '*.tmp'
step "sharekeepctl snapshots"
"$sk" snapshots
step "sharekeepctl diff (first snapshot vs latest, first lines)"
first=$("$sk" snapshots --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"][:8])')
"$sk" diff "$first" latest | tail -n 4
step "someone overwrites '$doc' by mistake"
echo "oops" > "$share/$doc"
step "sharekeepctl versions '$doc'"
"$sk" versions "$doc"
step "sharekeepctl restore latest '$doc' --dry-run"
"$sk" restore latest "$doc" --dry-run
step "sharekeepctl restore latest '$doc'"
"$sk" restore latest "$doc"
step "sharekeepctl versions '$doc' (the overwritten content is kept)"
"$sk" versions "$doc"
echo
echo "Everything is under $work (repository: $repo). Try: SHAREKEEP_REPO=$repo $sk ls latest -l | head"
