#!/usr/bin/env bash
# Local Apache Kafka (KRaft) for amlwatch tests and demos. See README.md.
#
#   kafka.sh start [--nodes N] [--timeout S]   fresh cluster (1 or 3 nodes), waits until ready
#   kafka.sh stop [--keep]                     TERM (then KILL) every node; removes the data dir
#   kafka.sh status                            what runs; last line bootstrap=...
#   kafka.sh kill-node I [--signal KILL|TERM]  stop one node (default SIGKILL), keep its data
#   kafka.sh stop-node I                       same with SIGTERM (controlled shutdown)
#   kafka.sh start-node I [--timeout S]        start a stopped node again on its old data
#   kafka.sh restart-node I [--signal TERM|KILL] [--timeout S]
#   kafka.sh fetch                             only resolve the broker jars (Maven Central)
#
# Nodes are numbered 0..N-1 (node.id = I). Every node is a combined
# broker+controller on 127.0.0.1.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
POM="$SCRIPT_DIR/pom.xml"
LOG4J_CONF="$SCRIPT_DIR/log4j2.xml"

KHOME=${AMLWATCH_KAFKA_HOME:-$SCRIPT_DIR/.work}
LIB_DIR=${AMLWATCH_KAFKA_LIB:-$SCRIPT_DIR/.work/lib}
CLUSTER_DIR="$KHOME/cluster"
STATE_FILE="$CLUSTER_DIR/cluster.env"

BASE_PORT=${AMLWATCH_KAFKA_PORT:-19092}
CTRL_BASE_PORT=${AMLWATCH_KAFKA_CONTROLLER_PORT:-$((BASE_PORT + 100))}
HOST=127.0.0.1
START_TIMEOUT=${AMLWATCH_KAFKA_TIMEOUT:-90}
STOP_TIMEOUT=${AMLWATCH_KAFKA_STOP_TIMEOUT:-20}
HEAP_OPTS=${AMLWATCH_KAFKA_HEAP_OPTS:--Xms64m -Xmx512m}
# SerialGC: fewest threads and smallest footprint; pauses on a 512 MiB heap are
# a few ms. C1-only JIT makes the broker ready sooner on a 2-core machine.
JVM_OPTS=${AMLWATCH_KAFKA_JVM_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true}
EXTRA_PROPS=${AMLWATCH_KAFKA_SERVER_PROPS:-}

if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
  JAVA=${JAVA:-$JAVA_HOME/bin/java}
else
  JAVA=${JAVA:-java}
fi
MVN=${MVN:-mvn}
PYTHON=${AMLWATCH_KAFKA_PYTHON:-python3}

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { printf 'kafka.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  cat <<EOF

Environment: AMLWATCH_KAFKA_HOME (data, default $SCRIPT_DIR/.work; the cluster
lives in \$AMLWATCH_KAFKA_HOME/cluster), AMLWATCH_KAFKA_LIB (jars, default
$SCRIPT_DIR/.work/lib), AMLWATCH_KAFKA_PORT (first broker port, default 19092),
AMLWATCH_KAFKA_CONTROLLER_PORT (first controller port, default PORT+100),
AMLWATCH_KAFKA_TIMEOUT (start wait, s, default 90), AMLWATCH_KAFKA_STOP_TIMEOUT
(TERM->KILL, s, default 20), AMLWATCH_KAFKA_HEAP_OPTS, AMLWATCH_KAFKA_JVM_OPTS,
AMLWATCH_KAFKA_SERVER_PROPS ("k=v;k=v" appended to every server.properties),
AMLWATCH_MAVEN_REPO (Maven local repo, default ~/.m2/repository),
AMLWATCH_MAVEN_OFFLINE=1 (mvn -o), JAVA, MVN, AMLWATCH_KAFKA_PYTHON.
EOF
}

# ---------------------------------------------------------------- helpers

broker_port() { echo $((BASE_PORT + $1)); }
ctrl_port() { echo $((CTRL_BASE_PORT + $1)); }
node_dir() { echo "$CLUSTER_DIR/node-$1"; }

