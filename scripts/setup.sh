#!/usr/bin/env bash
# One idempotent setup step for developers and CI: `scripts/setup.sh [full|light]`.
#
#   full  (make setup): every system package the test tiers and the lab use, the virtualenvs
#         (.venv/core219: Python 3.11 + ansible-core 2.19; .venv/newest: Python 3.12+ +
#         ansible-core 2.21 + test tools; .venv/core216 (Python 3.11) and .venv/core218
#         (Python 3.12+): the cores of stock execution environments, unit and sanity only;
#         .venv/tools: galaxy-importer, ansible-builder, ansible-runner, antsibull-docs),
#         ansible-test's sanity requirements and its offline pip bootstrap for each track, the
#         stand-in hypervisor user, the collection symlink.
#   light (make demo): only what playbooks/getting_started.yml needs: a few packages, the
#         runtime of .venv/newest, the hypervisor user, the collection symlink.
#
# Works as root on a fresh Debian 12. Each step leaves a stamp under .cache/stamps/ whose name
# carries a hash of what it installed (package list, requirement files, interpreter), so a
# second run does nothing and takes well under a second; editing a requirements file or the
# package lists below re-runs just that step.
set -euo pipefail

MODE=${1:-full}
case "$MODE" in full | light) ;; *) echo "usage: $0 [full|light]" >&2; exit 2 ;; esac

cd "$(dirname "$0")/.."
ROOT=$PWD
STAMPS=$ROOT/.cache/stamps
mkdir -p "$STAMPS"

# Several make invocations may run at once (another terminal, the lab): one setup at a time.
exec 9>"$ROOT/.cache/setup.lock"
flock 9

log() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }
hash_of() { { printf '%s\n' "$@"; } | sha256sum | cut -c1-16; }
hash_files() { cat "$@" | sha256sum | cut -c1-16; }

# pip_quiet CMD...: run a pip command; show its output without the warnings pip prints about
# this machine's extra file:// indexes, and fail with it if the command fails.
pip_quiet() {
    local out rc=0
    out=$("$@" 2>&1) || rc=$?
    printf '%s\n' "$out" | grep -v -e "^WARNING: Location 'file://" -e '^$' >&2 || true
    [ "$rc" = 0 ] || die "failed ($rc): $*"
}

# --- system packages -------------------------------------------------------------------------
# `make demo` (light): filesystems, the local Samba server the media storage uses, rsync.
APT_LIGHT=(ca-certificates git make rsync util-linux e2fsprogs xfsprogs btrfs-progs acl
    samba smbclient cifs-utils iproute2)
# Everything else the integration tier and the lab need (see shared/reference/lab-feasibility).
APT_FULL=("${APT_LIGHT[@]}" glusterfs-server glusterfs-client ocfs2-tools qemu-system-x86
    qemu-utils mmdebstrap openssh-server openssh-client socat iputils-ping nfs-kernel-server
    udev lvm2 chromium bindfs)

apt_step() {
    local -a pkgs
    if [ "$MODE" = full ]; then pkgs=("${APT_FULL[@]}"); else pkgs=("${APT_LIGHT[@]}"); fi
    local stamp_full="$STAMPS/apt-full-$(hash_of "${APT_FULL[@]}")"
    local stamp="$STAMPS/apt-$MODE-$(hash_of "${pkgs[@]}")"
    [ -e "$stamp" ] || [ -e "$stamp_full" ] && return 0

    local -a missing=()
    local p
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
            missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        [ "$(id -u)" = 0 ] || die "installing packages needs root: ${missing[*]}"
        log "apt-get install ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        # No daemon may start from a postinst (smbd on :445, glusterd, nfsd...): the tests run
        # their own, privately configured. policy-rc.d is how Debian says so; ours is removed
        # again on exit, and one already there is left alone.
        local policy=/usr/sbin/policy-rc.d
        if [ ! -e "$policy" ]; then
            printf '#!/bin/sh\nexit 101\n' >"$policy"
            chmod 755 "$policy"
            trap 'rm -f /usr/sbin/policy-rc.d' EXIT
        fi
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        if [ -n "$(trap -p EXIT)" ]; then rm -f "$policy"; trap - EXIT; fi
    fi
    touch "$stamp"
}

# --- the stand-in hypervisor user ------------------------------------------------------------
# Modules check that volumes are writable by the user QEMU runs as (libvirt-qemu on Debian,
# qemu on Red Hat), and set owners for it. Its package, libvirt-daemon-system, pulls in systemd
# units and a daemon this machine has no use for (PID 1 is not systemd and KVM cannot boot a
# Debian guest here), so create the same account it would: system group kvm, system user
# libvirt-qemu with primary group kvm, no home directory, no login shell.
qemu_user_step() {
    getent passwd libvirt-qemu >/dev/null && return 0
    getent passwd qemu >/dev/null && return 0
    [ "$(id -u)" = 0 ] || die "creating the libvirt-qemu user needs root"
    log "creating system user libvirt-qemu (group kvm), as libvirt-daemon-system would"
    getent group kvm >/dev/null || groupadd --system kvm
    useradd --system --gid kvm --no-create-home --home-dir /var/lib/libvirt \
        --shell /usr/sbin/nologin --comment "Libvirt Qemu" libvirt-qemu
}

# --- interpreters ----------------------------------------------------------------------------
PYENV_VERSIONS=${PYENV_ROOT:-$HOME/.pyenv}/versions

