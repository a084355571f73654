#!/usr/bin/env bash
# The whole function, as deployed, against the real local services.
#
#   scripts/bench.sh [--skip-zip] [--skip-warm-up-comparison] [--no-pin]
#
# Builds the release binary, starts a local stack of its own (real Prometheus
# scraping the exporter simulator, moto_server, the webhook receiver), puts the
# scaler in a steady hold state (lag between the thresholds, group at 0), pins
# moto to one CPU and Prometheus with the exporter to another (unless --no-pin,
# or on one CPU). In production each has a machine of its own; here, free to
# share two CPUs, they take CPU from each other whenever both are asked at
# once, which only a run's two reads meet, never the floor's lone reads that
# the budget compares a run with. The function, the emulator and the floor
# probe run on any CPU, the servers' included. Then:
#   1. the floor: one raw Prometheus query, one raw DescribeAutoScalingGroups
#      and both at once, from warmed clients (examples/read_floor.rs), one such
#      round before each of the function's warm invocations, each read after
#      the same 50 ms pause as each invocation;
#   2. the function on its real runtime path: scripts/bench_runtime.py serves
#      the Lambda Runtime API, starts the binary and times init, the first
#      invocation and 60 warm ones; then 10 more cold starts for init and the
#      first invocation;
#   3. the arm64 deployment zip (`cargo lambda build --release --arm64`),
#      unless --skip-zip.
# Step 2 runs a second build too, without the init-time warm-up (the cargo
# feature bench-no-warm-up), and reports its figures beside ours: what warming
# the connections during init saves the first invocation. The first run of the
# script makes three release (LTO) builds, this one, the second in its own
# target directory and the arm64 zip: about 10 minutes and 2 GB of disk on
# 2 vCPUs; later runs take under a minute.
#
# It prints a report, writes it to target/bench/report.txt and exits non-zero
# when a budget is missed. Budgets: init < 30 ms; warm median within 1.2x the
# slower of the two reads; peak RSS < 30 MiB; arm64 zip < 5 MiB.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

bench_dir="$repo_root/target/bench"
export KLS_STACK_DIR="${KLS_STACK_DIR:-$bench_dir/stack}"
group=kafka-lag-scaler-bench
query='sum(kafka_consumergroup_lag{topic=~"orders.*"}) by (consumergroup, topic)'
event="$repo_root/tests/fixtures/eventbridge-scheduled.json"
invocations=61
cold_starts=11

skip_zip=0
compare=1
pin=1
while (($#)); do
    case "$1" in
        --skip-zip) skip_zip=1 ;;
        --skip-warm-up-comparison) compare=0 ;;
        --no-pin) pin=0 ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "usage: $0 [--skip-zip] [--skip-warm-up-comparison] [--no-pin]" >&2
            exit 2
            ;;
    esac
    shift
done

