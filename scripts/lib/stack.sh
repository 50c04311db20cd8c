# Starting and stopping the services as background processes, for dev-up,
# dev-down and the benchmarks. Each process: .dev/pids/NAME and .dev/logs/NAME.log.

# stack_start DIR NAME BINARY [VAR=value ...]
stack_start() {
  local dir="$1" name="$2" binary="$3"
  shift 3
  mkdir -p "$dir/logs" "$dir/pids"
  env "$@" setsid "$binary" >"$dir/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$dir/pids/$name"
}

# stack_wait_ready DIR URL SECONDS: polls URL until it answers 200.
stack_wait_ready() {
  local dir="$1" url="$2" seconds="$3" deadline
  deadline=$(( $(date +%s) + seconds ))
  until curl -fsS -o /dev/null "$url" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "stack: $url not ready after ${seconds}s; see $dir/logs" >&2
      return 1
    fi
    sleep 0.2
  done
}

# stack_stop_all DIR: SIGTERM every process, then SIGKILL what is left after 12 s.
stack_stop_all() {
  local dir="$1" f pid deadline
  [ -d "$dir/pids" ] || return 0
  for f in "$dir"/pids/*; do
    [ -e "$f" ] || continue
    pid=$(cat "$f")
    kill -TERM "$pid" 2>/dev/null || true
  done
  deadline=$(( $(date +%s) + 12 ))
  for f in "$dir"/pids/*; do
    [ -e "$f" ] || continue
    pid=$(cat "$f")
    while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$f"
  done
}
