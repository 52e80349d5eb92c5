#!/usr/bin/env bash
# The Windows side of sharekeep, from Linux: the crates that build for Windows today are
# cross-built for x86_64-pc-windows-gnu, linted, and their tests run under Wine.
#   bash scripts/windows-test.sh --setup   (as root, once: mingw-w64, Wine, the Rust target)
#   bash scripts/windows-test.sh
# Under Wine: the policy -> NTFS translation, SDDL as Windows' own parser reads it, the walk by
# handle (a planted link skipped), planning and applying through handles with real accounts;
# the engine's unit tests (the local backend's conformance suite, packs, index, encryption,
# locks, retention, a backup recording each entry's security descriptor and attributes, a
# restore by handle: into a new folder, in place, a planted link never followed, a drill);
# sharekeepctl.exe run on a local repository (init, backup, snapshots, ls, restore, check) and
# its `share check | export | remove` on a policy's SMB share.
# sharekeepd.exe reached through its named pipe (protocol, status, its watcher re-applying
# rights to a new file, a backup, an in-place restore; with samba_manage, the SMB share).
# What Wine cannot show is listed in the README ("Windows").
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=x86_64-pc-windows-gnu
# What builds for Windows: the whole workspace (the policies crate, the engine with sharekeepd,
# its default `service` feature leaving FUSE and SFTP out there, sharekeepctl, the test crate's
# dataset generator and helpers; its Linux end-to-end scenarios build on Unix only).
CRATES=(--workspace)
export WINEDEBUG=-all
PREFIX=${WINEPREFIX:-$HOME/.wine}

if [[ ${1:-} == --setup ]]; then
    if ! command -v x86_64-w64-mingw32-gcc >/dev/null || ! command -v wine >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            gcc-mingw-w64-x86-64 wine wine64 >/dev/null
    fi
    rustup target list --installed | grep -qx $TARGET || rustup target add $TARGET
    [[ -d $PREFIX/drive_c/windows/system32 ]] || wineboot -i >/dev/null 2>&1 || true
    dll=$PREFIX/drive_c/windows/system32/bcryptprimitives.dll
    if [[ ! -f $dll ]]; then
        tmp=$(mktemp -d)
        x86_64-w64-mingw32-gcc -shared -o "$tmp/bcryptprimitives.dll" \
            scripts/windows/ProcessPrng.c scripts/windows/bcryptprimitives.def -ladvapi32
        cp "$tmp/bcryptprimitives.dll" "$dll"
        rm -rf "$tmp"
    fi
    exit 0
fi

for tool in wine x86_64-w64-mingw32-gcc; do
    command -v $tool >/dev/null || { echo "$tool is missing: run bash scripts/windows-test.sh --setup (as root)" >&2; exit 2; }
done
rustup target list --installed | grep -qx $TARGET ||
    { echo "the Rust target $TARGET is missing: run bash scripts/windows-test.sh --setup" >&2; exit 2; }

cargo clippy --target $TARGET "${CRATES[@]}" --all-targets -q -- -D warnings
CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine cargo test --target $TARGET "${CRATES[@]}"
