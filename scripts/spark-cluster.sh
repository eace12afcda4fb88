#!/usr/bin/env bash
# A Spark standalone cluster on this machine for the data-parallel tests: one Master and two Workers, each its own
# JVM, started by Spark's own launcher (org.apache.spark.launcher.Main, what spark-class runs) from the jars Maven
# resolves for src/spark, no Spark download. Everything binds to 127.0.0.1 on fixed ports; memory is bounded.
#
#   scripts/spark-cluster.sh start | stop | status | url
#
# State under target/spark-cluster/: home/ (SPARK_HOME: jars/ links into the local Maven repository), *.pid,
# *.log, work-N/ (each Worker's work dir: executor logs). Ports: SPARK_CLUSTER_PORT (default 17077) for the
# Master, +1/+2 for the Workers; web UIs on SPARK_CLUSTER_UI_PORT (default 18080) and +1/+2, loopback only.
# Each Worker offers SPARK_CLUSTER_WORKER_CORES (1) cores and SPARK_CLUSTER_WORKER_MEMORY (1536m) to executors;
# the daemons themselves run with 256 MiB heaps.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/bin/jdk.sh"
dir=$root/target/spark-cluster
home=$dir/home
port=${SPARK_CLUSTER_PORT:-17077}
ui=${SPARK_CLUSTER_UI_PORT:-18080}
cores=${SPARK_CLUSTER_WORKER_CORES:-1}
memory=${SPARK_CLUSTER_WORKER_MEMORY:-1536m}
url=spark://127.0.0.1:$port
names=(master worker-1 worker-2)

export SPARK_HOME=$home SPARK_SCALA_VERSION=2.13 SPARK_LOCAL_IP=127.0.0.1 SPARK_DAEMON_MEMORY=256m
export SPARK_CONF_DIR=$home/conf SPARK_LOCAL_DIRS=$dir/local
export SPARK_MASTER_OPTS="-Dspark.master.rest.enabled=false"

alive() { [ -f "$dir/$1.pid" ] && kill -0 "$(cat "$dir/$1.pid")" 2>/dev/null; }

prepare_home() {  # SPARK_HOME/jars = links to the runtime class path Maven resolves for src/spark (minus our own jars)
  local cp=$dir/classpath.txt
  if [ ! -s "$cp" ] || [ "$root/src/spark/pom.xml" -nt "$cp" ]; then
    mkdir -p "$dir"
    (cd "$root" && mvn -q -B -ntp -f src/spark/pom.xml dependency:build-classpath -DincludeScope=runtime \
        -DexcludeGroupIds=dev.tornadolora -Dmdep.outputFile="$cp.tmp") >&2 \
      || { echo "spark-cluster: cannot resolve Spark's jars (build the project first: ./build test, or mvn install -DskipTests)" >&2; exit 1; }
    mv "$cp.tmp" "$cp"
    rm -rf "$home/jars"
  fi
  if [ ! -d "$home/jars" ]; then
    mkdir -p "$home/jars.tmp" "$home/conf"
    tr ':' '\n' < "$cp" | while IFS= read -r jar; do [ -n "$jar" ] && ln -s "$jar" "$home/jars.tmp/"; done
    mv "$home/jars.tmp" "$home/jars"
  fi
}

launch() {  # launch NAME CLASS ARGS...: Spark's launcher builds the java command line (module options included)
  local name=$1; shift
  local cmd=() arg
  while IFS= read -r -d '' arg; do arg=${arg#$'\n'}; [ -n "$arg" ] && cmd+=("$arg"); done < <("$JAVA_HOME/bin/java" -Xmx128m -cp "$home/jars/*" org.apache.spark.launcher.Main "$@")
  [ ${#cmd[@]} -gt 0 ] || { echo "spark-cluster: Spark's launcher printed no command for $name" >&2; exit 1; }
  nohup setsid "${cmd[@]}" > "$dir/$name.log" 2>&1 < /dev/null &
  echo $! > "$dir/$name.pid"
}

wait_for() {  # wait_for FILE PATTERN COUNT SECONDS WHAT
  local i c
  for ((i = 0; i < $4 * 2; i++)); do
    c=$(grep -c -- "$2" "$1" 2>/dev/null || true)
    [ "${c:-0}" -ge "$3" ] && return 0
    sleep 0.5
  done
  echo "spark-cluster: $5 did not happen within $4 s; see $1" >&2
  return 1
}

start() {
  if alive master || alive worker-1 || alive worker-2; then
    echo "spark-cluster: already running ($(status_line)); stop it first" >&2; return 1
  fi
  prepare_home
  rm -rf "$dir/local"; mkdir -p "$dir/local"
  launch master org.apache.spark.deploy.master.Master --host 127.0.0.1 --port "$port" --webui-port "$ui"
  wait_for "$dir/master.log" "Starting Spark master at $url" 1 60 "the Master's start" || { stop; return 1; }
  local n
  for n in 1 2; do
    mkdir -p "$dir/work-$n"
    launch "worker-$n" org.apache.spark.deploy.worker.Worker --host 127.0.0.1 --port $((port + n)) \
      --webui-port $((ui + n)) --cores "$cores" --memory "$memory" --work-dir "$dir/work-$n" "$url"
  done
  wait_for "$dir/master.log" "Registering worker" 2 90 "the registration of both Workers" || { stop; return 1; }
  echo "spark-cluster: running at $url ($(status_line)); logs in $dir"
}

stop_one() {  # TERM, then KILL after 10 s; a Worker's executors (its children) go first
  local name=$1 pid i child
  alive "$name" || { rm -f "$dir/$name.pid"; return 0; }
  pid=$(cat "$dir/$name.pid")
  for child in $(ps -o pid= --ppid "$pid" 2>/dev/null); do kill -TERM "$child" 2>/dev/null || true; done
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 20; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then
    for child in $(ps -o pid= --ppid "$pid" 2>/dev/null); do kill -KILL "$child" 2>/dev/null || true; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/$name.pid"
}

stop() {
  stop_one worker-2; stop_one worker-1; stop_one master
  echo "spark-cluster: stopped"
}

status_line() {
  local name out=()
  for name in "${names[@]}"; do
    if alive "$name"; then out+=("$name pid $(cat "$dir/$name.pid")"); else out+=("$name stopped"); fi
  done
  local IFS=,; echo "${out[*]}"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) echo "spark-cluster: $url: $(status_line)"; alive master && alive worker-1 && alive worker-2 ;;
  url) echo "$url" ;;
  *) echo "usage: scripts/spark-cluster.sh start|stop|status|url" >&2; exit 2 ;;
esac
