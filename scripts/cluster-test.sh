#!/usr/bin/env bash
# cluster-test.sh proves scale-out on real clusters on one machine, on
# loopback, with everything under a fresh work directory:
#   - three nats-server nodes in one JetStream cluster, with sessionmon's
#     operator/account authentication (sessionmon creds init);
#   - one ZooKeeper and four ClickHouse servers: two shards of two
#     replicas, cluster sessionmon_cluster;
#   - sessionmon migrate --clickhouse-cluster, two ingest workers, two detect
#     processes (partitions 0-7 with the source detectors, 8-15 without)
#     and one notify delivering to a local webhook receiver, all with
#     --stream-replicas 3.
# It publishes demo traffic with attacks at a steady rate, and meanwhile
# kills (SIGKILL) and restarts one NATS node, one ClickHouse replica and one
# detect process (its replacement takes over after the lease TTL). At the
# end every published event must be stored exactly once (through the
# Distributed table, FINAL), and every alert that offline detection finds in
# the stream (read in its order) must have been delivered to the webhook
# exactly once; an erasure of one attacked subject must leave none of its
# rows on any of the four servers (each server's own tables), and so must a
# retention run of an expired day's partition; the dashboard,
# run alone over the cluster, must answer its pages; and no sessionmon
# process may have exited. The last line is
#   cluster: published N, stored N distinct, alerts A of A expected, delivered A
# and the exit status is 0 only when all of that holds.
#
#   scripts/cluster-test.sh                         # ~77,000 events over 75 s
#   CLUSTER_USERS=1000 CLUSTER_SECONDS=40 scripts/cluster-test.sh
#
# Environment: CLUSTER_USERS (demo users, default 3000), CLUSTER_SECONDS
# (publishing time, default 75), CLUSTER_PORT_BASE (default 26000: ports
# BASE+80..BASE+924 on 127.0.0.1; keep them below the ephemeral port range),
# CLUSTER_KEEP=1 keeps the work directory.
# Needs Go and root (apt-get) when ClickHouse, ZooKeeper or nats-server are
# missing. sessionmon's ingest, detect and notify run under a restart policy
# (as in docker-compose.yml); an unexpected exit is listed at the end and
# fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

USERS="${CLUSTER_USERS:-3000}"
SECONDS_PUBLISH="${CLUSTER_SECONDS:-75}"
BASE="${CLUSTER_PORT_BASE:-26000}"
GOBIN="$(go env GOPATH)/bin"
work="$(mktemp -d /tmp/sessionmon-cluster.XXXXXX)"
start_s=$(date +%s.%N)

# Ports, all on 127.0.0.1.
nats_port() { echo $((BASE + 220 + $1)); }  # client, nodes 1-3
nats_route() { echo $((BASE + 230 + $1)); } # cluster routes
nats_mon() { echo $((BASE + 240 + $1)); }   # monitoring (healthz)
zk_port=$((BASE + 181))
ch_nodes=(ch-1a ch-1b ch-2a ch-2b)
ch_shard() { echo "${1:3:1}"; } # ch-1a -> 1
ch_index() { case $1 in ch-1a) echo 1 ;; ch-1b) echo 2 ;; ch-2a) echo 3 ;; ch-2b) echo 4 ;; esac }
ch_tcp() { echo $((BASE + 900 + $(ch_index "$1"))); }
ch_http() { echo $((BASE + 810 + $(ch_index "$1"))); }
ch_inter() { echo $((BASE + 920 + $(ch_index "$1"))); }
receiver_port=$((BASE + 600))
dashboard_port=$((BASE + 80))
metrics_port() { # ingest-1 ingest-2 detect-a detect-b detect-a2 notify
	case $1 in
	ingest-1) echo $((BASE + 701)) ;; ingest-2) echo $((BASE + 702)) ;;
	detect-a) echo $((BASE + 711)) ;; detect-b) echo $((BASE + 712)) ;; detect-a2) echo $((BASE + 713)) ;;
	notify) echo $((BASE + 721)) ;; dashboard) echo $((BASE + 731)) ;;
	esac
}

declare -A pids=()
ok=0

log() { printf '%s [%6.1fs] %s\n' "$(date -u +%H:%M:%S)" "$(elapsed)" "$*" >&2; }
elapsed() { echo "$(date +%s.%N) - $start_s" | bc; }
die() {
	log "error: $*"
	exit 1
}

# phase NAME: log the end of the previous phase with its duration.
phase_name="" phase_s=$start_s
phase() {
	local now
	now=$(date +%s.%N)
	if [[ -n $phase_name ]]; then
		printf '%-28s %6.1f s\n' "$phase_name" "$(echo "$now - $phase_s" | bc)" >>"$work/timings.txt"
	fi
	phase_name=$1 phase_s=$now
	[[ -n $1 ]] && log "==> $1"
	return 0
}

