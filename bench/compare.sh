#!/usr/bin/env bash
# sharekeep against restic on the same department folder, same steps, one tool after the other.
#
#   bench/compare.sh [--scale S] [--rounds N] [--repeat R] [--out DIR] [--encrypt]
#                    [--store local|garage]
#
# restic always encrypts (AES-256 + Poly1305 on all data, scrypt on every command): the fair
# comparison is `--encrypt` (sharekeep's repository encrypted too, AES-256-GCM, its key in a
# key file as sharekeepd uses it). Without it, sharekeep's figures are of an unencrypted
# repository, and labelled so. `--store garage` puts both repositories on one single-node
# Garage (S3) on loopback, started here (`garage` from `cargo install garage`, see .ci/run),
# each in its own bucket, and adds the S3 requests each step sent (Garage logs each one) and
# requests per GiB stored.
#
# Builds the department folder of the repository's own generator (`sk-dataset create`, scale
# 1.0: 1.2 GiB, 16k files), then for each
# step runs sharekeep, then restic (--compression auto), on the same data, after `sync` so both
# start with the page cache as warm and no write-back pending:
#   initial backup, no-change backup, backup after one day of edits (sk-dataset edit --round 1),
#   full restore into an empty folder, and (after more days, to reach N snapshots) the restore
#   of one file.
# Prints wall time, peak RSS (/usr/bin/time -v) and repository size for each, and the ratio
# sharekeep/restic. Steps that can be repeated run R times (3 by default); the median is
# reported, and each run's own ratio (sharekeep, then restic right after it) is listed too.
# Needs restic and /usr/bin/time (apt-get install restic time).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
scale=1.0
rounds=10
repeat=3
out="$here/out"
encrypt=0
store=local
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) scale=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --encrypt) encrypt=1; shift ;;
    --store) store=$2; shift 2 ;;
    *) echo "usage: $0 [--scale S] [--rounds N] [--out DIR] [--encrypt] [--store local|garage]" >&2; exit 2 ;;
  esac
done
case "$store" in local|garage) ;; *) echo "--store is local or garage" >&2; exit 2 ;; esac
case "$repeat" in ''|*[!0-9]*|0) echo "--repeat is a number of runs, 1 or more" >&2; exit 2 ;; esac
# A sharekeep repository on another machine is always encrypted.
if [ "$store" = garage ]; then encrypt=1; fi
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
garage_log="$out/garage/garage.log"
# requests BUCKET: the S3 requests Garage has logged for BUCKET so far.
requests() {
  if [ "$store" != garage ]; then echo 0; return; fi
  grep -c -E "generic_server.* (GET|PUT|POST|HEAD|DELETE) /$1[0-9]*[/?]" "$garage_log" || true
}
# measure STEP TOOL CMD...: wall seconds, peak RSS (KiB) and S3 requests of CMD, after a sync.
measure() {
  local step=$1 tool=$2; shift 2
  sync
  local start end wall rss bucket before after
  bucket=restic-bench
  if [ "$tool" = sharekeep ]; then bucket=sk-bench; fi
  before=$(requests "$bucket")
  start=$(date +%s.%N)
  /usr/bin/time -v -o "$out/time.txt" "$@" > "$out/last.log" 2>&1 || { cat "$out/last.log" "$out/time.txt" >&2; exit 1; }
  end=$(date +%s.%N)
  after=$(requests "$bucket")
  wall=$(echo "$start $end" | awk '{printf "%.3f", $2 - $1}')
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$out/time.txt")
  printf '%s\t%s\t%s\t%s\t%s\n' "$step" "$tool" "$wall" "$rss" "$((after - before))" >> "$results"
}

