#!/usr/bin/env bash
# The main job in one command: the scaler raising and returning a group.
#
#   scripts/demo.sh           run it
#   scripts/demo.sh --help    print this text
#
# On a fresh Debian 12 machine (with rustup) this installs what is missing,
# starts a real Prometheus scraping the kafka_exporter simulator, moto_server
# holding a group (MinSize 0, MaxSize 10, DesiredCapacity 0) and a webhook
# receiver, builds the function and runs it through the real Lambda runtime
# path (`cargo lambda watch` + `cargo lambda invoke` with an EventBridge
# scheduled-event fixture).
# Three ticks: lag above HIGH, between the thresholds, below LOW. The group
# goes 0 -> 4 -> 4 -> 0, with one chat message per change.
#
# The first run compiles the function and the AWS SDK: about 7 minutes on a
# 2-core machine, most of it compiling; later runs are much faster.
# Every process it starts is stopped by its own PID on exit, also on Ctrl-C.
# Logs: target/demo/ (build.log is the build; the function's own log lines are
# in watch.log).
set -euo pipefail

# The comment block above, without its leading "# ".
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

for arg in "$@"; do
    case "$arg" in
        -h | --help)
            usage
            exit 0
            ;;
        *)
            echo "demo.sh: unknown argument: $arg" >&2
            usage >&2
            exit 2
            ;;
    esac
done

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

demo_dir="$repo_root/target/demo"
# A stack of its own, so the demo never reuses or stops a stack that the
# tests or a developer started in target/local-stack.
export KLS_STACK_DIR="$demo_dir/stack"
watch_log="$demo_dir/watch.log"
group=kafka-lag-scaler-demo
query='sum by (consumergroup, topic) (kafka_consumergroup_lag{topic=~"orders.*"} >= 0 or kafka_consumergroup_lag{topic=~"orders.*"} * NaN)'
event="$repo_root/tests/fixtures/eventbridge-scheduled.json"

say() { printf '%s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

# --- clean-up: only what this script started, by PID -------------------------

stack_started=0
watch_pid=""

# PIDs of every descendant of $1, found by parent PID (not by name).
descendants() {
    local child
    for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        echo "$child"
        descendants "$child"
    done
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -n "$watch_pid" ]] && kill -0 "$watch_pid" 2>/dev/null; then
        # `cargo lambda watch` leads its own process group (setsid below), but
        # it starts each function instance in a session of its own, so note
        # its descendants before stopping the group, and stop those too.
        local pids pid
        pids="$(descendants "$watch_pid")"
        kill -TERM -- "-$watch_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$watch_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$watch_pid" 2>/dev/null || true
        for pid in $pids; do
            kill -TERM "$pid" 2>/dev/null || true
        done
    fi
    if ((stack_started)); then
        scripts/local-stack.sh stop >/dev/null || true
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. tools ------------------------------------------------------------------

scripts/install-deps.sh

# --- 2. services ---------------------------------------------------------------

mkdir -p "$demo_dir"
stack_started=1
scripts/local-stack.sh start
# shellcheck source=/dev/null
source "$KLS_STACK_DIR/env"

python3 tests/support/moto_group.py create "$group" --min 0 --max 10 --desired 0 >/dev/null

# --- 3. the function, behind the local Lambda runtime API ----------------------

build_log="$demo_dir/build.log"
say "building kafka-lag-scaler: the first build takes several minutes (log: $build_log)"
# Build first so that compile errors show here, and so `cargo lambda watch`
# (which runs `cargo run` with the same profile) starts at once. The log gets
# cargo's progress; the terminal stays quiet.
if ! cargo build -p kafka-lag-scaler --bin kafka-lag-scaler >"$build_log" 2>&1; then
    tail -n 40 "$build_log" >&2
    die "cargo build failed (log: $build_log)"
fi

# The query holds commas, which `--env-var` would split on, so the function's
# environment goes through an env file; single quotes keep the value verbatim.
env_file="$demo_dir/function.env"
cat >"$env_file" <<EOF
PROMETHEUS_ENDPOINT='$KLS_PROMETHEUS_URL'
PROMETHEUS_QUERY='$query'
ASG_NAME='$group'
WEBHOOK_URL='$KLS_RECEIVER_URL/demo-hook'
HIGH_LAG_THRESHOLD='10000000'
LOW_LAG_THRESHOLD='100000'
SCALE_OUT_CAPACITY='4'
SCALE_IN_CAPACITY='0'
AWS_ENDPOINT_URL='$KLS_MOTO_URL'
AWS_REGION='us-east-1'
AWS_ACCESS_KEY_ID='testing'
AWS_SECRET_ACCESS_KEY='testing'
AWS_EC2_METADATA_DISABLED='true'
AWS_LAMBDA_LOG_LEVEL='info'
EOF