# start NAME CMD...: run CMD in the background with its output in
# $work/log/NAME.log; its pid is pids[NAME].
start() {
	local name=$1
	shift
	"$@" >>"$work/log/$name.log" 2>&1 &
	pids[$name]=$!
}

# supervise NAME CMD...: run CMD as a service with a restart policy
# (restart: unless-stopped in docker-compose.yml): started again 1 s after
# it exits, unless stop stopped it. Each unexpected exit is written to
# $work/exits.txt. pids[NAME] is the supervisor, $work/run/NAME.pid the
# process.
supervise() {
	local name=$1
	shift
	(
		trap 'exit 0' TERM
		while :; do
			"$@" >>"$work/log/$name.log" 2>&1 &
			echo $! >"$work/run/$name.pid"
			rc=0
			wait $! || rc=$?
			[[ -f $work/run/$name.stopped ]] && exit 0
			echo "$(date -u +%T.%N | cut -c1-12) $name exited with status $rc ($(tail -n 1 "$work/log/$name.log" | cut -c1-160)); restarted" >>"$work/exits.txt"
			sleep 1
		done
	) &
	pids[$name]=$!
}
pid_of() { if [[ -f $work/run/$1.pid ]]; then cat "$work/run/$1.pid"; else echo "${pids[$1]:-}"; fi; }

# stop NAME [SIGNAL]: signal the process (not restarted) and wait for it.
stop() {
	local name=$1 sig=${2:-TERM} pid
	pid=$(pid_of "$1")
	[[ -n $pid ]] || return 0
	[[ -f $work/run/$name.pid ]] && touch "$work/run/$name.stopped"
	kill "-$sig" "$pid" 2>/dev/null || true
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "${pids[$name]}" 2>/dev/null || true
	unset "pids[$name]"
	rm -f "$work/run/$name.pid"
}