bootstrap_string() {
  local n=$1 i out=""
  for ((i = 0; i < n; i++)); do
    out+="${out:+,}$HOST:$(broker_port "$i")"
  done
  echo "$out"
}

# pid of node I if it is alive and really is our broker for that node, else "".
node_pid() {
  local dir pidf pid
  dir=$(node_dir "$1")
  pidf="$dir/node.pid"
  [[ -f "$pidf" ]] || return 0
  pid=$(<"$pidf")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  if pid_alive "$pid" && [[ -r "/proc/$pid/cmdline" ]] &&
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$dir/server.properties"; then
    echo "$pid"
  elif kill -0 "$pid" 2>/dev/null && [[ ! -e "/proc/$pid" ]]; then
    echo "$pid" # no /proc (not Linux): trust the pid file
  fi
}

# kill -0 also succeeds for a zombie; treat a zombie as gone.
pid_alive() {
  kill -0 "$1" 2>/dev/null || return 1
  if [[ -r "/proc/$1/stat" ]]; then
    local st
    st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
    [[ "$st" != Z && "$st" != X ]]
  fi
}

port_in_use() {
  (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

load_state() {
  [[ -f "$STATE_FILE" ]] || die "no cluster in $CLUSTER_DIR (run: $0 start)"
  # shellcheck disable=SC1090
  source "$STATE_FILE"
  : "${NODES:?}" "${CLUSTER_ID:?}"
}

check_node_arg() {
  [[ "${1:-}" =~ ^[0-9]+$ ]] || die "node index required (0..$((NODES - 1)))"
  (($1 < NODES)) || die "node $1 does not exist (cluster has $NODES nodes: 0..$((NODES - 1)))"
}

check_java() {
  command -v "$JAVA" >/dev/null 2>&1 || die "java not found (need Java 17+ on PATH or JAVA_HOME)"
  local v
  v=$("$JAVA" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
  [[ -n "$v" ]] || return 0
  ((${v%%.*} >= 17)) || die "Kafka 4.0 needs Java 17+, $JAVA is Java $v"
}

pom_stamp() {
  { cat "$POM"; echo "lib=$LIB_DIR"; } | cksum | cut -d' ' -f1
}

# Resolve the broker jars into $LIB_DIR unless they are there for this pom.
ensure_jars() {
  local stamp
  stamp=$(pom_stamp)
  if [[ -f "$LIB_DIR/.complete" && "$(<"$LIB_DIR/.complete")" == "$stamp" ]]; then
    return 0
  fi
  command -v "$MVN" >/dev/null 2>&1 || die "mvn not found and no broker jars in $LIB_DIR (install Maven or set AMLWATCH_KAFKA_LIB)"
  mkdir -p "$(dirname "$LIB_DIR")"
  # Serialise concurrent fetches (parallel test sessions).
  local lock="$LIB_DIR.lock"
  exec 9>"$lock"
  if command -v flock >/dev/null 2>&1; then flock 9; fi
  if [[ -f "$LIB_DIR/.complete" && "$(<"$LIB_DIR/.complete")" == "$stamp" ]]; then
    exec 9>&-
    return 0
  fi
  log "resolving Apache Kafka jars from Maven Central into $LIB_DIR ..."
  local t0=$SECONDS
  rm -rf "$LIB_DIR"
  local -a args=(-B -q -Dstyle.color=never -f "$POM" dependency:copy-dependencies "-Dkafka.lib.dir=$LIB_DIR")
  [[ -n "${AMLWATCH_MAVEN_REPO:-}" ]] && args+=("-Dmaven.repo.local=$AMLWATCH_MAVEN_REPO")
  [[ "${AMLWATCH_MAVEN_OFFLINE:-0}" == 1 ]] && args+=(-o)
  local mvn_log="$LIB_DIR.mvn.log"
  if ! "$MVN" "${args[@]}" >"$mvn_log" 2>&1; then
    exec 9>&-
    tail -n 40 "$mvn_log" >&2
    die "mvn could not resolve the Kafka jars (output above and in $mvn_log; is Maven Central reachable?)"
  fi
  rm -f "$mvn_log"
  compgen -G "$LIB_DIR/kafka_2.13-*.jar" >/dev/null || { exec 9>&-; die "mvn ran but $LIB_DIR has no kafka_2.13 jar"; }
  echo "$stamp" >"$LIB_DIR/.complete"
  exec 9>&-
  log "jars ready ($(find "$LIB_DIR" -name '*.jar' | wc -l) jars, $((SECONDS - t0)) s)"
}

new_cluster_id() {
  # Kafka's Uuid.toString(): URL-safe base64 of 16 random bytes, no padding,
  # never starting with '-'.
  if command -v "$PYTHON" >/dev/null 2>&1; then
    "$PYTHON" -c '
import base64, uuid
while True:
    s = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not s.startswith("-"):
        print(s); break'
  else
    "$JAVA" -cp "$LIB_DIR/*" kafka.tools.StorageTool random-uuid
  fi
}

write_server_properties() {
  local i=$1 n=$2 dir rf min_isr voters="" j
  dir=$(node_dir "$i")
  rf=$((n < 3 ? n : 3))
  min_isr=$((n < 2 ? n : 2))
  for ((j = 0; j < n; j++)); do
    voters+="${voters:+,}$j@$HOST:$(ctrl_port "$j")"
  done
  cat >"$dir/server.properties" <<EOF
# Written by deploy/kafka/kafka.sh for a local test cluster ($n node(s)).
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://$HOST:$(broker_port "$i"),CONTROLLER://$HOST:$(ctrl_port "$i")
advertised.listeners=PLAINTEXT://$HOST:$(broker_port "$i")
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data

# Topics: amlwatch creates its topics explicitly; auto-creation stays on (the
# Kafka default) so a consumer racing the creator does not fail. Override with
# AMLWATCH_KAFKA_SERVER_PROPS="auto.create.topics.enable=false".
auto.create.topics.enable=true
delete.topic.enable=true
num.partitions=3
default.replication.factor=$rf
# 1 so topics created with replication factor 1 (faust's default) still accept
# acks=all writes on a 3-node cluster.
min.insync.replicas=1

# Internal topics sized for a small cluster.
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$min_isr
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$min_isr

# Tests: no 3 s wait before the first consumer-group rebalance.
group.initial.rebalance.delay.ms=0
# A killed broker is fenced (and a restarted one may re-register) after 6 s
# instead of 9 s; still far above any pause on a busy 2-core machine.
broker.session.timeout.ms=6000
broker.heartbeat.interval.ms=1500

# Small machine.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4
log.retention.hours=24
EOF
  if [[ -n "$EXTRA_PROPS" ]]; then
    echo "# AMLWATCH_KAFKA_SERVER_PROPS" >>"$dir/server.properties"
    tr ';' '\n' <<<"$EXTRA_PROPS" | sed 's/^[[:space:]]*//;s/[[:space:]]*$//' | grep -v '^$' >>"$dir/server.properties"
  fi
}

format_node() {
  local dir
  dir=$(node_dir "$1")
  "$JAVA" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    "-Dlog4j2.configurationFile=$LOG4J_CONF" -cp "$LIB_DIR/*" \
    kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$dir/server.properties" \
    >"$dir/format.log" 2>&1
}

launch_node() {
  local i=$1 dir
  dir=$(node_dir "$i")
  local p
  for p in "$(broker_port "$i")" "$(ctrl_port "$i")"; do
    port_in_use "$p" && die "port $p is already in use (another broker? set AMLWATCH_KAFKA_PORT)"
  done
  # shellcheck disable=SC2086
  (
    cd "$dir"
    exec "$JAVA" $HEAP_OPTS $JVM_OPTS \
      "-Dlog4j2.configurationFile=$LOG4J_CONF" "-Dkafka.logs.dir=$dir" \
      -cp "$LIB_DIR/*" kafka.Kafka "$dir/server.properties"
  ) </dev/null >>"$dir/node.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/node.pid"
  # Until the subshell has exec'd java, node_pid would not recognise it.
  local k
  for ((k = 0; k < 100; k++)); do
    [[ -r "/proc/$pid/cmdline" ]] || break
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$dir/server.properties" && break
    sleep 0.05
  done
}

tail_log() {
  local dir
  dir=$(node_dir "$1")
  echo "---- last lines of $dir/node.log ----" >&2
  tail -n "${2:-40}" "$dir/node.log" >&2 2>/dev/null || echo "(no log)" >&2
  echo "----" >&2
}

# Kafka Metadata request (v4, no tagged fields) on a raw socket; prints the ids
# of the brokers the node reports as alive (KRaft: registered and unfenced).
PROBE_PY='
import socket, struct, sys
host, port = sys.argv[1], int(sys.argv[2])
def rd(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("connection closed")
        b += c
    return b
cid = b"amlwatch-probe"
body = struct.pack(">hhih", 3, 4, 7, len(cid)) + cid + struct.pack(">ib", -1, 0)
try:
    with socket.create_connection((host, port), timeout=2) as s:
        s.settimeout(3)
        s.sendall(struct.pack(">i", len(body)) + body)
        (size,) = struct.unpack(">i", rd(s, 4))
        r = rd(s, size)
except Exception as e:
    print("ERR", type(e).__name__, e); sys.exit(1)
off = 8  # correlation id, throttle_time_ms
(nb,) = struct.unpack_from(">i", r, off); off += 4
ids = []
for _ in range(nb):
    (nid,) = struct.unpack_from(">i", r, off); off += 4
    (hl,) = struct.unpack_from(">h", r, off); off += 2 + hl + 4
    (rl,) = struct.unpack_from(">h", r, off); off += 2 + max(rl, 0)
    ids.append(nid)
print(" ".join(str(i) for i in sorted(ids)))
'

# Prints broker ids node I sees alive, or "ERR ..." (exit 1).
probe_node() {
  if command -v "$PYTHON" >/dev/null 2>&1; then
    "$PYTHON" -c "$PROBE_PY" "$HOST" "$(broker_port "$1")"
  else
    # No Python: only check that the port accepts connections.
    if port_in_use "$(broker_port "$1")"; then echo "?"; else echo "ERR port closed"; return 1; fi
  fi
}

# wait_ready TIMEOUT NODE... : every listed node is running and reports every
# listed node as an alive broker.
wait_ready() {
  local timeout=$1; shift
  local -a nodes=("$@")
  local deadline=$((SECONDS + timeout)) i j out ok last=""
  while :; do
    ok=1
    for i in "${nodes[@]}"; do
      if [[ -z "$(node_pid "$i")" ]]; then
        log "node $i exited during startup"
        tail_log "$i"
        die "Kafka node $i died while starting (log: $(node_dir "$i")/node.log)"
      fi
      if ! out=$(probe_node "$i" 2>&1); then
        ok=0; last="node $i: $out"; break
      fi
      if [[ "$out" != "?" ]]; then
        for j in "${nodes[@]}"; do
          if [[ " $out " != *" $j "* ]]; then
            ok=0; last="node $i sees brokers [$out], waiting for ${nodes[*]}"; break 2
          fi
        done
      fi
    done
    ((ok)) && return 0
    if ((SECONDS >= deadline)); then
      log "not ready after ${timeout}s: $last"
      for i in "${nodes[@]}"; do tail_log "$i" 30; done
      die "Kafka cluster did not become ready within ${timeout}s (logs in $CLUSTER_DIR/node-*/node.log)"
    fi
    sleep 0.5
  done
}

# signal_and_wait SIGNAL TIMEOUT NODE... ; escalates to KILL after TIMEOUT.
signal_and_wait() {
  local sig=$1 timeout=$2; shift 2
  local -a pids=()
  local i pid
  for i in "$@"; do
    pid=$(node_pid "$i")
    [[ -n "$pid" ]] || continue
    kill "-$sig" "$pid" 2>/dev/null || true
    pids+=("$pid")
  done
  ((${#pids[@]})) || return 0
  local deadline=$((SECONDS + timeout)) alive
  while :; do
    alive=()
    for pid in "${pids[@]}"; do
      pid_alive "$pid" && alive+=("$pid")
    done
    ((${#alive[@]})) || break
    if ((SECONDS >= deadline)); then
      log "still running after ${timeout}s, sending KILL: ${alive[*]}"
      kill -KILL "${alive[@]}" 2>/dev/null || true
      timeout=5; deadline=$((SECONDS + 5)); sig=KILL
    fi
    sleep 0.2
  done
  for i in "$@"; do rm -f "$(node_dir "$i")/node.pid"; done
}

running_nodes() {
  local i
  for ((i = 0; i < NODES; i++)); do
    [[ -n "$(node_pid "$i")" ]] && echo "$i"
  done
  return 0
}

# ---------------------------------------------------------------- commands

cmd_fetch() {
  ensure_jars
  echo "lib=$LIB_DIR"
}

cmd_start() {
  local n=1 timeout=$START_TIMEOUT
  while (($#)); do
    case $1 in
      --nodes) n=${2:?--nodes needs a value}; shift 2 ;;
      --nodes=*) n=${1#*=}; shift ;;
      --timeout) timeout=${2:?}; shift 2 ;;
      --timeout=*) timeout=${1#*=}; shift ;;
      *) die "start: unknown argument $1" ;;
    esac
  done
  [[ "$n" =~ ^[1-9]$ ]] || die "--nodes must be 1..9 (1 or 3 are the tested ones)"

  if [[ -f "$STATE_FILE" ]]; then
    (
      source "$STATE_FILE"
      for ((i = 0; i < NODES; i++)); do
        [[ -z "$(node_pid "$i")" ]] || exit 1
      done
    ) || die "a cluster is already running from $CLUSTER_DIR ($0 status; $0 stop first)"
  fi

  check_java
  ensure_jars
  local t0=$SECONDS i
  rm -rf "$CLUSTER_DIR"
  mkdir -p "$CLUSTER_DIR"
  CLUSTER_ID=$(new_cluster_id)
  NODES=$n
  cat >"$STATE_FILE" <<EOF
NODES=$n
CLUSTER_ID=$CLUSTER_ID
BASE_PORT=$BASE_PORT
CTRL_BASE_PORT=$CTRL_BASE_PORT
EOF
  for ((i = 0; i < n; i++)); do
    mkdir -p "$(node_dir "$i")/data"
    write_server_properties "$i" "$n"
  done

  local -a fpids=()
  for ((i = 0; i < n; i++)); do
    format_node "$i" &
    fpids+=($!)
  done
  for ((i = 0; i < n; i++)); do
    if ! wait "${fpids[$i]}"; then
      cat "$(node_dir "$i")/format.log" >&2
      die "formatting the storage of node $i failed"
    fi
  done

  local -a all=()
  for ((i = 0; i < n; i++)); do all+=("$i"); done
  if ! (for i in "${all[@]}"; do launch_node "$i"; done; wait_ready "$timeout" "${all[@]}"); then
    # Leave nothing half-started behind; keep the dir for the logs.
    signal_and_wait KILL 10 "${all[@]}"
    die "start failed; logs kept in $CLUSTER_DIR/node-*/node.log ($0 stop removes them)"
  fi
  log "$n-node cluster $CLUSTER_ID ready in $((SECONDS - t0)) s (data: $CLUSTER_DIR)"
  echo "bootstrap=$(bootstrap_string "$n")"
}

cmd_stop() {
  local keep=0
  while (($#)); do
    case $1 in
      --keep) keep=1; shift ;;
      *) die "stop: unknown argument $1" ;;
    esac
  done
  if [[ ! -f "$STATE_FILE" ]]; then
    log "no cluster in $CLUSTER_DIR"
    return 0
  fi
  load_state
  local -a all=()
  local i
  for ((i = 0; i < NODES; i++)); do all+=("$i"); done
  signal_and_wait TERM "$STOP_TIMEOUT" "${all[@]}"
  if ((keep)); then
    log "stopped; data kept in $CLUSTER_DIR"
  else
    rm -rf "$CLUSTER_DIR"
    log "stopped; removed $CLUSTER_DIR"
  fi
}

cmd_status() {
  if [[ ! -f "$STATE_FILE" ]]; then
    echo "no cluster in $CLUSTER_DIR"
    return 3
  fi
  load_state
  local i pid up=0
  echo "cluster $CLUSTER_ID, $NODES node(s), data $CLUSTER_DIR"
  for ((i = 0; i < NODES; i++)); do
    pid=$(node_pid "$i")
    if [[ -n "$pid" ]]; then
      up=$((up + 1))
      echo "node $i: running pid $pid broker $HOST:$(broker_port "$i") controller $HOST:$(ctrl_port "$i")"
    else
      echo "node $i: stopped (broker $HOST:$(broker_port "$i"))"
    fi
  done
  echo "bootstrap=$(bootstrap_string "$NODES")"
  ((up == NODES)) && return 0
  ((up == 0)) && return 3
  return 1
}

cmd_kill_node() {
  load_state
  local i=${1:-} sig=KILL
  shift || true
  check_node_arg "$i"
  while (($#)); do
    case $1 in
      --signal) sig=${2:?}; shift 2 ;;
      --signal=*) sig=${1#*=}; shift ;;
      *) die "kill-node: unknown argument $1" ;;
    esac
  done
  sig=${sig#SIG}
  [[ "$sig" == KILL || "$sig" == TERM ]] || die "--signal must be KILL or TERM"
  if [[ -z "$(node_pid "$i")" ]]; then
    log "node $i is not running"
    return 0
  fi
  signal_and_wait "$sig" "$STOP_TIMEOUT" "$i"
  log "node $i stopped (SIG$sig); data kept in $(node_dir "$i")"
}

cmd_start_node() {
  load_state
  local i=${1:-} timeout=$START_TIMEOUT
  shift || true
  check_node_arg "$i"
  while (($#)); do
    case $1 in
      --timeout) timeout=${2:?}; shift 2 ;;
      --timeout=*) timeout=${1#*=}; shift ;;
      *) die "start-node: unknown argument $1" ;;
    esac
  done
  if [[ -n "$(node_pid "$i")" ]]; then
    log "node $i is already running"
  else
    check_java
    ensure_jars
    echo "==== restart $(date '+%F %T') ====" >>"$(node_dir "$i")/node.log"
    launch_node "$i"
  fi
  local -a up
  mapfile -t up < <(running_nodes)
  local t0=$SECONDS
  if ! (wait_ready "$timeout" "${up[@]}"); then
    signal_and_wait KILL 10 "$i"
    die "node $i did not come back (log: $(node_dir "$i")/node.log); it is stopped again"
  fi
  log "node $i ready in $((SECONDS - t0)) s (nodes up: ${up[*]})"
  echo "bootstrap=$(bootstrap_string "$NODES")"
}

cmd_restart_node() {
  load_state
  local i=${1:-} sig=TERM
  shift || true
  check_node_arg "$i"
  local -a rest=()
  while (($#)); do
    case $1 in
      --signal) sig=${2:?}; shift 2 ;;
      --signal=*) sig=${1#*=}; shift ;;
      *) rest+=("$1"); shift ;;
    esac
  done
  cmd_kill_node "$i" --signal "$sig"
  cmd_start_node "$i" "${rest[@]}"
}

main() {
  local cmd=${1:-}
  shift || true
  case $cmd in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    kill-node) cmd_kill_node "$@" ;;
    stop-node) cmd_kill_node "${1:-}" --signal TERM ;;
    start-node) cmd_start_node "$@" ;;
    restart-node) cmd_restart_node "$@" ;;
    fetch) cmd_fetch ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
