#!/usr/bin/env bash
# TLS termination, peer comparison: the same TLS workload, in one run on
# loopback, through `starttls proxy --protocol tcp --implicit`, stunnel4
# and HAProxy (both from Debian), with the same certificate (ECDSA P-256 by
# default, BENCH_KEY=rsa for RSA 2048), the same backend (the load tool's
# own plaintext sink) and the same TLS (1.3, X25519, no resumption: the
# load tool offers nothing else). Measured per proxy by the load tool
# (internal/proxyload), from the outside:
#
#   - bulk throughput, MB/s, backend→client and client→backend, through one
#     connection and through 64 (BENCH_BULK_CONNS)
#   - full TLS handshakes per second with 16 concurrent clients
#     (BENCH_HS_CLIENTS), each connection carrying one byte there and back
#   - p50/p99 added latency of a 64-byte echo over an established
#     connection, against the same echo straight to the backend
#   - memory per idle connection: RSS (VmRSS, /proc) of all the proxy's
#     processes with 5,000 (BENCH_IDLE) idle TLS connections held, minus a
#     baseline taken after a warm-up, divided by the connections
#   - CPU seconds per GB relayed: utime+stime (/proc) of the proxy's
#     processes over the four bulk phases
#
# Every timed phase lasts at most BENCH_PHASE (default 5s) and moves at
# most a fixed count; every program runs under `timeout`. One table, with
# the absolute numbers and the ratios of starttls to stunnel and HAProxy,
# is printed and written as Markdown to BENCH_OUT.
#
#   bash scripts/bench-proxy.sh          (`make bench-proxy`; ~8 minutes)
#
# Environment:
#   BENCH_OUT=FILE          the Markdown table (default /tmp/starttls-bench-proxy-DATE.md;
#                           logs and configurations in FILE without .md, plus .work/)
#   BENCH_STARTTLS=PATH     use this starttls binary instead of building one
#   BENCH_KEY=ecdsa|rsa     the certificate's key: ECDSA P-256 (default) or RSA 2048
#   BENCH_PHASE=5s BENCH_IDLE=5000 BENCH_BULK_CONNS=64 BENCH_HS_CLIENTS=16
#   BENCH_ROUNDS=3          rounds in turn; the table shows each number's median
#   BENCH_PROXIES="starttls stunnel haproxy"   which ones (the first is compared to the others)
#
# Needs root when stunnel4 or haproxy is missing (apt-get) and to raise the
# open-files limit for 5,000 connections. Loopback only; free ports are
# picked by the load tool. Everything started is stopped by its pid on exit.
set -Eeuo pipefail
umask 022
cd "$(dirname "$0")/.."

OUT=${BENCH_OUT:-/tmp/starttls-bench-proxy-$(date +%Y%m%d-%H%M%S).md}
KEY=${BENCH_KEY:-ecdsa}
PHASE=${BENCH_PHASE:-5s}
IDLE=${BENCH_IDLE:-5000}
BULK_CONNS=${BENCH_BULK_CONNS:-64}
HS_CLIENTS=${BENCH_HS_CLIENTS:-16}
ROUNDS=${BENCH_ROUNDS:-3}
read -r -a PROXIES <<<"${BENCH_PROXIES:-starttls stunnel haproxy}"
APT_TIMEOUT=600
BENCH_TIMEOUT=600 # one proxy's whole bench run
START_TIMEOUT=15

T0=$(date +%s)
log() { printf '== [%3ds] %s\n' "$(($(date +%s) - T0))" "$*" >&2; }
die() { printf 'bench-proxy.sh: %s\n' "$*" >&2; exit 1; }
NOTES=()
note() { NOTES+=("$*"); log "note: $*"; }

case $KEY in ecdsa | rsa) ;; *) die "BENCH_KEY must be ecdsa or rsa, not $KEY" ;; esac
[[ $IDLE =~ ^[0-9]+$ && $BULK_CONNS =~ ^[0-9]+$ && $HS_CLIENTS =~ ^[0-9]+$ && $ROUNDS =~ ^[1-9]$ ]] ||
	die "BENCH_IDLE, BENCH_BULK_CONNS and BENCH_HS_CLIENTS must be numbers, BENCH_ROUNDS 1 to 9"
