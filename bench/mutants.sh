#!/usr/bin/env bash
# Mutation testing of the pure cores (cargo-mutants): each file's code is changed in small ways
# (a condition flipped, a return value replaced, an operator swapped), the crate's unit tests
# are run against each change, and the score is the share of viable mutants the tests catch
# (timeouts count as caught: the change made a test hang). Not part of CI: about 30 minutes on
# two cores. Installs cargo-mutants when it is missing.
#
#   bench/mutants.sh [--out DIR] [NAME...]     NAME: retention rights validate planner
#
# Prints, per file: viable mutants, caught, missed, score; the missed ones are listed in
# DIR/NAME/mutants.out/missed.txt. Exits 1 when a file scores below 90 %.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
out="$here/out/mutants"
names=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    retention|rights|validate|planner) names+=("$1"); shift ;;
    *) echo "usage: $0 [--out DIR] [retention|rights|validate|planner...]" >&2; exit 2 ;;
  esac
done
[ ${#names[@]} -gt 0 ] || names=(retention rights validate planner)
command -v cargo-mutants >/dev/null || cargo install --locked cargo-mutants
mkdir -p "$out"
cd "$top"

# NAME PACKAGE FILE [REGEX]: mutants of FILE (restricted to functions matching REGEX), tested by
# PACKAGE's library tests.
declare -A package file regex
package[retention]=sharekeep;          file[retention]=daemon/src/retention.rs
package[rights]=sharekeep-policies;    file[rights]=policies/src/rights.rs
package[validate]=sharekeep-policies;  file[validate]=policies/src/validate.rs
# The restore planner: what restore decides before it writes anything.
package[planner]=sharekeep;            file[planner]=daemon/src/restore.rs
regex[planner]='(in |replace )(Action::|RestorePlan::|plan_restore |Planner|is_ancestor)'
# Only the restore module's tests run against each planner mutant (the crate's other tests,
# the index proptests among them, take longer than the build): a conservative score.
declare -A only
only[planner]='restore::'

low=0
printf '%-10s %-28s %7s %7s %7s %7s\n' file path viable caught missed score > "$out/scores.txt"
for n in "${names[@]}"; do
  dir="$out/$n"; rm -rf "$dir"; mkdir -p "$dir"
  args=(--no-shuffle --gitignore true -j 1 -p "${package[$n]}" -f "${file[$n]}" -o "$dir")
  [ -n "${regex[$n]:-}" ] && args+=(--re "${regex[$n]}")
  [ "${package[$n]}" = sharekeep ] && args+=(--no-default-features)
  echo "== $n: cargo mutants ${args[*]} -- --lib ${only[$n]:+-- ${only[$n]}}"
  rc=0
  test_args=(--lib)
  [ -n "${only[$n]:-}" ] && test_args+=(-- "${only[$n]}")
  cargo mutants "${args[@]}" -- "${test_args[@]}" > "$dir/log.txt" 2>&1 || rc=$?
  # 0: all caught; 2: some missed; 3: some timed out. Anything else: the run itself failed.
  case $rc in 0|2|3) ;; *) tail -n 30 "$dir/log.txt" >&2; echo "cargo mutants failed ($rc) for $n" >&2; exit 1 ;; esac
  m="$dir/mutants.out"
  count() { [ -f "$m/$1.txt" ] && wc -l < "$m/$1.txt" || echo 0; }
  caught=$(( $(count caught) + $(count timeout) )); missed=$(count missed)
  viable=$(( caught + missed ))
  score=$(awk -v c="$caught" -v v="$viable" 'BEGIN { printf "%.1f", v ? 100 * c / v : 100 }')
  printf '%-10s %-28s %7s %7s %7s %6s%%\n' "$n" "${file[$n]}" "$viable" "$caught" "$missed" "$score" | tee -a "$out/scores.txt"
  awk -v s="$score" 'BEGIN { exit !(s < 90) }' && low=1
done
echo; cat "$out/scores.txt"
[ "$low" = 0 ] || { echo "below 90 %: see $out/*/mutants.out/missed.txt" >&2; exit 1; }