invoke_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# --ignore-changes: edits elsewhere in the tree must not reload it mid-demo.
setsid cargo lambda watch --ignore-changes --quiet \
    --invoke-address 127.0.0.1 --invoke-port "$invoke_port" \
    --env-file "$env_file" \
    >"$watch_log" 2>&1 </dev/null &
watch_pid=$!

# Ready when its port accepts connections. Not an HTTP probe: any request to
# `/` is itself an invocation of the function.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
deadline=$((SECONDS + 120))
until port_open "$invoke_port"; do
    if ! kill -0 "$watch_pid" 2>/dev/null; then
        tail -n 30 "$watch_log" >&2
        die "cargo lambda watch exited (log: $watch_log)"
    fi
    ((SECONDS < deadline)) || die "cargo lambda watch not ready after 120s (log: $watch_log)"
    sleep 0.3
done

# --- 4. the scenario -------------------------------------------------------------

# Set one consumer group's lag on topic orders.created, spread over three
# partitions. A topic outside the query's regex carries a huge lag that the
# function must ignore.
set_lag() {
    local total="$1" part p
    part=$((total / 3))
    for p in 0 1 2; do
        # The last partition takes the remainder, so the sum is exact.
        local value=$part
        ((p == 2)) && value=$((total - 2 * part))
        curl -fsS -X PUT "$KLS_EXPORTER_URL/lag" -o /dev/null \
            -d "{\"consumergroup\":\"orders-consumer\",\"topic\":\"orders.created\",\"partition\":$p,\"value\":$value}"
    done
    curl -fsS -X PUT "$KLS_EXPORTER_URL/lag" -o /dev/null \
        -d '{"consumergroup":"payments-consumer","topic":"payments","partition":0,"value":50000000}'
}

# Wait until Prometheus has scraped the new values and the function's own
# query returns the expected lag, so each tick sees the state set for it.
wait_for_lag() {
    local expected="$1" deadline=$((SECONDS + 30)) seen
    while :; do
        seen="$(curl -fsS "$KLS_PROMETHEUS_URL/api/v1/query" --data-urlencode "query=$query" \
            | python3 -c 'import json, sys
result = json.load(sys.stdin)["data"]["result"]
print(",".join(sorted(s["value"][1] for s in result)))')" || seen="?"
        [[ "$seen" == "$expected" ]] && return 0
        ((SECONDS < deadline)) || die "Prometheus still returns [$seen], wanted [$expected]"
        sleep 0.3
    done
}

capacity() {
    python3 tests/support/moto_group.py show "$group" \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["DesiredCapacity"])'
}

capacities=("$(capacity)")
tick=0
for lag in 12000000 5000000 40000; do
    tick=$((tick + 1))
    set_lag "$lag"
    wait_for_lag "$lag"

    if ! summary="$(timeout 180 cargo lambda invoke kafka-lag-scaler \
        --invoke-address 127.0.0.1 --invoke-port "$invoke_port" \
        --data-file "$event" --output-format json 2>"$demo_dir/invoke.err")"; then
        cat "$demo_dir/invoke.err" >&2
        tail -n 20 "$watch_log" >&2
        die "tick $tick: invoke failed (function log: $watch_log)"
    fi
    printf '%s\n' "$summary" >"$demo_dir/tick-$tick.json"
    python3 - "$tick" "$summary" <<'PY'
import json, sys
tick, s = sys.argv[1], json.loads(sys.argv[2])
dry = "  (dry run)" if s.get("dry_run") else ""
print(f"tick {tick}  lag {s['lag']}  capacity {s['capacity_before']} -> {s['capacity_after']}"
      f"  action {s['action']}{dry}")
print(f"        reason: {s['reason']}")
PY
    capacities+=("$(capacity)")
done

# --- 5. what the outside world saw ---------------------------------------------------

say ""
say "messages received by the webhook:"
curl -fsS "$KLS_RECEIVER_URL/messages?path=/demo-hook" | python3 -c 'import json, sys
messages = json.load(sys.stdin)
for n, m in enumerate(messages, 1):
    body = m["body"]
    text = body.get("text", m["raw"]) if isinstance(body, dict) else m["raw"]
    print(f"  {n}. " + text.replace("\n", "\n     "))
if not messages:
    print("  (none)")'

path="$(IFS=' '; printf '%s' "${capacities[*]}" | sed 's/ / -> /g')"
say ""
say "group $group DesiredCapacity read back from moto: $path"
[[ "$path" == "0 -> 4 -> 4 -> 0" ]] || die "expected 0 -> 4 -> 4 -> 0"
say "demo ok"
