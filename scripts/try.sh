#!/usr/bin/env bash
# The main job, on this machine, with nothing else to set up: builds sharekeep, creates an
# example department folder (the repository's own generator, `sk-dataset`, small scale) under
# ./try/, a policy from policies/examples/commercial.toml pointing at it with a local
# repository, and runs sharekeepd on it: rights applied, a backup, a file overwritten by mistake
# found with `versions` and restored. Then sharekeepd keeps running (Ctrl-C stops it) unless
# --no-wait.
#
#   scripts/try.sh [--scale S] [--no-wait]      (default scale 0.05: ~60 MiB, ~800 files)
#
# Needs: root (sharekeepd sets owners and ACLs), Rust's cargo, a filesystem with POSIX ACLs
# under ./try (ext4, xfs, btrfs…). Optional: getfacl (package acl) to show the ACLs it set.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
scale=0.05; wait=1
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) scale=$2; shift 2 ;;
    --no-wait) wait=0; shift ;;
    *) echo "usage: $0 [--scale S] [--no-wait]" >&2; exit 2 ;;
  esac
done
# Everything this script needs, checked before anything is built or written.
missing=()
[ "$(id -u)" = 0 ] || missing+=("root: sharekeepd sets owners and ACLs; run it as root (sudo $0)")
command -v cargo >/dev/null || missing+=("cargo: install Rust (https://rustup.rs), then run this again")
getent group users >/dev/null || missing+=("the group 'users' (the example department): groupadd users")
for tool in sed find tail getent; do
  command -v "$tool" >/dev/null || missing+=("$tool: apt-get install coreutils findutils sed")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "scripts/try.sh cannot run yet; it needs:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 1
fi
work="$top/try"
share="$work/partages/commercial"
cd "$top"
cargo build --release -q -p sharekeep -p sharekeepctl -p sharekeep-tests --bin sharekeepd --bin sharekeepctl --bin sk-dataset
sk="$top/target/release/sharekeepctl"; skd="$top/target/release/sharekeepd"
if [ -S "$work/ctl.sock" ]; then "$sk" --socket "$work/ctl.sock" status >/dev/null 2>&1 && { echo "a sharekeepd from an earlier run is still running on $work/ctl.sock; stop it first" >&2; exit 1; }; fi
rm -rf "$work"; mkdir -p "$work/partages" "$work/policies"
"$top/target/release/sk-dataset" create "$share" --scale "$scale" >/dev/null
mkdir -p "$share/Tarifs" "$share/Propositions"
# The example policy, with names that exist on any Debian machine: root owns the files, the
# `users` group is the department.
sed -e "s|/srv/partages/commercial|$share|" \
    -e "s|/var/backups/sharekeep/commercial|$work/repository|" \
    -e 's|"adjoint"|"root"|g; s|"@commercial"|"@users"|g; s|group = "commercial"|group = "users"|; s|"@dsi"|"@root"|' \
    -e 's|^schedule = .*|schedule = "0 */10 * * * *"   # every 10 minutes, for the demo|' \
    "$top/policies/examples/commercial.toml" > "$work/policies/commercial.toml"
export SHAREKEEP_SOCKET="$work/ctl.sock"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "sharekeepctl policy check"
"$sk" policy check "$work/policies"
step "sharekeepctl policy apply (the rights, as ACLs)"
"$sk" policy apply "$work/policies" > "$work/apply.log" || {
  echo "the rights could not be applied: is $work on a filesystem with POSIX ACLs (ext4, xfs, btrfs; not tmpfs)?" >&2
  exit 1
}
tail -n 1 "$work/apply.log"; echo "(each entry fixed: $work/apply.log)"
step "sharekeepd --policies $work/policies (log: $work/sharekeepd.log)"
"$skd" --policies "$work/policies" --state "$work/state" --socket "$work/ctl.sock" > "$work/sharekeepd.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S "$work/ctl.sock" ] && break; sleep 0.1; done
sleep 1
"$sk" status
step "a file created with umask 077 gets the share's rights"
(umask 077; echo "nouveau tarif" > "$share/Tarifs/nouveau.csv")
sleep 0.5
if command -v getfacl >/dev/null; then getfacl -cp "$share/Tarifs/nouveau.csv"
else ls -l "$share/Tarifs/nouveau.csv"; echo "(apt-get install acl to see the ACL with getfacl)"; fi
step "sharekeepctl backup --share commercial"
"$sk" backup --share commercial
doc=$(cd "$share" && find clients -name '*.docx' | sort | sed -n 1p)
step "someone overwrites '$doc' by mistake"
echo "oops" > "$share/$doc"
step "sharekeepctl versions '$doc' (the admin, offline on the repository)"
"$sk" -r "$work/repository" versions "$doc"
step "sharekeepctl restore latest '$doc'"
"$sk" -r "$work/repository" restore latest "$doc"
step "sharekeepctl snapshots --share commercial"
"$sk" snapshots --share commercial
step "sharekeepctl status"
"$sk" status
if [ "$wait" = 1 ]; then
  echo; echo "sharekeepd keeps the rights of $share and backs it up every 10 minutes; Ctrl-C stops it."
  tail -f "$work/sharekeepd.log" &
  wait $pid
fi