[ ${#PROXIES[@]} -gt 0 ] || die "BENCH_PROXIES is empty"
for p in "${PROXIES[@]}"; do
	case $p in starttls | stunnel | haproxy) ;; *) die "unknown proxy $p (starttls, stunnel, haproxy)" ;; esac
done
command -v go >/dev/null || die "go is not on PATH"
mkdir -p "$(dirname "$OUT")"
OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")
WORK=${OUT%.md}.work
rm -rf "$WORK"
mkdir -p "$WORK"

# ---------------------------------------------------------------------------
# Processes: every one started is recorded and stopped by its pid.
# ---------------------------------------------------------------------------
PIDS=()
stop_pid() { # pid: SIGTERM, then SIGKILL after 5s
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
		sleep 0.1
	done
	log "pid $pid did not stop on SIGTERM; killing it"
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
cleanup() {
	local rc=$? i
	trap - EXIT INT TERM
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_port PORT PID: until 127.0.0.1:PORT accepts, or the process died, or
# START_TIMEOUT.
wait_port() {
	local port=$1 pid=$2 deadline=$(($(date +%s) + START_TIMEOUT))
	until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
		kill -0 "$pid" 2>/dev/null || return 1
		[ "$(date +%s)" -lt $deadline ] || return 1
		sleep 0.1
	done
}

# ---------------------------------------------------------------------------
# Packages: stunnel4 and haproxy from Debian, installed when missing.
# ---------------------------------------------------------------------------
installed() { dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null | grep -qx installed; }
want=()
for p in openssl stunnel4 haproxy; do installed "$p" || want+=("$p"); done
if [ ${#want[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || die "missing ${want[*]}: run as root to install them with apt-get"
	log "installing: ${want[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# No init system, and no packaged service started on its standard port.
	POLICY_RC=/usr/sbin/policy-rc.d ADDED_POLICY=
	if [ ! -e "$POLICY_RC" ]; then
		printf '#!/bin/sh\n# added by starttls scripts/bench-proxy.sh for the install\nexit 101\n' >"$POLICY_RC"
		chmod 755 "$POLICY_RC"
		ADDED_POLICY=1
	fi
	rc=0
	{
		timeout "$APT_TIMEOUT" apt-get update -q &&
			timeout "$APT_TIMEOUT" apt-get install -y -q --no-install-recommends "${want[@]}"
	} </dev/null >"$WORK/apt.log" 2>&1 || rc=$?
	[ -z "$ADDED_POLICY" ] || rm -f "$POLICY_RC"
	[ $rc = 0 ] || { tail -n 20 "$WORK/apt.log" >&2; die "apt-get failed (exit $rc); log: $WORK/apt.log"; }
fi
STUNNEL=$(command -v stunnel4 || command -v stunnel || true)
HAPROXY=$(command -v haproxy || true)

# 5,000 idle connections are 10,000 descriptors in a proxy.
need_fds=$((2 * IDLE + 1000))
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt $need_fds ]; then
	ulimit -Hn $need_fds 2>/dev/null || note "open-files hard limit $hard < $need_fds (not root?): the idle phase may fall short"
fi
ulimit -Sn "$(ulimit -Hn)"
log "open-files limit $(ulimit -n)"

# ---------------------------------------------------------------------------
# Build, certificate, backend
# ---------------------------------------------------------------------------
log "building the load tool (internal/proxyload)"
go build -o "$WORK/bin/proxyload" ./internal/proxyload || die "go build ./internal/proxyload failed"
LOAD=$WORK/bin/proxyload
if [ -n "${BENCH_STARTTLS:-}" ]; then
	STARTTLS=$BENCH_STARTTLS
else
	log "building starttls"
	go build -o "$WORK/bin/starttls" ./cmd/starttls || die "go build ./cmd/starttls failed"
	STARTTLS=$WORK/bin/starttls
fi

PKI=$WORK/pki
mkdir -p "$PKI"
if [ "$KEY" = rsa ]; then
	KEYARGS=(-newkey rsa:2048) KEYNAME="RSA 2048"
else
	KEYARGS=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) KEYNAME="ECDSA P-256"
fi
log "CA and $KEYNAME server certificate (127.0.0.1) in $PKI"
openssl req -x509 "${KEYARGS[@]}" -nodes -sha256 -days 2 -keyout "$PKI/ca.key" -out "$PKI/ca.pem" \
	-subj "/CN=starttls bench CA" -addext "basicConstraints=critical,CA:TRUE" \
	-addext "keyUsage=critical,keyCertSign" 2>/dev/null
openssl req -new "${KEYARGS[@]}" -nodes -sha256 -keyout "$PKI/server.key" -out "$PKI/server.csr" \
	-subj "/CN=127.0.0.1" 2>/dev/null
printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
	"extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost" >"$PKI/server.ext"
openssl x509 -req -sha256 -days 2 -in "$PKI/server.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" \
	-CAcreateserial -extfile "$PKI/server.ext" -out "$PKI/server.pem" 2>/dev/null
openssl verify -CAfile "$PKI/ca.pem" "$PKI/server.pem" >/dev/null || die "the server certificate does not verify"
cat "$PKI/server.pem" "$PKI/server.key" >"$PKI/haproxy.pem" # HAProxy wants both in one file
chmod 600 "$PKI"/*.key "$PKI/haproxy.pem"

"$LOAD" sink --listen 127.0.0.1:0 >"$WORK/sink.out" 2>"$WORK/sink.err" &
PIDS+=($!)
SINK_PID=$!
for _ in $(seq 50); do
	grep -q '^listening ' "$WORK/sink.out" 2>/dev/null && break
	sleep 0.1
done
BACKEND=$(sed -n 's/^listening //p' "$WORK/sink.out")
[ -n "$BACKEND" ] || die "the sink did not start: $(cat "$WORK/sink.err")"
log "backend (proxyload sink) on $BACKEND, pid $SINK_PID"

# ---------------------------------------------------------------------------
# The proxies: each started in the foreground (so its pid is the one to
# measure), benched, stopped.
# ---------------------------------------------------------------------------
version_of() { # the whole output first: with pipefail, head closing early is a failure
	local out=''
	case $1 in
	starttls) out=$("$STARTTLS" version 2>&1 || true) ;;
	stunnel) out=$("$STUNNEL" -version 2>&1 | grep '^stunnel' || true) ;;
	haproxy) out=$("$HAPROXY" -v 2>&1 || true) ;;
	esac
	out=${out%%$'\n'*}
	[ "$1" != haproxy ] || out=$(cut -d' ' -f1-3 <<<"$out")
	[ "$1" != stunnel ] || out=$(cut -d' ' -f1-2 <<<"$out")
	printf '%s\n' "$out"
}

# start_proxy NAME PORT: starts it on 127.0.0.1:PORT; its pid in PROXY_PID.
start_proxy() {
	local name=$1 port=$2 d=$WORK/$1
	mkdir -p "$d"
	case $name in
	starttls)
		# Logging at "warn", as for stunnel below.
		"$STARTTLS" proxy --listen "127.0.0.1:$port" --protocol tcp --implicit --backend "$BACKEND" \
			--cert "$PKI/server.pem" --key "$PKI/server.key" --log-level warn \
			</dev/null >"$d/stdout.log" 2>"$d/stderr.log" &
		;;
	stunnel)
		# Logging at "warning": no line per connection (HAProxy logs
		# nothing without a log target either). TCP_NODELAY on both legs,
		# as the other two set it.
		cat >"$d/stunnel.conf" <<-EOF
			foreground = yes
			pid =
			debug = 4
			output = $d/stunnel.log
			[bench]
			accept = 127.0.0.1:$port
			connect = $BACKEND
			cert = $PKI/server.pem
			key = $PKI/server.key
			sslVersionMin = TLSv1.3
			sslVersionMax = TLSv1.3
			ciphersuites = $SUITE
			socket = l:TCP_NODELAY=1
			socket = r:TCP_NODELAY=1
		EOF
		"$STUNNEL" "$d/stunnel.conf" </dev/null >"$d/stdout.log" 2>"$d/stderr.log" &
		;;
	haproxy)
		# Threads: HAProxy's default, one per CPU (the Go proxy's
		# GOMAXPROCS; stunnel runs a thread per connection).
		cat >"$d/haproxy.cfg" <<-EOF
			global
			  maxconn $((IDLE + 2000))
			  ssl-default-bind-options ssl-min-ver TLSv1.3
			  ssl-default-bind-ciphersuites $SUITE
			defaults
			  mode tcp
			  timeout connect 10s
			  timeout client 5m
			  timeout server 5m
			  maxconn $((IDLE + 2000))
			frontend bench
			  bind 127.0.0.1:$port ssl crt $PKI/haproxy.pem ssl-min-ver TLSv1.3
			  default_backend sink
			backend sink
			  server sink $BACKEND
		EOF
		"$HAPROXY" -db -f "$d/haproxy.cfg" </dev/null >"$d/stdout.log" 2>"$d/stderr.log" &
		;;
	esac
	PROXY_PID=$!
	PIDS+=("$PROXY_PID")
}

# The TLS 1.3 suite: what crypto/tls picks on a CPU with AES instructions
# (it cannot be configured in Go). OpenSSL's own default order puts
# AES-256-GCM first, which HAProxy (server order) would choose: both OpenSSL
# proxies are held to the one suite, and the load tool reports what each
# negotiated.
SUITE=TLS_AES_128_GCM_SHA256

# bench_one NAME ROUND: start, measure, stop; the result in RESULTS.
bench_one() {
	local name=$1 round=$2 port pid ver out=$WORK/$1.$2
	port=$("$LOAD" freeport)
	start_proxy "$name" "$port"
	pid=$PROXY_PID
	if ! wait_port "$port" "$pid"; then
		note "$name (round $round) did not listen on 127.0.0.1:$port: $(tail -n 3 "$WORK/$name/stderr.log" | tr '\n' ' ')"
		stop_pid "$pid"
		return 0
	fi
	ver=$(version_of "$name")
	log "round $round/$ROUNDS: $name ($ver) pid $pid on 127.0.0.1:$port"
	local rc=0
	timeout "$BENCH_TIMEOUT" "$LOAD" bench --name "$name" --version "$ver" --addr "127.0.0.1:$port" \
		--backend "$BACKEND" --cert "$PKI/server.pem" --ca "$PKI/ca.pem" --pid "$pid" \
		--phase "$PHASE" --idle "$IDLE" --bulk-conns "$BULK_CONNS" --handshake-clients "$HS_CLIENTS" \
		>"$out.json" 2> >(tee "$out.log" >&2) || rc=$?
	if [ $rc = 0 ]; then
		RESULTS+=("$out.json")
	else
		note "$name (round $round): the benchmark failed (exit $rc; log $out.log)"
	fi
	kill -0 "$pid" 2>/dev/null || note "$name exited during its benchmark (round $round; see $WORK/$name/stderr.log)"
	stop_pid "$pid"
}

# Rounds in turn (A B C, A B C, …), the median of each number per proxy:
# the machine's other load then falls on every proxy alike.
RESULTS=()
for round in $(seq "$ROUNDS"); do
	for name in "${PROXIES[@]}"; do bench_one "$name" "$round"; done
done
stop_pid "$SINK_PID"

[ ${#RESULTS[@]} -gt 0 ] || die "no proxy could be measured"
[[ ${RESULTS[0]} == "$WORK/${PROXIES[0]}."* ]] ||
	note "${PROXIES[0]} has no result: the ratios compare another proxy to the rest"

title="TLS termination on loopback: ${PROXIES[*]} ($(date -u +%Y-%m-%d))"
note "same workload for all: $KEYNAME certificate, TLS 1.3 with X25519 only, no session resumption; backend: proxyload sink (plaintext) on loopback; the load tool runs on the same machine ($(nproc) CPUs, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), so absolute numbers include its share of the CPUs"
note "$ROUNDS round(s), median per number; phases of $PHASE each; MB = 10^6 bytes, GB = 10^9 bytes; added latency = the proxy's percentile minus the direct-to-backend percentile of the same run; memory = RSS delta of the proxy's processes / idle connections held; ratios are first-column / other (read with the 'better' column)"
args=()
for n in "${NOTES[@]}"; do args+=(--note "$n"); done
echo
"$LOAD" table --title "$title" --out "$OUT" "${args[@]}" "${RESULTS[@]}"
echo
log "table written to $OUT; logs in $WORK"
