#!/usr/bin/env bash
# The real local services that the demo and the end-to-end tests run against.
#
#   scripts/local-stack.sh start    start everything, wait until it is ready
#   scripts/local-stack.sh status   show what runs where; exit 1 if not all run
#   scripts/local-stack.sh stop     stop exactly what `start` started
#   scripts/local-stack.sh --help   print this text
#
# `start` runs, all on 127.0.0.1 and on free ports (never fixed well-known ones,
# so it can run beside anything else on the machine):
#   - the kafka_exporter simulator (tests/support/exporter_sim.py),
#   - a real Prometheus scraping it every second, with its own config and TSDB,
#   - moto_server standing in for the Auto Scaling API,
#   - the webhook receiver (tests/support/webhook_receiver.py).
# Run it again while the stack is up and it only says so. `stop` removes the
# pids and env files and Prometheus's data; the logs stay.
#
# It writes, under $KLS_STACK_DIR (default target/local-stack; give each stack
# a directory of its own to run several at once):
#   pids   one "name pid" line per service; `stop` kills these and nothing else
#   env    shell exports; `source` it to reach the stack:
#            KLS_PROMETHEUS_URL  Prometheus, e.g. http://127.0.0.1:PORT
#            KLS_EXPORTER_URL    the simulator: PUT /lag sets a series
#            KLS_MOTO_URL        moto_server, the AWS endpoint
#            KLS_RECEIVER_URL    the webhook receiver: GET /messages
#            KLS_STACK_DIR       this directory
#   logs/  one log per service
# KLS_READY_TIMEOUT (default 60) is how many seconds each service may take to
# become ready.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
stack_dir="${KLS_STACK_DIR:-$repo_root/target/local-stack}"
pids_file="$stack_dir/pids"
env_file="$stack_dir/env"
logs="$stack_dir/logs"
ready_timeout="${KLS_READY_TIMEOUT:-60}"

say() { printf 'local-stack: %s\n' "$*"; }
# The comment block above, without its leading "# ".
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { say "$*" >&2; exit 1; }

# A word each service's command line contains, so `stop` never kills a process
# that merely reused a recorded PID.
declare -A marker=(
    [exporter]=exporter_sim.py
    [prometheus]=prometheus
    [moto]=moto_server
    [receiver]=webhook_receiver.py
)

# Ask the kernel for a free port. Another process could take it before the
# service binds it; the service then fails to start and says so in its log.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

