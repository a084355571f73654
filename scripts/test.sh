#!/usr/bin/env bash
# The whole test suite in one command: what CI runs (.ci/run), and what to run
# before pushing.
#
#   scripts/test.sh              everything (install, lint, Rust tests, CDK tests)
#   scripts/test.sh --rust-only  skip infra/ (no Node.js needed)
#
# On a fresh Debian 12 machine (with rustup) it:
#   1. installs what is missing (scripts/install-deps.sh), and checks that
#      Node.js 20 or later with npm is there for infra/ (it never installs it),
#   2. checks formatting and lints: cargo fmt --check, cargo clippy -D warnings,
#   3. starts the real local services (Prometheus scraping the exporter
#      simulator, moto_server, the webhook receiver) in a directory of its own,
#      runs cargo test --workspace against them, and stops them by PID,
#   4. runs the CDK app's tests: npm ci, npm test, npm run synth:check.
# Every step runs even when an earlier check failed, so one run shows every
# problem; the exit status is non-zero if any step failed.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }

rust_only=0
for arg in "$@"; do
    case "$arg" in
        --rust-only) rust_only=1 ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            echo "test.sh: unknown argument: $arg" >&2
            usage >&2
            exit 2
            ;;
    esac
done

say() { printf '\n==> %s\n' "$*"; }

# --- bookkeeping: every step's outcome and duration ------------------------------

results=()
failed=0
# step NAME COMMAND...: run one step, record how it went, never stop the script.
step() {
    local name="$1" started=$SECONDS status=0
    shift
    say "$name"
    "$@" || status=$?
    local took=$((SECONDS - started))
    if ((status == 0)); then
        results+=("ok      $(printf '%4ds' "$took")  $name")
    else
        results+=("FAILED  $(printf '%4ds' "$took")  $name (exit $status)")
        failed=1
    fi
}

report() {
    printf '\n==> summary (%ds in all)\n' "$SECONDS"
    printf '  %s\n' "${results[@]}"
}

# --- clean-up: the local stack this run started, by the PIDs it recorded ---------

stack_dir=""
# shellcheck disable=SC2317 # run by the traps below
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -n "$stack_dir" ]]; then
        KLS_STACK_DIR="$stack_dir" scripts/local-stack.sh stop >/dev/null || true
        rm -rf "$stack_dir"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. tools --------------------------------------------------------------------

has_infra=0
if ((!rust_only)) && [[ -f infra/package.json ]]; then
    has_infra=1
fi

# infra/ is a Node.js project; install-deps.sh covers the Rust side only.
# Node.js is checked, not installed: Debian 12's own nodejs is 18, and
# infra/package.json needs 20 or later. The check comes first, so a missing or
# old Node.js stops the run before anything slow.
check_node() {
    local found="no node" major=0
    if command -v node >/dev/null; then
        found="node $(node --version)"
        major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null)" || major=0
        [[ "$major" =~ ^[0-9]+$ ]] || major=0
    fi
    if ((major >= 20)) && command -v npm >/dev/null; then
        echo "$found, npm $(npm --version)"
        return 0
    fi
    command -v npm >/dev/null || found="$found, no npm"
    echo "test.sh: infra/ needs Node.js 20 or later with npm; install it, or run" \
        "scripts/test.sh --rust-only (found: $found)" >&2
    exit 1
}
if ((has_infra)); then
    check_node
fi

say "install what is missing"
scripts/install-deps.sh

# --- 2. formatting and lints -----------------------------------------------------

step "cargo fmt --all -- --check" cargo fmt --all -- --check
step "cargo clippy --workspace --all-targets -- -D warnings" \
    cargo clippy --workspace --all-targets -- -D warnings

# --- 3. Rust tests against the real local services -------------------------------

mkdir -p target
stack_dir="$(mktemp -d "$repo_root/target/test-stack.XXXXXX")"
say "start the local services in $stack_dir"
KLS_STACK_DIR="$stack_dir" scripts/local-stack.sh start
# shellcheck source=/dev/null
source "$stack_dir/env"

step "cargo test --workspace" cargo test --workspace

KLS_STACK_DIR="$stack_dir" scripts/local-stack.sh stop
rm -rf "$stack_dir"
stack_dir=""

# --- 4. the CDK app ----------------------------------------------------------------

# Each npm script that infra/package.json defines among these, in this order.
infra_scripts() {
    node -e '
        const scripts = require("./infra/package.json").scripts || {};
        for (const name of ["test", "synth:check"]) if (scripts[name]) console.log(name);'
}

# shellcheck disable=SC2317 # run through step
in_infra() { (cd infra && "$@"); }

if ((has_infra)); then
    step "infra: npm ci" in_infra npm ci --no-audit --no-fund
    for script in $(infra_scripts); do
        step "infra: npm run $script" in_infra npm run "$script"
    done
elif ((!rust_only)); then
    results+=("skipped        infra (no infra/package.json)")
fi

report
exit "$failed"
