#!/usr/bin/env bash
# Install everything the demo and the tests need on a fresh Debian 12 machine.
#
# Idempotent: each step checks first and does nothing when its tool is already
# there, so the demo and the test command can call it on every run.
#
#   scripts/install-deps.sh          install what is missing
#   KLS_VERBOSE=1 scripts/install-deps.sh   show the installers' output
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
requirements="$repo_root/scripts/requirements.txt"
log="$(mktemp -t kls-install-deps.XXXXXX)"
trap 'rm -f "$log"' EXIT

say() { printf 'install-deps: %s\n' "$*"; }

# Run a command quietly; on failure show its output and stop.
quiet() {
    if [[ "${KLS_VERBOSE:-0}" == 1 ]]; then
        "$@"
        return
    fi
    if ! "$@" >"$log" 2>&1; then
        say "failed: $*" >&2
        tail -n 40 "$log" >&2
        exit 1
    fi
}

as_root() {
    if [[ "$(id -u)" == 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        say "need root to run: $* (run as root or install sudo)" >&2
        exit 1
    fi
}

apt_install() {
    # The Debian prometheus package would start its own server on 0.0.0.0:9090
    # from its init script. We run our own process on a free port, so forbid
    # service starts during the install with the standard policy-rc.d hook, and
    # remove the hook only if we created it.
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [[ ! -e "$policy" ]]; then
        as_root sh -c "printf '#!/bin/sh\nexit 101\n' >$policy && chmod 755 $policy"
        created_policy=1
    fi
    if [[ -z "${KLS_APT_UPDATED:-}" ]]; then
        quiet as_root apt-get update -q
        KLS_APT_UPDATED=1
    fi
    local status=0
    (quiet as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "$@") || status=$?
    if [[ "$created_policy" == 1 ]]; then
        as_root rm -f "$policy"
    fi
    return "$status"
}

# --- Debian packages -------------------------------------------------------

missing_debs=()
command -v prometheus >/dev/null || missing_debs+=(prometheus)
command -v curl >/dev/null || missing_debs+=(curl)
# taskset, with which scripts/bench.sh pins the servers.
command -v taskset >/dev/null || missing_debs+=(util-linux)
command -v python3 >/dev/null || missing_debs+=(python3)
if command -v python3 >/dev/null && ! python3 -m pip --version >/dev/null 2>&1; then
    missing_debs+=(python3-pip)
fi
if ((${#missing_debs[@]})); then
    say "apt-get install ${missing_debs[*]}"
    apt_install "${missing_debs[@]}"
fi

# --- Python tools ------------------------------------------------------------

# True when every pinned requirement is installed at its pinned version and
# the console scripts are on PATH; then pip (and the index) is not touched.
python_tools_present() {
    command -v moto_server >/dev/null && command -v cargo-lambda >/dev/null \
        && command -v cfn-lint >/dev/null || return 1
    python3 - "$requirements" <<'PY'
import re, sys
from importlib.metadata import version, PackageNotFoundError
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if not line:
        continue
    name, want = re.match(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)", line).groups()
    try:
        if version(name) != want:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
}

if ! python_tools_present; then
    say "pip install -r scripts/requirements.txt (a few minutes on a fresh machine)"
    pip_args=(install --quiet --disable-pip-version-check -r "$requirements")
    # Debian's own python3 is "externally managed" (PEP 668). This machine is
    # a throwaway build host, so install into it rather than a venv that every
    # script would then have to activate.
    if python3 -c 'import sys,sysconfig,os; sys.exit(not os.path.exists(
            os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'; then
        pip_args+=(--break-system-packages)
    fi
    quiet python3 -m pip "${pip_args[@]}"
    # pyenv only sees new console scripts after a rehash.
    if command -v pyenv >/dev/null; then
        pyenv rehash
    fi
    hash -r
    if ! python_tools_present; then
        say "pip finished but moto_server, cargo-lambda or cfn-lint is not on PATH" >&2
        say "python3 scripts dir: $(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')" >&2
        exit 1
    fi
fi

# --- Rust toolchain ----------------------------------------------------------

if ! command -v rustup >/dev/null; then
    say "rustup not found: install Rust with rustup (https://rustup.rs) first" >&2
    exit 1
fi
installed_components="$(rustup component list --installed)"
for component in rustfmt clippy; do
    if ! grep -q "^$component" <<<"$installed_components"; then
        say "rustup component add $component"
        quiet rustup component add "$component"
    fi
done
# arm64 is the default Lambda architecture of the CDK stack.
if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    say "rustup target add aarch64-unknown-linux-gnu"
    quiet rustup target add aarch64-unknown-linux-gnu
fi

say "ok (prometheus $(prometheus --version 2>&1 | awk 'NR==1 {print $3}'), $(cargo lambda --version))"