is_ours() {
    local name="$1" pid="$2"
    [[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "${marker[$name]}"
}

http_ok() { curl -fsS --max-time 2 -o /dev/null "$1" 2>/dev/null; }

# Start a service in its own session (hence its own process group), so `stop`
# can signal the whole group, and the caller's Ctrl-C does not reach it first.
launch() {
    local name="$1"
    shift
    setsid "$@" >"$logs/$name.log" 2>&1 </dev/null &
    local pid=$!
    echo "$name $pid" >>"$pids_file"
}

pid_of() { awk -v n="$1" '$1 == n {print $2}' "$pids_file"; }

show_failure() {
    local name="$1"
    say "$name failed to start; last lines of $logs/$name.log:" >&2
    tail -n 25 "$logs/$name.log" >&2 || true
}

# wait_for NAME CHECK...: poll CHECK until it succeeds, the service dies, or
# the timeout passes.
wait_for() {
    local name="$1"
    shift
    local pid deadline=$((SECONDS + ready_timeout))
    pid="$(pid_of "$name")"
    until "$@"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            show_failure "$name"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            say "$name not ready after ${ready_timeout}s" >&2
            show_failure "$name"
            return 1
        fi
        sleep 0.2
    done
}

wait_for_port_file() {
    local file="$1"
    [[ -s "$file" ]]
}

prometheus_target_up() {
    local url="$1"
    http_ok "$url/-/ready" || return 1
    # The simulator counts as ready once Prometheus has scraped it successfully.
    curl -fsS --max-time 2 "$url/api/v1/query" --data-urlencode 'query=up{job="kafka-exporter"}' \
        | grep -q '"value":\[[0-9.]*,"1"\]'
}

stop_stack() {
    [[ -f "$pids_file" ]] || return 0
    local name pid pids=()
    while read -r name pid; do
        [[ -n "$pid" ]] || continue
        if is_ours "$name" "$pid"; then
            # Each service leads its own process group (see launch).
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
    done <"$pids_file"

    # Give them a few seconds to exit cleanly (Prometheus closes its TSDB).
    local deadline=$((SECONDS + 10))
    for pid in "${pids[@]}"; do
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    rm -f "$pids_file" "$env_file" "$stack_dir"/*.port
    rm -rf "$stack_dir/prometheus-data"
}

running() {
    [[ -f "$pids_file" ]] || return 1
    local name pid
    while read -r name pid; do
        is_ours "$name" "$pid" || return 1
    done <"$pids_file"
}

start_stack() {
    if running && [[ -f "$env_file" ]]; then
        say "already running ($env_file)"
        return 0
    fi
    # Leftovers of a stack that half-died: clear them first.
    stop_stack

    for tool in prometheus moto_server python3 curl setsid; do
        command -v "$tool" >/dev/null || die "$tool not found: run scripts/install-deps.sh"
    done
    mkdir -p "$logs"
    rm -rf "$stack_dir/prometheus-data" "$stack_dir"/*.port
    : >"$pids_file"

    # On any failure or interruption below, stop what did start.
    started=0
    trap '((started)) || stop_stack' EXIT
    trap 'exit 130' INT TERM

    # The two stdlib servers pick their own port and write it down.
    launch exporter python3 -u "$repo_root/tests/support/exporter_sim.py" 0 \
        --port-file "$stack_dir/exporter.port"
    wait_for exporter wait_for_port_file "$stack_dir/exporter.port"
    local exporter_url
    exporter_url="http://127.0.0.1:$(<"$stack_dir/exporter.port")"
    wait_for exporter http_ok "$exporter_url/metrics"

    launch receiver python3 -u "$repo_root/tests/support/webhook_receiver.py" 0 \
        --port-file "$stack_dir/receiver.port"
    wait_for receiver wait_for_port_file "$stack_dir/receiver.port"
    local receiver_url
    receiver_url="http://127.0.0.1:$(<"$stack_dir/receiver.port")"
    wait_for receiver http_ok "$receiver_url/messages"

    local moto_port moto_url
    moto_port="$(free_port)"
    moto_url="http://127.0.0.1:$moto_port"
    launch moto moto_server -H 127.0.0.1 -p "$moto_port"

    # A one-second scrape interval keeps "set a value, see it in a query" short.
    local prom_port prom_url
    prom_port="$(free_port)"
    prom_url="http://127.0.0.1:$prom_port"
    cat >"$stack_dir/prometheus.yml" <<EOF
# Written by scripts/local-stack.sh; rewritten on every start.
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: kafka-exporter
    static_configs:
      - targets: ["127.0.0.1:${exporter_url##*:}"]
EOF
    launch prometheus prometheus \
        --config.file="$stack_dir/prometheus.yml" \
        --storage.tsdb.path="$stack_dir/prometheus-data" \
        --storage.tsdb.retention.time=2h \
        --web.listen-address="127.0.0.1:$prom_port" \
        --log.level=warn

    # moto and Prometheus start in parallel; moto's imports take a few seconds.
    wait_for moto http_ok "$moto_url/moto-api/"
    wait_for prometheus prometheus_target_up "$prom_url"

    cat >"$env_file.tmp" <<EOF
# Written by scripts/local-stack.sh start; removed by stop.
export KLS_PROMETHEUS_URL=$prom_url
export KLS_EXPORTER_URL=$exporter_url
export KLS_MOTO_URL=$moto_url
export KLS_RECEIVER_URL=$receiver_url
export KLS_STACK_DIR=$stack_dir
EOF
    mv "$env_file.tmp" "$env_file"
    # shellcheck disable=SC2034 # read by the EXIT trap above
    started=1
    say "ready: prometheus $prom_url, exporter $exporter_url, moto $moto_url, receiver $receiver_url"
    say "env: source $env_file"
}

status_stack() {
    if [[ ! -f "$pids_file" ]]; then
        say "not running"
        return 1
    fi
    local name pid state all_up=0
    while read -r name pid; do
        if is_ours "$name" "$pid"; then state=running; else state=stopped; all_up=1; fi
        printf '%-11s pid %-8s %s\n' "$name" "$pid" "$state"
    done <"$pids_file"
    [[ -f "$env_file" ]] && grep '^export' "$env_file"
    return "$all_up"
}

case "$#:${1:-}" in
    1:start) start_stack ;;
    1:stop) stop_stack && say "stopped" ;;
    1:status) status_stack ;;
    1:-h | 1:--help) usage ;;
    *)
        echo "local-stack.sh: expected one of start, stop, status, --help; got: ${*:-nothing}" >&2
        usage >&2
        exit 2
        ;;
esac
