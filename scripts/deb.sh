#!/usr/bin/env bash
# Builds the Debian package: target/debian/sharekeep_<version>_<arch>.deb
#
#   scripts/deb.sh
#
# Release build of both binaries, then what the package carries besides them, generated into
# target/release/deb-extra/: the man pages (from the command-line definitions, plus the hand-written
# sharekeep-policy(5)), the shell completions, and the systemd unit with the binaries' Debian
# paths; then cargo-deb (installed with `cargo install` when missing) assembles the package.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
command -v cargo >/dev/null || { echo "cargo is needed (https://rustup.rs)" >&2; exit 1; }
command -v dpkg-deb >/dev/null || { echo "dpkg-deb is needed (a Debian system)" >&2; exit 1; }
cargo deb --version >/dev/null 2>&1 || cargo install --locked cargo-deb

cargo build --release --workspace --bins
extra=target/release/deb-extra
rm -rf "$extra"
mkdir -p "$extra"/man/man1 "$extra"/man/man5 "$extra"/man/man8 "$extra"/completions "$extra"/unit
target/release/sharekeepctl generate-man "$extra/man/man1"
target/release/sharekeepd --generate-man "$extra/man/man8"
cp policies/sharekeep-policy.5 "$extra/man/man5/"
gzip -9n "$extra"/man/man*/*
target/release/sharekeepctl completions bash > "$extra/completions/sharekeepctl"
target/release/sharekeepctl completions zsh > "$extra/completions/_sharekeepctl"
target/release/sharekeepctl completions fish > "$extra/completions/sharekeepctl.fish"
# The unit as shipped for a hand install names /usr/local/bin; the package's binaries are in
# /usr/sbin and /usr/bin.
sed -e '/^# systemd unit for sharekeepd. Install:/,/^#   systemctl enable --now sharekeepd/c\
# systemd unit for sharekeepd, from the sharekeep package (see sharekeepd(8)).' \
    -e 's|/usr/local/bin/sharekeepd|/usr/sbin/sharekeepd|g' \
    -e 's|file:///usr/local/share/doc/sharekeep/README.md|man:sharekeepd(8) file:///usr/share/doc/sharekeep/README.md|' \
    daemon/sharekeepd.service > "$extra/unit/sharekeepd.service"
cargo deb -p sharekeep --no-build --strip
ls -1 target/debian/sharekeep_*.deb
