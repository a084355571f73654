#!/usr/bin/env bash
# Synthesizes every environment for real, with cargo-lambda compiling the function,
# then checks what came out: cfn-lint on each template, and a `bootstrap` binary
# built for the architecture the template declares. Needs no AWS credentials and no
# network once the toolchain is installed.
#
# Usage: scripts/synth-check.sh [ENV...]   (default: every environment)
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
  echo "synth-check: $*" >&2
  exit 1
}

command -v cargo >/dev/null || fail "cargo not found: install Rust with rustup"
cargo lambda --version >/dev/null 2>&1 \
  || fail "cargo-lambda not found: pip install cargo-lambda ziglang"
command -v cfn-lint >/dev/null || fail "cfn-lint not found: pip install -r requirements.txt"

if [ "$#" -gt 0 ]; then
  environments=("$@")
else
  read -r -a environments <<<"$(npx tsx scripts/list-environments.ts)"
fi

# arm64 functions are cross-compiled; rustup fetches the target's standard library once.
if command -v rustup >/dev/null \
  && ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  rustup target add aarch64-unknown-linux-gnu
fi

export CDK_DISABLE_CLI_TELEMETRY=true
rm -rf cdk.out
for env in "${environments[@]}"; do
  out="cdk.out/${env}"
  echo "== ${env}: cdk synth (cargo lambda build)"
  npx cdk synth -c "env=${env}" --output "${out}" --quiet --no-notices

  template="${out}/kafka-lag-scaler-${env}.template.json"
  [ -f "${template}" ] || fail "${env}: no template at ${template}"

  echo "== ${env}: cfn-lint ${template}"
  cfn-lint -- "${template}"

  echo "== ${env}: bundled binary"
  node scripts/check-bundle.mjs "${template}" "${out}"
done
echo "synth-check: ${#environments[@]} environment(s) synthesized, linted and bundled"
