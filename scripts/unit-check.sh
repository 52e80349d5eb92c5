#!/usr/bin/env bash
# Runs the shipped systemd unit (daemon/sharekeepd.service) for real: boots systemd as PID 1
# in a throw-away container (systemd-nspawn over a read-only view of this machine's root,
# every write going to a tmpfs overlay; /srv, /home and /var/backups are real folders of this
# machine's disk, as they would be), installs the release binaries there, starts
# sharekeepd with the unit's hardening, and checks that the service can do its work under it:
#   - a share in /srv and one under /home get their rights (ACLs, setgid directories)
#   - a file created with umask 077 is fixed by the watcher
#   - a backup runs into /var/backups; the state folder is private
#   - a member restores in place (written by the service) and copies into /tmp (written by
#     sharekeepctl as the member)
#   - the Samba include in /etc/samba is written (ProtectSystem=full with /etc/samba writable)
#   - Previous Versions: under the plain unit sharekeepd names the drop-in they need; with
#     daemon/sharekeepd-previous-versions.conf the @GMT folders are seen outside the service
#     and a member reads a file there
# Prints each check and exits non-zero if any fails. Needs root and systemd-container
# (apt-get install systemd-container); nothing on this machine is changed.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
command -v systemd-nspawn >/dev/null || { echo "systemd-nspawn is needed: apt-get install systemd-container" >&2; exit 1; }
(cd "$top" && cargo build --release -q -p sharekeep -p sharekeepctl)

work=$(mktemp -d /tmp/sk-unit-XXXXXX)
root="$work/root"
mkdir -p "$root" "$work/system/multi-user.target.wants" "$work/check" "$work/out" \
  "$work/srv" "$work/home" "$work/backups"
cleanup() {
  umount "$root" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mount --bind -o ro / "$root"

cp "$top/daemon/sharekeepd.service" "$work/system/sharekeepd.service"
cp "$top/target/release/sharekeepd" "$top/target/release/sharekeepctl" "$work/check/"
cp "$top/daemon/sharekeepd-previous-versions.conf" "$work/check/previous-versions.conf"
cat > "$work/system/sk-check.service" <<'EOF'
[Unit]
Description=sharekeep unit check
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/bin/bash /sk-check/inside.sh
ExecStopPost=/bin/systemctl poweroff --no-block
StandardOutput=append:/sk-out/log
StandardError=append:/sk-out/log
EOF
ln -s ../sk-check.service "$work/system/multi-user.target.wants/sk-check.service"

cat > "$work/check/inside.sh" <<'EOF'
#!/bin/bash
# Runs inside the container, as root, under systemd.
set -u
out=/sk-out/result
fail=0
check() {
  local what=$1; shift
  if "$@" > /sk-out/last 2>&1; then echo "ok   $what" >> $out
  else echo "FAIL $what" >> $out; sed 's/^/     /' /sk-out/last >> $out; fail=1; fi
}
install -m 755 /sk-check/sharekeepd /sk-check/sharekeepctl /usr/local/bin/
groupadd commercial; groupadd dsi
useradd -m -U -s /bin/bash -G commercial adjoint
useradd -M -U -s /bin/bash -G commercial alice
mkdir -p /srv/partages/commercial/Tarifs /srv/partages/commercial/Propositions
mkdir -p /home/adjoint/dossier; chmod 711 /home/adjoint   # members pass through the home to reach the share
(umask 077; mkdir /home/adjoint/dossier/Notes; echo note > /home/adjoint/dossier/Notes/n.txt)
mkdir -p /etc/sharekeep/policies /var/backups/sharekeep /etc/samba
for share in commercial dossier; do
  case $share in
    commercial) path=/srv/partages/commercial; extra='[[rule]]
path = "Propositions"
write = ["@commercial"]' ;;
    dossier) path=/home/adjoint/dossier; extra='' ;;
  esac
  cat > /etc/sharekeep/policies/$share.toml <<POL
[share]
name = "$share"
path = "$path"
owner = "adjoint"
group = "commercial"
admins = ["@dsi"]

[access]
read = ["@commercial"]
write = ["adjoint"]

$extra

[backup]
schedule = "0 0 0 1 1 *"
repository = "/var/backups/sharekeep/$share"