# find_python MINOR...: the newest pyenv build of the first minor version found, else pythonX.Y
# on PATH (resolved through any shim to the real executable).
find_python() {
    local minor cand
    for minor in "$@"; do
        cand=$(ls -d "$PYENV_VERSIONS/$minor".*/bin/python3 2>/dev/null | sort -V | tail -n1 || true)
        if [ -n "$cand" ] && [ -x "$cand" ]; then echo "$cand"; return 0; fi
    done
    for minor in "$@"; do
        if command -v "python$minor" >/dev/null 2>&1; then
            "python$minor" -c 'import sys; print(sys.executable)' 2>/dev/null && return 0
        fi
    done
    return 1
}

# --- virtualenvs -----------------------------------------------------------------------------
# venv_stamp NAME PYTHON TAG REQUIREMENT_FILE...: the stamp path for that exact install.
venv_stamp() {
    local name=$1 python=$2 tag=$3
    shift 3
    echo "$STAMPS/venv-$name-$tag-$(hash_of "$python" "$(hash_files "$@" scripts/get_pip_standin.py)")"
}

# venv_step NAME PYTHON STAMP_TAG REQUIREMENT_FILE... : create .venv/NAME and install the pins.
venv_step() {
    local name=$1 python=$2 tag=$3
    shift 3
    local venv="$ROOT/.venv/$name"
    local stamp
    stamp=$(venv_stamp "$name" "$python" "$tag" "$@")
    [ -e "$stamp" ] && [ -x "$venv/bin/python" ] && return 0

    if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.base-python" 2>/dev/null)" != "$python" ]; then
        log "creating .venv/$name with $python"
        rm -rf "$venv"
        "$python" -m venv "$venv"
        echo "$python" >"$venv/.base-python"
    fi
    log "installing $* into .venv/$name"
    local -a req=()
    local f
    for f in "$@"; do req+=(-r "$f"); done
    pip_quiet "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${req[@]}"

    if [ "$tag" = full ]; then
        sanity_step "$venv"
    fi
    "$venv/bin/python" -m pip check --disable-pip-version-check >/dev/null ||
        die "$("$venv/bin/python" -m pip check 2>&1 | head -n3 | tr '\n' ' ')(.venv/$name)"
    rm -f "$STAMPS/venv-$name-"*
    touch "$stamp"
}

# sanity_step VENV: ansible-test's own sanity requirements, and its pip bootstrap, offline.
sanity_step() {
    local venv=$1
    local at
    at=$("$venv/bin/python" -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')
    # The requirement files ansible-core ships for each sanity test. Our pins already equal
    # them; installing them again proves it (pip then changes nothing) and catches a drift
    # after an ansible-core bump (pip check below reports any conflict it causes).
    local -a req=()
    local f
    for f in "$at"/_data/requirements/sanity.*.txt; do req+=(-r "$f"); done
    pip_quiet "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${req[@]}"

    # ansible-test downloads get-pip-<version>.py from the internet to bootstrap pip in the
    # virtualenvs it creates (import test); it uses ~/.ansible/test/cache/get_pip_<v>.py when
    # present. Put our offline stand-in there (see scripts/get_pip_standin.py).
    local pip_version cache="$HOME/.ansible/test/cache"
    pip_version=$(grep -oE "pip='[0-9.]+'" "$at/_internal/python_requirements.py" | head -n1 | tr -dc '0-9.')
    [ -n "$pip_version" ] || die "cannot tell which pip ansible-test in $venv bootstraps"
    mkdir -p "$cache"
    local target="$cache/get_pip_${pip_version//./_}.py"
    if [ ! -e "$target" ] || grep -q 'Offline stand-in' "$target"; then
        cp scripts/get_pip_standin.py "$target"
    fi
}

# --- the collection on the collections path --------------------------------------------------
# ansible.cfg puts .cache/collections first on collections_path; the repository root is the
# collection, so flexvdi.storage.* resolves to the working tree itself.
collection_step() {
    local link="$ROOT/.cache/collections/ansible_collections/flexvdi/storage"
    [ -L "$link" ] && [ "$(readlink "$link")" = ../../../.. ] && return 0
    mkdir -p "$(dirname "$link")"
    rm -rf "$link"
    ln -s ../../../.. "$link"
}

apt_step
qemu_user_step
collection_step

PY_NEW=$(find_python 3.12 3.13 3.14) ||
    die "Python 3.12 or newer is required for the newest ansible-core (2.21): none found in $PYENV_VERSIONS or on PATH"
if [ "$MODE" = full ]; then
    PY_OLD=$(find_python 3.11) ||
        die "Python 3.11 is required for the ansible-core 2.19 track: none found in $PYENV_VERSIONS or on PATH"
    # ansible-core 2.18 runs on Python 3.11 to 3.13; 2.16 on 3.10 to 3.12 (3.11, as AAP 2.5's EE).
    PY_218=$(find_python 3.12 3.13 3.11) || die "Python 3.11 to 3.13 is required for the ansible-core 2.18 track"
    PY_TOOLS=$PY_NEW
    # The venvs are independent: build them side by side (2 cores; pip mostly waits on the
    # index). Each checks its own stamp first, so a second run starts nothing.
    pids=()
    venv_step core219 "$PY_OLD" full requirements-2.19.txt &
    pids+=($!)
    venv_step core216 "$PY_OLD" full requirements-2.16.txt &
    pids+=($!)
    venv_step core218 "$PY_218" full requirements-2.18.txt &
    pids+=($!)
    venv_step tools "$PY_TOOLS" tools requirements-tools.txt &
    pids+=($!)
    rc=0
    venv_step newest "$PY_NEW" full requirements.txt requirements-test.txt || rc=1
    for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
    [ "$rc" = 0 ] || exit 1
elif [ ! -e "$(venv_stamp newest "$PY_NEW" full requirements.txt requirements-test.txt)" ]; then
    # light is a subset of full: a current full install satisfies it
    venv_step newest "$PY_NEW" light requirements.txt
fi