tails() {
	local f
	for f in "$work"/log/*.log; do
		[[ -f $f ]] || continue
		echo "----- $(basename "$f") (last lines)" >&2
		tail -n 8 "$f" >&2
	done
}

cleanup() {
	local rc=$? name
	trap - EXIT INT TERM
	if ((ok == 0)); then
		tails
	fi
	touch "$work"/run/{ingest-1,ingest-2,detect-a,detect-b,detect-a2,notify}.stopped 2>/dev/null || true
	for name in "${!pids[@]}"; do
		# The children of the publisher, the sampler and the supervisors first.
		pkill -TERM -P "${pids[$name]}" 2>/dev/null || true
		kill -TERM "${pids[$name]}" $(cat "$work/run/$name.pid" 2>/dev/null) 2>/dev/null || true
	done
	sleep 1
	for name in "${!pids[@]}"; do
		kill -KILL "${pids[$name]}" $(cat "$work/run/$name.pid" 2>/dev/null) 2>/dev/null || true
		wait "${pids[$name]}" 2>/dev/null || true
	done
	if ((ok == 0)) || [[ ${CLUSTER_KEEP:-} == 1 ]]; then
		log "work directory kept: $work"
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for WHAT SECONDS CMD...: retry CMD every 0.2 s until it succeeds;
# fail at once when a server or worker exited.
wait_for() {
	local what=$1 limit=$2 i name
	shift 2
	for ((i = 0; i < limit * 5; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		for name in "${!pids[@]}"; do
			[[ $name == publisher ]] && continue
			kill -0 "${pids[$name]}" 2>/dev/null || die "$name exited while waiting for $what"
		done
		sleep 0.2
	done
	die "$what did not come up within ${limit}s"
}
port_open() { timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1"; }
wait_port() { wait_for "$1 (port $2)" "${3:-60}" port_open "$2"; }
ch() { # ch NODE clickhouse-client args...
	local node=$1
	shift
	clickhouse-client --host 127.0.0.1 --port "$(ch_tcp "$node")" "$@"
}
ch_up() { [[ $(ch "$1" --query 'SELECT 1' 2>/dev/null) == 1 ]]; }
rss_mb() { # rss_mb PID: resident set in MiB
	awk '/VmRSS/ {printf "%d", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo "-"
}

mkdir -p "$work/log" "$work/run"
: >"$work/timings.txt"
: >"$work/exits.txt"

# ---------------------------------------------------------------- install
phase "install and build"
need=()
command -v clickhouse-server >/dev/null || [[ -x /usr/sbin/clickhouse-server ]] || need+=(clickhouse-server)
command -v clickhouse-client >/dev/null || need+=(clickhouse-client)
[[ -f /usr/share/java/zookeeper.jar ]] || need+=(zookeeper)
if ((${#need[@]})); then
	log "installing ${need[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${need[@]}" >&2
fi
command -v java >/dev/null || die "java is missing (ZooKeeper needs it): apt-get install -y openjdk-17-jre-headless"
[[ -x $GOBIN/nats-server ]] || go install github.com/nats-io/nats-server/v2@v2.15.2
ch_server=$(command -v clickhouse-server || echo /usr/sbin/clickhouse-server)
go build -o "$work/sessionmon" ./cmd/sessionmon
sm="$work/sessionmon"
for p in $(nats_port 1) $(nats_port 2) $(nats_port 3) $zk_port $receiver_port \
	$(ch_tcp ch-1a) $(ch_tcp ch-1b) $(ch_tcp ch-2a) $(ch_tcp ch-2b); do
	if port_open "$p" 2>/dev/null; then
		die "port $p is in use; set CLUSTER_PORT_BASE to another range"
	fi
done

# ---------------------------------------------------------------- NATS
phase "nats cluster (3 nodes)"
"$sm" creds init --dir "$work/auth" >/dev/null
# The demo app publishes with its own credentials, as an app does.
"$sm" creds app demo-shop --dir "$work/auth" --output "$work/auth/demo-shop.creds" >/dev/null
start_nats() { # start_nats N
	local n=$1
	mkdir -p "$work/nats-$n"
	start "nats-$n" "$GOBIN/nats-server" --config "$work/nats-$n.conf"
}
for n in 1 2 3; do
	cat >"$work/nats-$n.conf" <<EOF
server_name: nats-$n
listen: 127.0.0.1:$(nats_port "$n")
http: 127.0.0.1:$(nats_mon "$n")
max_payload: 1MB
jetstream {
  store_dir: "$work/nats-$n"
  max_file_store: 4GB
  max_memory_store: 256MB
}
cluster {
  name: sessionmon
  listen: 127.0.0.1:$(nats_route "$n")
  routes: [
    nats-route://127.0.0.1:$(nats_route 1)
    nats-route://127.0.0.1:$(nats_route 2)
    nats-route://127.0.0.1:$(nats_route 3)
  ]
}
include auth/auth.conf
EOF
	start_nats "$n"
done
nats_healthy() { curl -fsS "http://127.0.0.1:$(nats_mon "$1")/healthz?js-enabled-only=true" >/dev/null; }
nats_current() { curl -fsS "http://127.0.0.1:$(nats_mon "$1")/healthz" >/dev/null; }
for n in 1 2 3; do wait_for "nats-$n" 30 nats_current "$n"; done
nats_url="nats://127.0.0.1:$(nats_port 1),nats://127.0.0.1:$(nats_port 2),nats://127.0.0.1:$(nats_port 3)"

# ---------------------------------------------------------------- ZooKeeper
phase "zookeeper"
mkdir -p "$work/zk/data"
cat >"$work/zk/zoo.cfg" <<EOF
tickTime=500
initLimit=10
syncLimit=5
dataDir=$work/zk/data
clientPort=$zk_port
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,mntr
EOF
cat >"$work/zk/log4j.properties" <<EOF
log4j.rootLogger=WARN, F
log4j.appender.F=org.apache.log4j.FileAppender
log4j.appender.F.File=$work/log/zookeeper.server.log
log4j.appender.F.layout=org.apache.log4j.PatternLayout
log4j.appender.F.layout.ConversionPattern=%d %p %c{1}: %m%n
EOF
start zookeeper java -Xmx256m -XX:+UseSerialGC \
	-cp "$work/zk:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar" \
	-Dlog4j.configuration="file:$work/zk/log4j.properties" -Dzookeeper.log.dir="$work/log" \
	org.apache.zookeeper.server.ZooKeeperServerMain "$work/zk/zoo.cfg"
zk_ok() { [[ $(echo ruok | timeout 1 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"; cat >&3; cat <&3' _ "$zk_port" 2>/dev/null) == imok ]]; }
wait_for zookeeper 60 zk_ok

# ---------------------------------------------------------------- ClickHouse
phase "clickhouse cluster (2x2)"
remote_servers="<sessionmon_cluster>"
for s in 1 2; do
	remote_servers+="
        <shard><internal_replication>true</internal_replication>
          <replica><host>127.0.0.1</host><port>$(ch_tcp "ch-${s}a")</port></replica>
          <replica><host>127.0.0.1</host><port>$(ch_tcp "ch-${s}b")</port></replica>
        </shard>"
done
remote_servers+="
      </sessionmon_cluster>"
write_ch_config() { # write_ch_config NODE
	local node=$1 dir=$work/$1
	mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas"
	cat >"$dir/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>$work/log/$node.server.log</log>
        <errorlog>$work/log/$node.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>$(ch_tcp "$node")</tcp_port>
    <http_port>$(ch_http "$node")</http_port>
    <interserver_http_port>$(ch_inter "$node")</interserver_http_port>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <path>$dir/data/</path>
    <tmp_path>$dir/tmp/</tmp_path>
    <user_files_path>$dir/user_files/</user_files_path>
    <format_schema_path>$dir/format_schemas/</format_schema_path>
    <users_config>$dir/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <max_concurrent_queries>100</max_concurrent_queries>
    <mark_cache_size>134217728</mark_cache_size>
    <uncompressed_cache_size>134217728</uncompressed_cache_size>
    <mlock_executable>false</mlock_executable>
    <remote_servers>
      $remote_servers
    </remote_servers>
    <macros><shard>$(ch_shard "$node")</shard><replica>$node</replica></macros>
    <zookeeper><node><host>127.0.0.1</host><port>$zk_port</port></node><session_timeout_ms>10000</session_timeout_ms></zookeeper>
    <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
</yandex>
EOF
	cat >"$dir/users.xml" <<EOF
<?xml version="1.0"?>
<yandex>
    <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
        <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
EOF
}
start_ch() { start "$1" "$ch_server" --config-file="$work/$1/config.xml"; }
for node in "${ch_nodes[@]}"; do
	write_ch_config "$node"
	start_ch "$node"
done
for node in "${ch_nodes[@]}"; do wait_for "$node" 90 ch_up "$node"; done
ch_version=$(ch ch-1a --query 'SELECT version()')
log "ClickHouse $ch_version, cluster: $(ch ch-1a --query "SELECT count() FROM system.clusters WHERE cluster = 'sessionmon_cluster'") replicas"

# ---------------------------------------------------------------- sessionmon
phase "migrate (on cluster)"
ch_dsn="clickhouse://127.0.0.1:$(ch_tcp ch-1a),127.0.0.1:$(ch_tcp ch-2a),127.0.0.1:$(ch_tcp ch-1b),127.0.0.1:$(ch_tcp ch-2b)/sessionmon"
export SESSIONMON_NATS_URL="$nats_url"
export SESSIONMON_NATS_CREDS="$work/auth/sessionmon.creds"
export SESSIONMON_CLICKHOUSE_CLUSTER=sessionmon_cluster
export SESSIONMON_STREAM_REPLICAS=3
export SESSIONMON_EVENT_PARTITIONS=16
export SESSIONMON_DATA_DIR="$work/sessionmon-data"
export SESSIONMON_LOG_FORMAT=json
run_migrate() {
	SESSIONMON_CLICKHOUSE_DSN="clickhouse://127.0.0.1:$(ch_tcp ch-1a)/sessionmon" \
		"$sm" migrate --clickhouse-cluster sessionmon_cluster >>"$work/log/migrate.log" 2>&1
}
run_migrate || die "migrate failed: $(tail -n 5 "$work/log/migrate.log")"
export SESSIONMON_CLICKHOUSE_DSN="$ch_dsn"
# Every node must have the same tables and columns.
schema() { ch "$1" --query "SELECT table, name, type FROM system.columns WHERE database = 'sessionmon' ORDER BY table, name" | md5sum | cut -c1-12; }
for node in "${ch_nodes[@]}"; do
	log "$node: $(ch "$node" --query "SELECT count() FROM system.tables WHERE database = 'sessionmon'") tables, schema $(schema "$node"), events $(ch "$node" --query "SELECT engine FROM system.tables WHERE database = 'sessionmon' AND name = 'events'")"
	[[ $(schema "$node") == "$(schema ch-1a)" ]] || die "$node has another schema than ch-1a"
done

phase "sessionmon processes"
# The webhook receiver and the notifier's config.
start receiver python3 "$root/scripts/cluster/receiver.py" "$receiver_port" "$work/delivered.ndjson"
: >"$work/delivered.ndjson"
printf 'whsec_%s\n' "$(head -c 32 /dev/urandom | base64)" >"$work/webhook.secret"
chmod 600 "$work/webhook.secret"
# A delivery the notifier's NATS client dropped (a slow consumer while a
# node restarts) comes back after ack_wait (2 minutes by default): 20s here
# keeps the run short.
cat >"$work/notify.yaml" <<EOF
notify:
  ack_wait: 20s
  webhooks:
    - name: receiver
      url: http://127.0.0.1:$receiver_port/hook
      secret_file: $work/webhook.secret
      allow_http: true
      allow_private: true
EOF
wait_port receiver "$receiver_port" 10
start_ingest() { supervise "$1" "$sm" ingest --metrics-addr "127.0.0.1:$(metrics_port "$1")" --stream-replicas 3; }
start_detect() { # start_detect NAME PARTITIONS SOURCE
	supervise "$1" "$sm" detect --metrics-addr "127.0.0.1:$(metrics_port "$1")" --stream-replicas 3 \
		--event-partitions 16 --detect-partitions "$2" --detect-source-detectors "$3"
}
ready() { curl -fsS "http://127.0.0.1:$(metrics_port "$1")/readyz" >/dev/null; }
# The first ingest creates the events stream (and the alerts stream) with
# three replicas; the others find them. The first detect declares the
# detectors' buckets before the second starts (on a loaded machine, a second
# one declaring them at the same time exited with "detect state bucket
# SESSIONMON_DETECT_STATE: context deadline exceeded").
start_ingest ingest-1
wait_for "ingest-1 ready" 60 ready ingest-1
start_detect detect-a 0-7 true
wait_for "detect-a ready" 60 ready detect-a
start_ingest ingest-2
start_detect detect-b 8-15 false
supervise notify "$sm" notify --config "$work/notify.yaml" --metrics-addr "127.0.0.1:$(metrics_port notify)" --stream-replicas 3
for name in ingest-2 detect-b notify; do wait_for "$name ready" 60 ready "$name"; done

# ---------------------------------------------------------------- traffic
phase "demo traffic and expected alerts"
"$sm" demo --output "$work/events.ndjson" --demo-users "$USERS" >"$work/log/demo.log" 2>&1
# Offline over the file (for the record; the check uses the stream's order,
# below).
"$sm" detect --input "$work/events.ndjson" --output "$work/file-order.ndjson" >"$work/log/offline-file.log" 2>&1
published=$(wc -l <"$work/events.ndjson")
log "$published events; offline detection over the file: $(tail -n 1 "$work/log/offline-file.log")"
chunk_lines=$(((published + SECONDS_PUBLISH - 1) / SECONDS_PUBLISH))
mkdir -p "$work/chunks"
split -l "$chunk_lines" -d -a 4 "$work/events.ndjson" "$work/chunks/c"
chunks=("$work"/chunks/c*)

# publisher: one chunk a second, each with its own sessionmon publish (the
# SDK) and the demo app's credentials. A chunk whose publish fails is
# published again (the stream's dedup window and ClickHouse's FINAL keep
# each event once).
publisher() {
	local i=0 c t0 try
	for c in "${chunks[@]}"; do
		t0=$(date +%s.%N)
		for try in 1 2 3 4 5 6 7 8 9 10; do
			if SESSIONMON_NATS_CREDS="$work/auth/demo-shop.creds" "$sm" publish --file "$c" >>"$work/log/publish.out" 2>>"$work/log/publish.log"; then
				break
			fi
			echo "$(date -u +%T.%N | cut -c1-12) chunk $((i + 1)), attempt $try failed: $(tail -n 1 "$work/log/publish.log")" >>"$work/log/publish.retries"
			((try < 10)) || return 1
			sleep 0.5
		done
		i=$((i + 1))
		echo "$(date -u +%s) $i" >"$work/published.progress"
		sleep "$(echo "x = 1 - ($(date +%s.%N) - $t0); if (x < 0) x = 0; x" | bc)"
	done
}

stored_raw() { ch ch-2a --query 'SELECT count() FROM sessionmon.events' 2>/dev/null || echo "?"; }
# sampler: one line a second: time, chunks published, rows stored (without
# FINAL, so redeliveries show), webhook deliveries.
sampler() {
	while :; do
		printf '%s %s %s %s\n' "$(date -u +%T)" "$(cut -d' ' -f2 "$work/published.progress" 2>/dev/null || echo 0)" \
			"$(stored_raw)" "$(wc -l <"$work/delivered.ndjson")" >>"$work/timeline.txt"
		sleep 1
	done
}

phase "publish with faults"
log "publishing $published events in ${#chunks[@]} chunks of $chunk_lines lines, one a second"
publisher &
pub_pid=$!
pids[publisher]=$pub_pid
sampler &
pids[sampler]=$!

action() { log "FAULT: $*"; echo "$(date -u +%T.%N | cut -c1-12) $*" >>"$work/faults.txt"; }
at() { # at SECONDS: sleep until SECONDS after publishing started
	local target=$1 now
	now=$(echo "$(date +%s.%N) - $pub_s" | bc)
	sleep "$(echo "x = $target - $now; if (x < 0) x = 0; x" | bc)"
}
pub_s=$(date +%s.%N)
q=$((SECONDS_PUBLISH / 8))

at $((q * 1))
action "kill -9 nats-2 (pid ${pids[nats-2]})"
stop nats-2 KILL
at $((q * 2))
action "restart nats-2"
start_nats 2
wait_for "nats-2 restart" 60 nats_current 2
action "nats-2 is current again"

at $((q * 3))
action "kill -9 ch-2b (pid ${pids[ch-2b]})"
stop ch-2b KILL
at $((q * 4))
action "restart ch-2b"
start_ch ch-2b
wait_for "ch-2b restart" 90 ch_up ch-2b
action "ch-2b answers again"

at $((q * 5))
action "kill -9 detect-a (pid $(pid_of detect-a)), start detect-a2 for partitions 0-7 with the source detectors"
stop detect-a KILL
start_detect detect-a2 0-7 true
wait_for "detect-a2 ready" 60 ready detect-a2
action "detect-a2 ready (holds the leases)"

log "waiting for the publisher"
wait "$pub_pid" || die "publishing failed: $(tail -n 5 "$work/log/publish.log")"
unset "pids[publisher]"
phase "drain"
resources=$(for name in nats-1 nats-2 nats-3 zookeeper ch-1a ch-1b ch-2a ch-2b ingest-1 ingest-2 detect-a2 detect-b notify; do
	if [[ -n ${pids[$name]:-} ]]; then printf '%s %s MiB, ' "$name" "$(rss_mb "$(pid_of "$name")")"; fi
done)

stored_final() {
	ch ch-1a --query 'SELECT count(), uniqExact(id) FROM sessionmon.events FINAL' 2>/dev/null | tr '\t' ' '
}
delivered_distinct() { cut -d'"' -f4 "$work/delivered.ndjson" | sort -u | wc -l; }
for ((i = 0; i < 120; i++)); do
	[[ $(stored_final) == "$published $published" ]] && break
	sleep 1
done
log "events stored: $(stored_final) (rows, distinct ids after FINAL)"

# The alerts one process finds reading the events stream in its order (the
# order the live detect processes read; publish packs each chunk's events
# into batches by partition, so it is not the file's order), as
# test/scaletest does: the stream's messages, split into events, offline.
nats_cli() { "$GOBIN/nats" --server "$nats_url" --creds "$work/auth/admin.creds" "$@"; }
[[ -x $GOBIN/nats ]] || go install github.com/nats-io/natscli/nats@v0.5.0
msgs=$(nats_cli stream info SESSIONMON_EVENTS --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["state"]["messages"])')
nats_cli sub 'sessionmon.events.>' --stream SESSIONMON_EVENTS --all --raw --count "$msgs" 2>/dev/null |
	grep -v '^$' >"$work/stream-order.ndjson" || true
"$sm" detect --input "$work/stream-order.ndjson" --output "$work/expected.ndjson" >"$work/log/offline-stream.log" 2>&1
expected=$(wc -l <"$work/expected.ndjson")
log "stream: $msgs messages, $(wc -l <"$work/stream-order.ndjson") events; offline detection in stream order: $(tail -n 1 "$work/log/offline-stream.log")"
for ((i = 0; i < 90; i++)); do
	(($(delivered_distinct) >= expected)) && break
	sleep 1
done
sleep 3 # late duplicate deliveries would show now
kill "${pids[sampler]}" 2>/dev/null || true
wait "${pids[sampler]}" 2>/dev/null || true
unset "pids[sampler]"

phase "check"
read -r stored_rows stored_distinct <<<"$(stored_final)"
# Each replica of each shard: rows after FINAL (replication caught up).
for node in "${ch_nodes[@]}"; do
	log "$node: $(ch "$node" --query 'SELECT count() FROM sessionmon.events_local FINAL') events in its local table"
done
deliveries=$(wc -l <"$work/delivered.ndjson")
delivered=$(delivered_distinct)
expected_ids=$(cut -d'"' -f4 "$work/expected.ndjson" | sort -u)
got_ids=$(cut -d'"' -f4 "$work/delivered.ndjson" | sort -u)
found=$(comm -12 <(echo "$expected_ids") <(echo "$got_ids") | wc -l)
missing=$(comm -23 <(echo "$expected_ids") <(echo "$got_ids"))
extra=$(comm -13 <(echo "$expected_ids") <(echo "$got_ids"))
mismatched=$(grep -vc '^{"id":"\([^"]*\)","webhook_id":"\1"' "$work/delivered.ndjson" || true)
alerts_stored=$(ch ch-1a --query 'SELECT uniqExact(id) FROM sessionmon.alerts FINAL' 2>/dev/null || echo "?")

# The dashboard, alone, over the cluster: sign in as the first admin and
# open its pages.
phase "dashboard"
head -c 24 /dev/urandom | base64 >"$work/admin.password"
start dashboard env SESSIONMON_DASHBOARD_ADMIN_PASSWORD_FILE="$work/admin.password" \
	"$sm" dashboard --dashboard-addr "127.0.0.1:$dashboard_port" --metrics-addr "127.0.0.1:$(metrics_port dashboard)" \
	--insecure-dev-cookies --stream-replicas 3
pages_ok=0 pages=() listed=0
if (wait_for "dashboard ready" 60 ready dashboard); then
	dash="http://127.0.0.1:$dashboard_port"
	jar="$work/cookies.txt"
	token=$(curl -sS -c "$jar" -b "$jar" "$dash/login" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -n 1)
	code=$(curl -sS -c "$jar" -b "$jar" -o /dev/null -w '%{http_code}' --data-urlencode "csrf_token=$token" \
		--data-urlencode username=admin --data-urlencode "password=$(cat "$work/admin.password")" --data-urlencode next=/ "$dash/login")
	pages+=("POST /login $code")
	first_alert=$(head -n 1 "$work/expected.ndjson" | cut -d'"' -f4)
	for page in / /alerts "/alerts/$first_alert" /subjects /networks /dead-letters /webhooks /retention /audit; do
		code=$(curl -sS -b "$jar" -o "$work/page.html" -w '%{http_code}' "$dash$page")
		pages+=("GET $page $code")
		if [[ $code == 200 ]]; then pages_ok=$((pages_ok + 1)); fi
		if [[ $page == /alerts ]]; then
			listed=$({ grep -o -F -f <(cut -d'"' -f4 "$work/expected.ndjson") "$work/page.html" || true; } | sort -u | wc -l)
		fi
	done
fi
stop dashboard

# Erasure of one attacked subject: every replica of every shard must lose
# its rows (each server's own table, not only the Distributed view).
phase "erasure"
victim=$(python3 -c 'import json, sys
for line in open(sys.argv[1]):
    a = json.loads(line)
    if a.get("subject"):
        print(a["subject"]); break' "$work/expected.ndjson")
erased_ok=0 erase_note="no subject in the alerts"
if [[ -n $victim ]]; then
	q="SELECT (SELECT count() FROM sessionmon.events_local WHERE subject = '$victim'), (SELECT count() FROM sessionmon.alerts_local WHERE subject = '$victim')"
	before=$(for node in "${ch_nodes[@]}"; do printf '%s %s, ' "$node" "$(ch "$node" --query "$q" | tr '\t' '/')"; done)
	if "$sm" erase --subject "$victim" --requested-by cluster-test >"$work/log/erase.out" 2>"$work/log/erase.log"; then
		after=$(for node in "${ch_nodes[@]}"; do printf '%s %s, ' "$node" "$(ch "$node" --query "$q" | tr '\t' '/')"; done)
		left=$(for node in "${ch_nodes[@]}"; do ch "$node" --query "$q"; done | tr '\t' '\n' | awk '{ s += $1 } END { print s + 0 }')
		[[ $left == 0 ]] && grep -q ': done$' "$work/log/erase.out" && erased_ok=1
		erase_note="events/alerts of the subject per server before: ${before%, }; after: ${after%, }; $(grep -m1 ': done' "$work/log/erase.out" || echo 'request not done')"
	else
		erase_note="erase failed: $(tail -n 3 "$work/log/erase.log" | tr '\n' ' ')"
	fi
fi
log "erasure: $erase_note"

# Retention on the cluster: rows of a day past the events' period (90
# days), one per shard, must be gone from every replica once a run has
# dropped their partition.
phase "retention"
old_day=$(date -u -d '-120 days' +%Y-%m-%d)
retained_ok=0 retention_note=""
for i in 1 2 3 4; do
	ch ch-1a --insert_distributed_sync=1 --query "INSERT INTO sessionmon.events (id, type, time, time_ms, app, subject) VALUES ('expired-$i', 'login.failed', toDateTime('$old_day 10:00:0$i'), toInt64(toDateTime('$old_day 10:00:0$i')) * 1000, 'demo-shop', 'k1:expired${i}AAAAAAAAAAAAAAAAAAA')"
done
q="SELECT count() FROM sessionmon.events_local WHERE toDate(time) = toDate('$old_day')"
before=$(for node in "${ch_nodes[@]}"; do printf '%s %s, ' "$node" "$(ch "$node" --query "$q")"; done)
if "$sm" retention run >"$work/log/retention.out" 2>"$work/log/retention.log"; then
	after=$(for node in "${ch_nodes[@]}"; do printf '%s %s, ' "$node" "$(ch "$node" --query "$q")"; done)
	left=$(for node in "${ch_nodes[@]}"; do ch "$node" --query "$q"; done | awk '{ s += $1 } END { print s + 0 }')
	[[ $left == 0 ]] && retained_ok=1
	retention_note="rows of $old_day per server before: ${before%, }; after: ${after%, }"
else
	retention_note="retention run failed: $(tail -n 3 "$work/log/retention.log" | tr '\n' ' ')"
fi
log "retention: $retention_note"

phase ""

echo
echo "## Timings"
cat "$work/timings.txt"
echo
echo "## Faults"
cat "$work/faults.txt"
if [[ -s $work/log/publish.retries ]]; then
	echo
	echo "## Publish retries"
	cat "$work/log/publish.retries"
fi
echo
echo "## Timeline (time, chunks published, rows in events without FINAL, webhook deliveries)"
cat "$work/timeline.txt"
echo
echo "## Longest pauses while publishing (samples without progress, from the last progress to the next)"
# pauses COLUMN: the longest runs of samples in which COLUMN did not grow.
pauses() {
	awk -v c="$1" '$c == "?" { next }
		last != "" && $c == last { if (!from) from = prev; next }
		from { print from " -> " $1 }
		{ last = $c; prev = $1; from = "" }' "$work/timeline.txt" |
		awk '{ split($1, a, ":"); split($3, b, ":"); print (b[1] * 3600 + b[2] * 60 + b[3]) - (a[1] * 3600 + a[2] * 60 + a[3]) " s: " $0 }' |
		sort -rn | head -n 3 | sed 's/^/  /'
}
echo "chunks published:"
pauses 2
echo "rows stored:"
pauses 3
echo
echo "## What the processes logged about the faults"
for name in ingest-1 ingest-2 detect-a detect-b detect-a2 notify; do
	f="$work/log/$name.log"
	[[ -f $f ]] || continue
	python3 - "$f" "$name" <<'PY'
import json, sys
keep = ("lease", "detect started", "detect stopped", "disconnected", "reconnected", "pull events", "write", "insert", "failed", "error")
last, n, first = None, 0, None
def out():
    if last:
        print(f"{sys.argv[2]:9} {first[11:23]} {last}" + (f" (x{n}, until {end[11:23]})" if n > 1 else ""))
for line in open(sys.argv[1]):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    msg = r.get("msg", "")
    if r.get("level") == "INFO" and not any(k in msg for k in keep):
        continue
    if msg == "alert" or msg == "replay done":
        continue
    text = msg + (": " + str(r["error"])[:110] if "error" in r else "")
    if text == last:
        n += 1; end = r["time"]; continue
    out()
    last, n, first, end = text, 1, r["time"], r["time"]
out()
PY
done
echo
echo "## Resident memory at the end of publishing"
echo "${resources%, }"
echo
echo "offline over the file: $(wc -l <"$work/file-order.ndjson") alerts, $(comm -12 <(cut -d'"' -f4 "$work/file-order.ndjson" | sort -u) <(echo "$expected_ids") | wc -l) of them among the expected"
echo "ClickHouse $ch_version; $stored_rows rows after FINAL, $stored_distinct distinct ids; alerts table: $alerts_stored distinct alerts"
echo "webhook: $deliveries deliveries, $delivered distinct alerts, $found of $expected expected; webhook-id differing from the body's id: $mismatched"
[[ -z $missing ]] || echo "missing alerts: $(echo "$missing" | tr '\n' ' ')"
[[ -z $extra ]] || echo "alerts not expected: $(echo "$extra" | tr '\n' ' ')"
if [[ -s $work/exits.txt ]]; then
	echo "unexpected exits of sessionmon processes (restarted as a restart policy would): $(wc -l <"$work/exits.txt")"
	sed 's/^/  /' "$work/exits.txt"
else
	echo "unexpected exits of sessionmon processes: none"
fi
echo "erasure on every replica: $([[ $erased_ok == 1 ]] && echo ok || echo FAILED) ($erase_note)"
echo "retention on every replica: $([[ $retained_ok == 1 ]] && echo ok || echo FAILED) ($retention_note)"
echo "dashboard: $pages_ok of 9 pages answer 200, /alerts lists $listed of the expected alerts (${pages[*]:-not started})"
echo "total time: $(printf '%.0f' "$(elapsed)") s"
echo "cluster: published $published, stored $stored_distinct distinct, alerts $found of $expected expected, delivered $deliveries"
if [[ $stored_rows == "$published" && $stored_distinct == "$published" && $found == "$expected" &&
	$deliveries == "$expected" && $delivered == "$expected" && $mismatched == 0 && $pages_ok == 9 &&
	$erased_ok == 1 && $retained_ok == 1 && ! -s $work/exits.txt ]]; then
	ok=1
	exit 0
fi
exit 1