say() { printf '%s\n' "$*"; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

stack_started=0
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    ((stack_started)) && scripts/local-stack.sh stop >/dev/null 2>&1
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$bench_dir"
rm -f "$bench_dir"/*.json "$bench_dir/function.log"

# --- 1. builds ------------------------------------------------------------------

say "building the release binary and the floor probe"
cargo build --quiet --release -p kafka-lag-scaler --bin kafka-lag-scaler --example read_floor
binary="$repo_root/target/release/kafka-lag-scaler"
floor="$repo_root/target/release/examples/read_floor"
if ((compare)); then
    say "building the release binary without the init-time warm-up"
    cargo build --quiet --release -p kafka-lag-scaler --bin kafka-lag-scaler \
        --features bench-no-warm-up --target-dir "$bench_dir/no-warm-up"
    cold_binary="$bench_dir/no-warm-up/release/kafka-lag-scaler"
fi

# --- 2. services in a steady hold state ----------------------------------------

stack_started=1
scripts/local-stack.sh start >/dev/null
# shellcheck source=/dev/null
source "$KLS_STACK_DIR/env"
python3 tests/support/moto_group.py create "$group" --min 0 --max 10 --desired 0 >/dev/null

# Lag 5,000,000 over three partitions: between the thresholds with the group at
# 0, which holds (no write, no message), run after run.
for p in 0 1 2; do
    curl -fsS -X PUT "$KLS_EXPORTER_URL/lag" -o /dev/null -d "{\"consumergroup\":\"orders-consumer\",\
\"topic\":\"orders.created\",\"partition\":$p,\"value\":$((p == 2 ? 1666668 : 1666666))}"
done
deadline=$((SECONDS + 30))
until curl -fsS "$KLS_PROMETHEUS_URL/api/v1/query" --data-urlencode "query=$query" \
    | grep -q '"5000000"'; do
    ((SECONDS < deadline)) || die "Prometheus never showed the lag that was set"
    sleep 0.3
done

# The CPUs this script may use, in order; moto gets the last, Prometheus and the
# exporter it scrapes the one before. taskset -a pins every thread, and threads
# started later inherit it.
pinning="not pinned"
mapfile -t cpus < <(python3 -c 'import os; print(*sorted(os.sched_getaffinity(0)), sep="\n")')
if ((pin && ${#cpus[@]} >= 2)); then
    command -v taskset >/dev/null \
        || die "taskset (util-linux) pins the servers: run scripts/install-deps.sh, or pass --no-pin"
    server_pid() { awk -v n="$1" '$1 == n {print $2}' "$KLS_STACK_DIR/pids"; }
    moto_cpu="${cpus[-1]}" prometheus_cpu="${cpus[-2]}"
    taskset -apc "$moto_cpu" "$(server_pid moto)" >/dev/null
    taskset -apc "$prometheus_cpu" "$(server_pid prometheus)" >/dev/null
    taskset -apc "$prometheus_cpu" "$(server_pid exporter)" >/dev/null
    pinning="moto on CPU $moto_cpu, Prometheus and the exporter on CPU $prometheus_cpu"
fi

export PROMETHEUS_ENDPOINT="$KLS_PROMETHEUS_URL" PROMETHEUS_QUERY="$query" ASG_NAME="$group"
export WEBHOOK_URL="$KLS_RECEIVER_URL/bench-hook"
export AWS_ENDPOINT_URL="$KLS_MOTO_URL" AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_LAMBDA_LOG_LEVEL=info

# --- 3. measurements ---------------------------------------------------------------

run_function() {
    python3 scripts/bench_runtime.py --binary "$1" --event "$event" \
        --invocations "$invocations" --cold-starts "$cold_starts" \
        --log "$bench_dir/function.log" --out "$2" "${@:3}" >/dev/null
}
say "function: $cold_starts cold starts, $invocations invocations on the first," \
    "a floor round before each warm one"
run_function "$binary" "$bench_dir/function.json" --floor "$floor"
if ((compare)); then
    say "function without the init-time warm-up: the same runs"
    run_function "$cold_binary" "$bench_dir/compare.json" --floor "$floor"
fi

zip_bytes=""
if ((!skip_zip)); then
    say "building the arm64 deployment zip"
    cargo lambda build --quiet --release --arm64 --output-format zip \
        -p kafka-lag-scaler --bin kafka-lag-scaler >"$bench_dir/zip-build.log" 2>&1 \
        || { tail -n 30 "$bench_dir/zip-build.log" >&2; die "cargo lambda build failed"; }
    zip_bytes="$(stat -c %s target/lambda/kafka-lag-scaler/bootstrap.zip)"
fi

# --- 4. report -------------------------------------------------------------------

python3 - "$bench_dir" "$zip_bytes" "$(git rev-parse --short HEAD)" "$pinning" <<'PY' \
    | tee "$bench_dir/report.txt"
import json, os, platform, sys
from pathlib import Path

bench, zip_bytes, commit, pinning = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
fn = json.loads((bench / "function.json").read_text())
floor = fn["floor_ms"]
compare = bench / "compare.json"
compare = json.loads(compare.read_text()) if compare.exists() else None

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem_kib = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
load = os.getloadavg()
print(f"kafka-lag-scaler whole-function benchmark, commit {commit}")
print(f"machine: {os.cpu_count()} CPUs, {cpu}, {mem_kib // 1024} MiB, {platform.machine()}, "
      f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (other builds share it)")
print(f"servers: {pinning}; the function, the emulator and the floor probe on any CPU")
print()
print(f"floor over {floor['rounds']} rounds, warmed clients (median / p95 ms):")
for key, name in (("prometheus", "Prometheus query"), ("describe", "DescribeAutoScalingGroups"),
                  ("both", "both, concurrently")):
    print(f"  {name:<28} {floor[key]['median']:8.3f} / {floor[key]['p95']:8.3f}")
slower = max(floor["prometheus"]["median"], floor["describe"]["median"])

def show(label, run):
    w = run["warm_invocation_ms"]
    print(f"{label}: {run['cold_starts']} cold starts, actions {run['actions']}")
    print(f"  init (spawn -> first poll)    median {run['init_ms']['median']:8.3f} ms  "
          f"all {run['init_ms']['all']}")
    print(f"  first invocation              median {run['first_invocation_ms']['median']:8.3f} ms  "
          f"all {run['first_invocation_ms']['all']}")
    print(f"  warm invocations (n={w['count']})      median {w['median']:8.3f} ms  "
          f"p95 {w['p95']:.3f}  min {w['min']:.3f}  max {w['max']:.3f}")
    print(f"  CPU per warm invocation       median {w['cpu_median']:8.3f} ms  "
          "(the process, event to next poll)")
    print(f"  emulator's own receive delay  median {w['emulator_receive_median']:8.3f} ms  "
          "(not counted: arrivals are the kernel's receive times)")
    paired = run["warm_minus_both_ms"]["median"]
    print(f"  warm run less both (paired)   median {paired:8.3f} ms  "
          "(each run less the floor's `both` read just before it)")
    print(f"  peak RSS (VmHWM)              {run['peak_rss_mib']:.2f} MiB")

print()
show("function (this build)", fn)
if compare:
    print()
    show("function without the init-time warm-up", compare)
    print(f"  first invocation after a cold start: {fn['first_invocation_ms']['median']:.3f} ms "
          f"with the warm-up, {compare['first_invocation_ms']['median']:.3f} ms without; init "
          f"{fn['init_ms']['median']:.3f} ms with, {compare['init_ms']['median']:.3f} ms without")

checks = [
    ("init < 30 ms", fn["init_ms"]["median"] < 30, f"{fn['init_ms']['median']:.3f} ms"),
    ("warm median <= 1.2 x slower read", fn["warm_invocation_ms"]["median"] <= 1.2 * slower,
     f"{fn['warm_invocation_ms']['median']:.3f} ms vs 1.2 x {slower:.3f} = {1.2 * slower:.3f} ms "
     f"(x{fn['warm_invocation_ms']['median'] / slower:.3f})"),
    ("peak RSS < 30 MiB", fn["peak_rss_mib"] < 30, f"{fn['peak_rss_mib']:.2f} MiB"),
]
if zip_bytes:
    size = int(zip_bytes)
    checks.append(("arm64 zip < 5 MiB", size < 5 * 1024 * 1024,
                   f"{size} bytes ({size / 1024 / 1024:.2f} MiB)"))
print()
print("budgets:")
for name, ok, figure in checks:
    print(f"  {'ok  ' if ok else 'MISS'} {name:<34} {figure}")
sys.exit(0 if all(ok for _, ok, _ in checks) else 1)
PY
