#!/usr/bin/env bash
# How fast sharekeepd gives new files their rights, and what it costs while idle.
# 1. A share of N entries (default 100,000) under a policy; sharekeepd starts and reconciles.
# 2. Idle: CPU time the service uses over 20 s with nothing happening.
# 3. 1,000 files created in bursts of 100 with an explicit mode 0600 (as a program would,
#    defeating the default ACL's mask); for each, the time until its rights are right (the
#    group may read), polled every 2 ms. Prints p50, p99 and max.
#
#   bench/enforce.sh [--entries N]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
entries=100000
[ "${1:-}" = "--entries" ] && entries=$2
out="$here/out/enforce"
(cd "$top" && cargo build --release -q -p sharekeep)
skd="$top/target/release/sharekeepd"
rm -rf "$out"; mkdir -p "$out/policies" "$out/share"
python3 - "$out/share" "$entries" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
made, d = 0, 0
while made < n:
    folder = os.path.join(root, "dossier-%03d" % (d // 100), "sous-%05d" % d)
    os.makedirs(folder); made += 1
    for f in range(min(99, n - made)):
        open(os.path.join(folder, "doc-%02d.txt" % f), "w").close(); made += 1
    d += 1
os.makedirs(os.path.join(root, "bench"))
PY
cat > "$out/policies/bench.toml" <<TOML
[share]
name = "bench"
path = "$out/share"
owner = "root"
group = "root"

[access]
read = ["@nogroup"]
write = ["root"]
TOML
"$skd" --policies "$out/policies" --state "$out/state" --socket "$out/ctl.sock" --log-level warn 2> "$out/log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
# Wait for the initial reconcile (and its echo) to settle: CPU time stops growing.
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
prev=-1
while :; do sleep 2; now=$(cpu); [ "$now" = "$prev" ] && break; prev=$now; done
hz=$(getconf CLK_TCK)
c0=$(cpu); sleep 20; c1=$(cpu)
idle=$(echo "$c0 $c1 $hz" | awk '{printf "%.2f", ($2 - $1) / $3 * 1000 / 20}')
python3 - "$out/share/bench" <<'PY' > "$out/latency.txt"
import os, sys, time
d = sys.argv[1]
lat = []
for b in range(10):
    pending = {}
    for i in range(100):
        p = os.path.join(d, "f%d-%d" % (b, i))
        t = time.monotonic()
        os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o600))
        pending[p] = t
    start = time.monotonic()
    while pending:
        for p, t in list(pending.items()):
            if os.stat(p).st_mode & 0o040:
                lat.append(time.monotonic() - t)
                del pending[p]
        if time.monotonic() - start > 30:
            sys.exit("files not fixed within 30 s: %d left" % len(pending))
        time.sleep(0.002)
lat.sort()
q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))] * 1000
print("%.1f %.1f %.1f %d" % (q(0.5), q(0.99), lat[-1] * 1000, len(lat)))
PY
read -r p50 p99 max n < "$out/latency.txt"
echo "| sharekeepd, share of $entries entries | figure |"
echo "|---|---:|"
echo "| CPU while idle (20 s) | ${idle} ms per second |"
echo "| rights of a new 0600 file, p50 ($n files in bursts of 100) | ${p50} ms |"
echo "| p99 | ${p99} ms |"
echo "| max | ${max} ms |"
