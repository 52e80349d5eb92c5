#!/usr/bin/env bash
# `sharekeepctl policy apply` against `setfacl -R -m … && setfacl -R -d -m …` giving the same
# rights to a tree of N entries (default 100,000), same run; then `policy plan` on the
# already-correct tree. Prints wall times and the ratio. Needs acl (setfacl) and root.
#
#   bench/policy.sh [--entries N] [--out DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
entries=100000
out="$here/out/policy"
while [ $# -gt 0 ]; do
  case "$1" in
    --entries) entries=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--entries N] [--out DIR]" >&2; exit 2 ;;
  esac
done
command -v setfacl >/dev/null || { echo "setfacl is needed: apt-get install acl" >&2; exit 1; }
(cd "$top" && cargo build --release -q -p sharekeepctl)
sk="$top/target/release/sharekeepctl"
rm -rf "$out"; mkdir -p "$out"

# Two identical trees: N entries in folders of 100 (folders included in the count).
python3 - "$out" "$entries" <<'PY'
import os, sys
out, n = sys.argv[1], int(sys.argv[2])
for tree in ("sk", "setfacl"):
    root = os.path.join(out, tree)
    made, d = 0, 0
    while made < n:
        folder = os.path.join(root, "dossier-%03d" % (d // 100), "sous-%05d" % d)
        os.makedirs(folder)
        made += 1
        for f in range(min(99, n - made)):
            open(os.path.join(folder, "doc-%02d.txt" % f), "w").close()
            made += 1
        d += 1
PY
echo "== $(find "$out/sk" | wc -l) entries per tree"

cat > "$out/bench.toml" <<TOML
[share]
name = "bench"
path = "$out/sk"
owner = "root"
group = "root"

[access]
read = ["@nogroup"]
write = ["nobody"]
TOML

# The timed command's failure fails the script (an assignment from a failing substitution
# stops it under set -e), never a figure for a step that did not happen.
t() {
  sync; local s e; s=$(date +%s.%N)
  "$@" >/dev/null || { echo "failed: $*" >&2; exit 1; }
  e=$(date +%s.%N); echo "$s $e" | awk '{printf "%.3f", $2 - $1}'
}
sk_apply=$(t "$sk" -q policy apply "$out/bench.toml")
sf_apply=$(t sh -c "setfacl -R -m u:nobody:rwX,g:nogroup:rX,g::---,o::--- '$out/setfacl' && setfacl -R -d -m u:nobody:rwx,g:nogroup:rx,g::---,o::--- '$out/setfacl'")
sk_plan=$(t "$sk" -q policy plan "$out/bench.toml")

# Same rights on both trees (named entries and permissions) for a sample file and folder.
for rel in dossier-000/sous-00000 dossier-000/sous-00000/doc-00.txt; do
  a=$(getfacl -cp "$out/sk/$rel" | grep -E '^(user|group):[a-z]' | sort)
  b=$(getfacl -cp "$out/setfacl/$rel" | grep -E '^(user|group):[a-z]' | sort)
  [ "$a" = "$b" ] || { echo "rights differ on $rel:"; echo "$a"; echo "--"; echo "$b"; exit 1; }
done

echo "| step | sharekeep | setfacl -R (access + default) | ratio |"
echo "|---|---:|---:|---:|"
echo "| apply from scratch, $entries entries | ${sk_apply} s | ${sf_apply} s | $(echo "$sk_apply $sf_apply" | awk '{printf "%.2fx", $1 / $2}') |"
echo "| plan on the correct tree | ${sk_plan} s | | |"