[samba]
export = true
previous_versions = true
POL
done
cat > /etc/sharekeep/sharekeepd.toml <<CONF
samba_manage = true
samba_include = "/etc/samba/sharekeep.conf"
CONF
echo "v1" > /srv/partages/commercial/Propositions/offre.docx
systemctl daemon-reload
systemctl start sharekeepd
for i in $(seq 1 100); do [ -S /run/sharekeep/ctl.sock ] && break; sleep 0.1; done
check "sharekeepd runs under the unit" systemctl is-active sharekeepd
check "the socket is there" test -S /run/sharekeep/ctl.sock
# Rights, in /srv and under /home.
for i in $(seq 1 50); do setpriv --reuid=alice --regid=alice --init-groups ls /srv/partages/commercial/Tarifs >/dev/null 2>&1 && break; sleep 0.1; done
check "a member lists a folder of the share in /srv" setpriv --reuid=alice --regid=alice --init-groups ls /srv/partages/commercial/Tarifs
check "directories get setgid" bash -c '[ "$(stat -c %A /srv/partages/commercial/Tarifs | cut -c7)" = s ]'
check "a share under /home gets its rights" bash -c 'for i in $(seq 1 50); do setpriv --reuid=alice --regid=alice --init-groups cat /home/adjoint/dossier/Notes/n.txt && exit 0; sleep 0.1; done; exit 1'
(umask 077; echo secret > /srv/partages/commercial/Tarifs/new.csv)
check "a file made with umask 077 is fixed" bash -c 'for i in $(seq 1 50); do setpriv --reuid=alice --regid=alice --init-groups cat /srv/partages/commercial/Tarifs/new.csv && exit 0; sleep 0.1; done; exit 1'
# Backups and state.
check "a backup runs" sharekeepctl backup --share commercial
# The restore below saves what it replaces in a pre-restore snapshot; Previous Versions show one
# snapshot per second (the newest), so that one must fall in a later second than this backup.
backed_up=$(date +%s); while [ "$(date +%s)" = "$backed_up" ]; do sleep 0.05; done
check "the state folder can be crossed, not listed, by others" bash -c '[ "$(stat -c %a /var/lib/sharekeep)" = 711 ]'
check "the state files are root's" bash -c '[ "$(stat -c %a /var/lib/sharekeep/commercial.json)" = 600 ]'
# Previous Versions under the plain unit: its mount namespace would hide them from smbd, and
# sharekeepd says what to install.
check "sharekeepd names the Previous Versions drop-in" bash -c 'journalctl -u sharekeepd --no-pager | grep -q "sharekeepd-previous-versions.conf"'
check "the Samba include is written in /etc/samba" grep -q '\[commercial\]' /etc/samba/sharekeep.conf
# A member's restores: in place (by the service), and a copy into /tmp (by sharekeepctl).
setpriv --reuid=alice --regid=alice --init-groups bash -c 'echo oops > /srv/partages/commercial/Propositions/offre.docx'
check "a member restores in place" setpriv --reuid=alice --regid=alice --init-groups sharekeepctl restore --share commercial latest Propositions/offre.docx
check "the file is back" grep -qx v1 /srv/partages/commercial/Propositions/offre.docx
check "a member copies into /tmp" setpriv --reuid=alice --regid=alice --init-groups sharekeepctl restore --share commercial latest Tarifs --to /tmp/alice-copy
check "the copy is the member's" bash -c '[ "$(stat -c %U /tmp/alice-copy/Tarifs/new.csv)" = alice ]'
check "sharekeepd reloads (SIGHUP through the unit)" systemctl reload sharekeepd
# With the drop-in: the Previous Versions are mounted where smbd (here: this unit, outside
# sharekeepd's namespace) sees them, and a member reads yesterday's file there.
mkdir -p /run/systemd/system/sharekeepd.service.d
cp /sk-check/previous-versions.conf /run/systemd/system/sharekeepd.service.d/
systemctl daemon-reload
systemctl restart sharekeepd
for i in $(seq 1 100); do [ -S /run/sharekeep/ctl.sock ] && break; sleep 0.1; done
check "with the drop-in, the Previous Versions are seen outside the service" bash -c 'for i in $(seq 1 100); do ls /var/lib/sharekeep/versions/commercial | grep -q "^@GMT-" && exit 0; sleep 0.1; done; exit 1'
check "a member reads a Previous Version" bash -c 'setpriv --reuid=alice --regid=alice --init-groups cat /var/lib/sharekeep/versions/commercial/@GMT-*/Propositions/offre.docx | grep -qx v1'
check "sharekeepd reloads (SIGHUP through the unit)" systemctl reload sharekeepd
check "sharekeepd stops cleanly" systemctl stop sharekeepd
journalctl -u sharekeepd --no-pager > /sk-out/sharekeepd.log 2>&1 || true
echo "done $fail" >> $out
EOF

echo "== booting systemd in a container (up to 3 minutes)"
timeout 180 systemd-nspawn -D "$root" --volatile=overlay --register=no --keep-unit \
  --link-journal=no -q --console=pipe \
  --bind-ro="$work/system:/etc/systemd/system" --bind-ro="$work/check:/sk-check" \
  --bind="$work/out:/sk-out" --bind="$work/srv:/srv" --bind="$work/home:/home" \
  --bind="$work/backups:/var/backups" --bind=/dev/fuse --property="DeviceAllow=/dev/fuse rwm" \
  -b > "$work/boot.log" 2>&1 || true
if [ ! -f "$work/out/result" ]; then
  echo "the container did not run the checks; its console:" >&2
  tail -30 "$work/boot.log" >&2
  exit 1
fi
cat "$work/out/result"
if ! grep -q '^done 0$' "$work/out/result"; then
  echo "--- sharekeepd's journal in the container:"; cat "$work/out/sharekeepd.log" 2>/dev/null || true
  [ -f "$work/out/log" ] && { echo "--- check log:"; tail -30 "$work/out/log"; }
  exit 1
fi