if [ "$store" = garage ]; then
  garage=$(command -v garage || echo "$HOME/.cargo/bin/garage")
  [ -x "$garage" ] || { echo "garage is needed: see .ci/run (cargo install garage ...)" >&2; exit 1; }
  freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
  s3port=$(freeport); rpcport=$(freeport)
  mkdir -p "$out/garage"
  {
    echo "metadata_dir = \"$out/garage/meta\""
    echo "data_dir = \"$out/garage/data\""
    echo 'db_engine = "sqlite"'
    echo 'replication_factor = 1'
    echo "rpc_bind_addr = \"127.0.0.1:$rpcport\""
    echo "rpc_public_addr = \"127.0.0.1:$rpcport\""
    echo "rpc_secret = \"$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')\""
    echo '[s3_api]'
    echo 's3_region = "garage"'
    echo "api_bind_addr = \"127.0.0.1:$s3port\""
    echo 'root_domain = ".s3.garage.localhost"'
  } > "$out/garage/garage.toml"
  g() { "$garage" -c "$out/garage/garage.toml" "$@"; }
  RUST_LOG=warn,garage_api_common=info NO_COLOR=1 "$garage" -c "$out/garage/garage.toml" server 2>"$garage_log" >/dev/null &
  garage_pid=$!
  trap 'kill $garage_pid 2>/dev/null || true' EXIT
  for _ in $(seq 100); do g status >/dev/null 2>&1 && break; sleep 0.1; done
  g layout assign -z dc1 -c 10G "$(g node id -q | cut -d@ -f1)" >/dev/null
  g layout apply --version 1 >/dev/null
  keyinfo=$(g key create bench)
  AWS_ACCESS_KEY_ID=$(echo "$keyinfo" | awk '/Key ID:/ {print $3}')
  AWS_SECRET_ACCESS_KEY=$(echo "$keyinfo" | awk '/Secret key:/ {print $3}')
  export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION=garage
  # One bucket per repository (sk-bench1, restic-bench1, ...): what a repository holds is what
  # Garage counts in its bucket (to 0.1 MiB).
  for i in $(seq "$repeat"); do
    for b in sk-bench$i restic-bench$i; do
      g bucket create "$b" >/dev/null
      g bucket allow --read --write --owner "$b" --key bench >/dev/null
    done
  done
  reposize() {
    local b
    b=$(echo "$1" | sed -E 's#^s3://([^/?]+).*#\1#; s#^s3:http://[^/]+/([^/]+).*#\1#')
    g bucket info "$b" | sed -nE 's/^Size:.*\(([0-9.]+) (B|KiB|MiB|GiB)\).*/\1 \2/p' |
      awk '{m = ($2 == "GiB") ? 1073741824 : ($2 == "MiB") ? 1048576 : ($2 == "KiB") ? 1024 : 1; printf "%d\n", $1 * m}'
  }
else
  skrepo="$out/sk-repo"; rrepo="$out/restic-repo"
  reposize() { du -sb "$1" | cut -f1; }
fi
export XDG_CACHE_HOME="$out/sk-cache"
if [ "$encrypt" = 1 ]; then
  "$sk" key generate "$out/sk.key" 2>/dev/null
  export SHAREKEEP_KEY_FILE="$out/sk.key"
  skinit=(init --encrypt)
  label="sharekeep (encrypted: AES-256-GCM, key file)"
else
  skinit=(init)
  label="sharekeep (UNENCRYPTED; restic encrypts)"
fi
# Steps that can be repeated run $repeat times (into a fresh repository or folder); the
# median is reported, as write-back and the VM's disk make single runs vary by up to 50%.
for i in $(seq "$repeat"); do
  if [ "$store" = garage ]; then
    # A fresh repository each time: a new prefix in each bucket.
    skrepo="s3://sk-bench$i/repo?endpoint=http://127.0.0.1:$s3port&region=garage"
    rrepo="s3:http://127.0.0.1:$s3port/restic-bench$i/repo"
  else
    rm -rf "$skrepo" "$rrepo"
  fi
  "$sk" -q -r "$skrepo" "${skinit[@]}"
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
echo "== $label vs restic $(restic version | awk '{print $2}'), $(nproc) cores, scale $scale, store: $store ($nsnap snapshots for the one-file restore)"
python3 - "$results" "$sk_growth" "$r_growth" "$sk_size" "$r_size" "$store" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
sk_growth, r_growth, sk_size, r_size = map(int, sys.argv[2:6])
remote = sys.argv[6] == "garage"
steps = []
runs = {}
reqs = {}
for step, tool, wall, rss, nreq in rows:
    if step not in steps:
        steps.append(step)
    runs.setdefault((step, tool), []).append((float(wall), int(rss)))
    reqs.setdefault((step, tool), []).append(int(nreq))
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
if remote:
    gib = 1 << 30
    print()
    print("| S3 requests (Garage's log; median of runs) | sharekeep | restic | ratio |")
    print("|---|---:|---:|---:|")
    for s in steps:
        if s.startswith("limit"):
            continue
        a, b = median(reqs[(s, "sharekeep")]), median(reqs[(s, "restic")])
        print(f"| {s} | {a} | {b} | {a / max(b, 1):.2f}x |")
    a, b = median(reqs[("initial backup", "sharekeep")]), median(reqs[("initial backup", "restic")])
    pa, pb = a / (sk_size / gib), b / (r_size / gib)
    print(f"| initial backup, per GiB stored | {pa:.0f} | {pb:.0f} | {pa / pb:.2f}x |")
print()
print("| step | ratio of each run (sharekeep / the restic run right after it) |")
print("|---|---|")
for s in steps:
    if s.startswith("limit") or counts[(s, "sharekeep")] < 2:
        continue
    pairs = zip(runs[(s, "sharekeep")], runs[(s, "restic")])
    print(f"| {s} | {' '.join(f'{a / max(b, 0.005):.2f}x' for (a, _), (b, _) in pairs)} |")
restore = data[("full restore", "sharekeep")][0]
print()
print("| physical limit on this machine (median of runs) | time | sharekeep's full restore / limit |")
print("|---|---:|---:|")
for s, tool in [("limit: cat of every file", "cat"), ("limit: cp -a of the folder", "cp")]:
    w = data[(s, tool)][0]
    print(f"| {s[7:]} ({counts[(s, tool)]}) | {w:.3f} s | {restore / w:.2f}x |")
PY
rm -rf "$trash"
