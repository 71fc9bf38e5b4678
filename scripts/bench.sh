#!/usr/bin/env bash
# Peer comparison: starttls against openssl s_client, Postfix's
# posttls-finger and testssl.sh, on the SAME endpoints of one
# `starttls lab` on loopback, timed with hyperfine, peak memory with
# /usr/bin/time -v. The machine may be shared and noisy: read the ratios,
# not the absolute times.
#
#   bash scripts/bench.sh          (`make bench-peers`)
#
# Environment:
#   BENCH_RUNS=N            timed runs per command (default 20)
#   BENCH_WARMUP=N          warm-up runs per command (default 2)
#   BENCH_RSS_RUNS=N        runs under /usr/bin/time -v per command; the
#                           largest max RSS is reported (default 3)
#   BENCH_TESTSSL=0         skip testssl.sh (one run takes a minute or more)
#   BENCH_TESTSSL_RUNS=N    timed runs of testssl.sh (default 1, no warm-up)
#   BENCH_OUT=DIR           results directory (default /tmp/starttls-bench-DATE)
#   BENCH_STARTTLS=PATH     use this starttls binary instead of building one
#
# Installs what is missing from Debian's packages (hyperfine, jq, time,
# openssl, postfix, testssl.sh) when run as root; a peer that cannot be
# installed is skipped with a note. Everything runs on 127.0.0.1. Every
# loop is bounded in runs and in time (timeout), and the lab, the only
# long-lived process, is stopped by its pid on exit.
set -Eeuo pipefail
umask 022
cd "$(dirname "$0")/.."
ROOT=$PWD

posint() {
	if ! [[ $2 =~ ^[0-9]+$ ]] || [ "$2" -lt "$3" ]; then
		echo "bench.sh: $1=$2: want an integer >= $3" >&2
		exit 2
	fi
}
RUNS=${BENCH_RUNS:-20}
WARMUP=${BENCH_WARMUP:-2}
RSS_RUNS=${BENCH_RSS_RUNS:-3}
TESTSSL_ON=${BENCH_TESTSSL:-1}
TESTSSL_RUNS=${BENCH_TESTSSL_RUNS:-1}
posint BENCH_RUNS "$RUNS" 1
posint BENCH_WARMUP "$WARMUP" 0
posint BENCH_RSS_RUNS "$RSS_RUNS" 1
posint BENCH_TESTSSL_RUNS "$TESTSSL_RUNS" 1
# Time bounds (seconds): a group of quick commands, one sanity or memory
# run, one testssl.sh run, the lab start-up, apt.
GROUP_TIMEOUT=$((60 + 4 * (RUNS + WARMUP)))
ONE_TIMEOUT=20
TESTSSL_TIMEOUT=170
LAB_TIMEOUT=20
APT_TIMEOUT=600

OUT=${BENCH_OUT:-/tmp/starttls-bench-$(date +%Y%m%d-%H%M%S)}
T0=$(date +%s)
log() { printf '== [%3ds] %s\n' "$(($(date +%s) - T0))" "$*" >&2; }
die() { printf 'bench.sh: %s\n' "$*" >&2; exit 1; }
NOTES=()
note() { NOTES+=("$*"); log "note: $*"; }

# ---------------------------------------------------------------------------
# Packages
# ---------------------------------------------------------------------------
# package:command pairs; the first two are needed by the script itself.
NEEDED=(hyperfine:hyperfine jq:jq time:/usr/bin/time openssl:openssl postfix:posttls-finger testssl.sh:testssl)

installed() { dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null | grep -qx installed; }
candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}'; }

install_missing() {
	local want=() p pair
	for pair in "${NEEDED[@]}"; do
		p=${pair%%:*}
		[ "$p" = testssl.sh ] && [ "$TESTSSL_ON" = 0 ] && continue
		installed "$p" || want+=("$p")
	done
	[ ${#want[@]} -gt 0 ] || { log "packages present (apt skipped)"; return 0; }
	if [ "$(id -u)" != 0 ]; then
		note "not root: cannot install ${want[*]}; what is missing is skipped"
		return 0
	fi
	export DEBIAN_FRONTEND=noninteractive
	local c ok=()
	c=$(candidate "${want[0]}")
	if [ -z "$c" ] || [ "$c" = "(none)" ]; then
		log "apt-get update"
		timeout "$APT_TIMEOUT" apt-get update -q </dev/null >>"$OUT/apt.log" 2>&1 || note "apt-get update failed (see $OUT/apt.log)"
	fi
	for p in "${want[@]}"; do
		c=$(candidate "$p")
		if [ -z "$c" ] || [ "$c" = "(none)" ]; then
			note "package $p has no installation candidate (apt-cache policy $p): skipped"
		else
			ok+=("$p")
		fi
	done
	[ ${#ok[@]} -gt 0 ] || return 0
	log "installing: ${ok[*]}"
	# Postfix: no debconf questions and no service started by the install
	# (same approach as scripts/interop.sh).
	debconf-set-selections <<-EOF
		postfix postfix/main_mailer_type select No configuration
		postfix postfix/mailname string bench.invalid
	EOF
	local policy=/usr/sbin/policy-rc.d added=''
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\n# added by starttls scripts/bench.sh for the install\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		added=1
	fi
	timeout "$APT_TIMEOUT" apt-get install -y -q --no-install-recommends "${ok[@]}" </dev/null >>"$OUT/apt.log" 2>&1 ||
		note "apt-get install ${ok[*]} failed (see $OUT/apt.log)"
	[ -z "$added" ] || rm -f "$policy"
}

# ---------------------------------------------------------------------------
# The lab, stopped by pid on exit
# ---------------------------------------------------------------------------
LAB_PID=
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$LAB_PID" ] && kill -0 "$LAB_PID" 2>/dev/null; then
		kill -TERM "$LAB_PID" 2>/dev/null || true
		local i
		for i in $(seq 50); do
			kill -0 "$LAB_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$LAB_PID" 2>/dev/null && kill -KILL "$LAB_PID" 2>/dev/null
		wait "$LAB_PID" 2>/dev/null || true
		log "lab stopped (pid $LAB_PID)"
	fi
	exit $rc
}

start_lab() {
	"$BIN" lab --json --listen 127.0.0.1 >"$OUT/lab.json" 2>"$OUT/lab.log" </dev/null &
	LAB_PID=$!
	local deadline=$(($(date +%s) + LAB_TIMEOUT))
	until jq -e '.ca and (.endpoints | length > 0)' "$OUT/lab.json" >/dev/null 2>&1; do
		kill -0 "$LAB_PID" 2>/dev/null || { cat "$OUT/lab.log" >&2; die "the lab exited"; }
		[ "$(date +%s)" -lt "$deadline" ] || die "the lab printed no endpoints within ${LAB_TIMEOUT}s"
		sleep 0.1
	done
	CA=$(jq -r .ca "$OUT/lab.json")
	log "lab running (pid $LAB_PID), CA $CA"
}

# url NAME: the URL of a correct lab endpoint.
url() {
	local u
	u=$(jq -r --arg n "$1" '.endpoints[] | select(.name == $n and .broken == false) | .url' "$OUT/lab.json")
	[ -n "$u" ] || die "the lab has no correct endpoint $1"
	echo "$u"
}

# ---------------------------------------------------------------------------
# Sanity, memory, timing
# ---------------------------------------------------------------------------
# sanity NAME CMD MARKER: one run must exit 0 and print MARKER; the output
# is kept in $OUT/sanity/NAME.out.
sanity() {
	local name=$1 cmd=$2 marker=$3 f=$OUT/sanity/$1.out rc=0
	timeout "$ONE_TIMEOUT" sh -c "$cmd" >"$f" 2>&1 || rc=$?
	if [ $rc != 0 ] || ! grep -qF -- "$marker" "$f"; then
		note "$name: sanity run failed (exit $rc, marker \"$marker\" $(grep -qF -- "$marker" "$f" && echo found || echo missing)); see $f"
		return 1
	fi
}

# rss NAME CMD: the largest maximum resident set size (KiB) over RSS_RUNS
# runs, recorded in $OUT/rss.tsv. sh execs the command, so the figure is
# the command's own process (for a command that forks, its largest child).
rss() {
	local name=$1 cmd=$2 f=$OUT/rss/$1.txt i
	[ -x /usr/bin/time ] || return 0
	: >"$f"
	for i in $(seq "$RSS_RUNS"); do
		timeout "$ONE_TIMEOUT" /usr/bin/time -v -a -o "$f" sh -c "exec $cmd" >/dev/null 2>&1 || true
	done
	record_rss "$name" "$f"
}

record_rss() {
	local kb
	kb=$(awk -F': ' '/Maximum resident set size/ {if ($2 > m) m = $2} END {print m + 0}' "$2")
	printf '%s\t%s\n' "$1" "$kb" >>"$OUT/rss.tsv"
}

# group GROUP RUNS WARMUP TIMEOUT FLAGS NAME CMD [NAME CMD...]: one
# hyperfine run (FLAGS: extra hyperfine flags, or ""); results in
# $OUT/GROUP.{json,md,txt}.
group() {
	local g=$1 runs=$2 warmup=$3 tmo=$4 flags=$5 rc=0
	shift 5
	local args=()
	[ -z "$flags" ] || args+=("$flags")
	while [ $# -gt 0 ]; do
		args+=(-n "$1" "$2")
		printf '%s\t%s\n' "$1" "$2" >>"$OUT/commands.tsv"
		shift 2
	done
	log "hyperfine $g: $((${#args[@]} / 3)) command(s) x $runs runs (+$warmup warm-up), bounded to ${tmo}s"
	timeout "$tmo" hyperfine --runs "$runs" --warmup "$warmup" --style basic \
		--export-json "$OUT/$g.json" --export-markdown "$OUT/$g.md" "${args[@]}" \
		</dev/null >"$OUT/$g.txt" 2>&1 || rc=$?
	if [ $rc != 0 ]; then
		note "hyperfine $g failed (exit $rc$([ $rc = 124 ] && echo ": timed out after ${tmo}s")); see $OUT/$g.txt"
		rm -f "$OUT/$g.json"
	fi
}

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
# One TSV row per command: group, name, mean, stddev, runs, ratio to the
# group's baseline (its first command, or the named one), max RSS in KiB.
summarize() {
	local g label base f spec rows=$OUT/summary.tsv
	: >"$rows"
	for spec in "$@"; do
		IFS='|' read -r label base f <<<"$spec"
		for g in $f; do
			[ -f "$OUT/$g.json" ] || continue
			jq -r --arg grp "$label" '.results[] | [$grp, .command, .mean, (.stddev // 0), (.times | length)] | @tsv' "$OUT/$g.json"
		done | awk -F'\t' -v OFS='\t' -v base="$base" -v rssf="$OUT/rss.tsv" '
			BEGIN { while ((getline l < rssf) > 0) { split(l, a, "\t"); rss[a[1]] = a[2] } }
			{ row[NR] = $0; name[NR] = $2; mean[NR] = $3; if ($2 == base) b = $3 }
			END { for (i = 1; i <= NR; i++) print row[i], (b > 0 ? mean[i] / b : 0), (name[i] in rss ? rss[name[i]] : "") }' >>"$rows"
	done
}

fmt_time() { awk -v s="$1" 'BEGIN { if (s >= 10) printf "%.2f s", s; else printf "%.1f ms", s * 1000 }'; }

print_table() {
	local rows=$OUT/summary.tsv md=$OUT/summary.md last='' label name mean sd n ratio kb t r m
	printf '\n%-13s %-36s %20s %5s %9s %9s\n' GROUP COMMAND "MEAN ± σ" RUNS "RATIO" "MAX RSS"
	printf '%s\n' "------------------------------------------------------------------------------------------------"
	{
		echo "| group | command | mean ± σ | runs | ratio to starttls | max RSS |"
		echo "|---|---|---:|---:|---:|---:|"
	} >"$md"
	while IFS=$'\t' read -r label name mean sd n ratio kb; do
		t="$(fmt_time "$mean") ± $([ "$n" -gt 1 ] && fmt_time "$sd" || echo "n/a")"
		r=$(awk -v x="$ratio" 'BEGIN { printf "%.2fx", x }')
		m=$([ -n "$kb" ] && awk -v k="$kb" 'BEGIN { printf "%.1f MiB", k / 1024 }' || echo n/a)
		printf '%-13s %-36s %20s %5s %9s %9s\n' "$([ "$label" = "$last" ] || echo "$label")" "$name" "$t" "$n" "$r" "$m"
		echo "| $label | \`$name\` | $t | $n | $r | $m |" >>"$md"
		last=$label
	done <"$rows"
	echo
	echo "ratio: the command's mean time over the group's starttls baseline (connect rows: starttls connect;"
	echo "audit rows: starttls check); above 1 means slower than starttls. Max RSS: largest over $RSS_RUNS run(s)"
	echo "under /usr/bin/time -v (testssl.sh: over its timed runs)."
}

# ---------------------------------------------------------------------------
main() {
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	mkdir -p "$OUT/sanity" "$OUT/rss" "$OUT/posttls-finger"
	: >"$OUT/rss.tsv"
	: >"$OUT/commands.tsv"
	log "results in $OUT (runs $RUNS, warm-up $WARMUP)"
	install_missing
	command -v hyperfine >/dev/null || die "hyperfine is not installed and could not be"
	command -v jq >/dev/null || die "jq is not installed and could not be"
	[ -x /usr/bin/time ] || note "/usr/bin/time missing (package time): no memory figures"

	if [ -n "${BENCH_STARTTLS:-}" ]; then
		BIN=$BENCH_STARTTLS
	else
		command -v go >/dev/null || die "go is not on PATH; set BENCH_STARTTLS to a starttls binary"
		log "go build -o $OUT/starttls ./cmd/starttls"
		go build -o "$OUT/starttls" ./cmd/starttls
		BIN=$OUT/starttls
	fi
	start_lab

	local smtp imap pop3 hp_smtp hp_imap hp_pop3 port
	smtp=$(url smtp) imap=$(url imap) pop3=$(url pop3)
	hp_smtp=${smtp#*://} hp_imap=${imap#*://} hp_pop3=${pop3#*://}
	printf 'QUIT\n' >"$OUT/stdin-smtp.txt"
	printf 'a LOGOUT\n' >"$OUT/stdin-imap.txt"
	printf 'QUIT\n' >"$OUT/stdin-pop3.txt"
	# posttls-finger reads a main.cf (scripts/interop.sh does the same).
	printf 'compatibility_level = 3.6\nmyhostname = client.bench.invalid\n' >"$OUT/posttls-finger/main.cf"
	export MAIL_CONFIG=$OUT/posttls-finger

	# 1. One STARTTLS connection with certificate display, per protocol.
	local proto u hp cmds name cmd
	for proto in smtp imap pop3; do
		case $proto in
		smtp) u=$smtp hp=$hp_smtp ;;
		imap) u=$imap hp=$hp_imap ;;
		pop3) u=$pop3 hp=$hp_pop3 ;;
		esac
		cmds=()
		name="starttls connect $proto"
		cmd="$BIN connect $u --ca $CA < $OUT/stdin-$proto.txt"
		sanity "$name" "$cmd" "certificate verified" || die "starttls connect $proto failed its sanity run"
		cmds+=("$name" "$cmd")
		if command -v openssl >/dev/null; then
			# -ign_eof: wait for the server to close after QUIT/LOGOUT, as
			# starttls connect does (and no "Q" command letter); -crlf: the
			# lab refuses bare LF; -verify_ip: the name check starttls does.
			name="openssl s_client $proto"
			cmd="openssl s_client -starttls $proto -connect $hp -CAfile $CA -verify_return_error -verify_ip 127.0.0.1 -crlf -ign_eof < $OUT/stdin-$proto.txt"
			sanity "$name" "$cmd" "Verify return code: 0 (ok)" && cmds+=("$name" "$cmd")
		else
			note "openssl s_client: not installed, skipped"
		fi
		if [ $proto = smtp ]; then
			if command -v posttls-finger >/dev/null; then
				# -l secure -F: verified chain; Postfix does not match IP
				# SANs, so the name matched is "localhost" (also in the
				# lab's certificate). -C prints the chain.
				port=${hp##*:}
				name="posttls-finger smtp"
				cmd="posttls-finger -l secure -F $CA -C -t 10 -T 10 '[127.0.0.1]:$port' localhost"
				sanity "$name" "$cmd" "Verified TLS connection established" && cmds+=("$name" "$cmd")
			else
				note "posttls-finger: not installed (package postfix), skipped"
			fi
		fi
		local i
		for ((i = 0; i < ${#cmds[@]}; i += 2)); do rss "${cmds[i]}" "${cmds[i + 1]}"; done
		group "connect-$proto" "$RUNS" "$WARMUP" "$GROUP_TIMEOUT" "" "${cmds[@]}"
	done
	# 1b. The other protocols: starttls connect against openssl s_client
	# -starttls PROTO on the same lab endpoint. Text protocols end with
	# their quit command and wait for the server to close (-ign_eof, as
	# above); the binary ones (LDAP, PostgreSQL, MySQL) end at the end of
	# stdin, so starttls connect runs with --linger 0s there.
	local more="xmpp nntp sieve ftp irc ldap postgres mysql" extra quit
	for proto in $more; do
		u=$(url "$proto") hp=${u#*://}
		extra="" quit=""
		case $proto in
		xmpp) quit='</stream:stream>' extra="-xmpphost 127.0.0.1" ;;
		sieve) quit=LOGOUT ;;
		nntp | ftp | irc) quit=QUIT ;;
		esac
		cmds=()
		name="starttls connect $proto"
		if [ -n "$quit" ]; then
			printf '%s\n' "$quit" >"$OUT/stdin-$proto.txt"
			cmd="$BIN connect $u --ca $CA < $OUT/stdin-$proto.txt"
		else
			: >"$OUT/stdin-$proto.txt"
			cmd="$BIN connect $u --ca $CA --linger 0s < $OUT/stdin-$proto.txt"
		fi
		sanity "$name" "$cmd" "certificate verified" || { note "starttls connect $proto failed its sanity run: group skipped"; continue; }
		cmds+=("$name" "$cmd")
		name="openssl s_client $proto"
		cmd="openssl s_client -starttls $proto $extra -connect $hp -CAfile $CA -verify_return_error -verify_ip 127.0.0.1"
		if [ -n "$quit" ]; then
			cmd="$cmd -crlf -ign_eof"
		fi
		cmd="$cmd < $OUT/stdin-$proto.txt"
		sanity "$name" "$cmd" "Verify return code: 0 (ok)" && cmds+=("$name" "$cmd")
		for ((i = 0; i < ${#cmds[@]}; i += 2)); do rss "${cmds[i]}" "${cmds[i + 1]}"; done
		group "connect-$proto" "$RUNS" "$WARMUP" "$GROUP_TIMEOUT" "" "${cmds[@]}"
	done

	if command -v posttls-finger >/dev/null; then
		note "posttls-finger speaks SMTP and LMTP only: no IMAP or POP3 row; it matches the name localhost (Postfix ignores IP SANs), the others 127.0.0.1"
	fi

	# 2. A full audit of the SMTP endpoint.
	cmds=()
	name="starttls check"
	cmd="$BIN check --ca $CA $smtp"
	sanity "$name" "$cmd" "PASS" || die "starttls check failed its sanity run"
	cmds+=("$name" "$cmd")
	name="starttls check --no-injection"
	cmd="$BIN check --ca $CA --no-injection $smtp"
	sanity "$name" "$cmd" "PASS" || die "starttls check --no-injection failed its sanity run"
	cmds+=("$name" "$cmd")
	for ((i = 0; i < ${#cmds[@]}; i += 2)); do rss "${cmds[i]}" "${cmds[i + 1]}"; done
	group audit-smtp "$RUNS" "$WARMUP" "$GROUP_TIMEOUT" "" "${cmds[@]}"

	local groups="audit-smtp"
	if [ "$TESTSSL_ON" = 0 ]; then
		note "testssl.sh: skipped (BENCH_TESTSSL=0)"
	elif ! command -v testssl >/dev/null; then
		note "testssl.sh: not installed (package testssl.sh), skipped"
	else
		# Different scope: testssl.sh --fast also runs vulnerability checks
		# and client simulations with hundreds of openssl runs; starttls check
		# enumerates versions, suites and groups (about 30 connections on the
		# lab) and probes injection; `make bench-audit` compares the two on a
		# real Postfix with the full testssl.sh run. Its
		# one timed run is its sanity check and its memory run (/usr/bin/time
		# adds a few ms to a run of a minute). -n none: no DNS at all.
		name="testssl --starttls smtp --fast"
		local tcmd="testssl --starttls smtp --quiet --fast --add-ca $CA --nodns none --warnings off --color 0 $hp_smtp > $OUT/sanity/testssl.out 2>&1"
		[ -x /usr/bin/time ] && tcmd="/usr/bin/time -v -a -o $OUT/rss/testssl.txt $tcmd"
		: >"$OUT/rss/testssl.txt"
		# testssl.sh 3.0 exits with the sum of its checks' return codes,
		# not 0 on success (-i); a complete run ends with its "Done" line.
		group audit-smtp-testssl "$TESTSSL_RUNS" 0 $((TESTSSL_TIMEOUT * TESTSSL_RUNS)) -i "$name" "$tcmd"
		if grep -q "^ Done .*127.0.0.1" "$OUT/sanity/testssl.out" 2>/dev/null; then
			groups="$groups audit-smtp-testssl"
			grep -q "Chain of trust.*Ok" "$OUT/sanity/testssl.out" ||
				note "testssl.sh did not find the chain trusted (--add-ca); see $OUT/sanity/testssl.out"
		else
			note "testssl.sh did not complete (no Done line): not in the table; see $OUT/sanity/testssl.out"
		fi
		if [ -s "$OUT/rss/testssl.txt" ]; then
			record_rss "$name" "$OUT/rss/testssl.txt"
			note "testssl.sh exit status (sum of its checks' codes, not a failure): $(awk -F': ' '/Exit status/ {printf "%s ", $2}' "$OUT/rss/testssl.txt")"
		fi
		note "testssl.sh has a much larger scope (protocols, every cipher, vulnerabilities, client simulations): its ratio is not like for like; its max RSS is its largest single process (bash or one openssl), not the sum"
	fi

	local specs=("connect smtp|starttls connect smtp|connect-smtp"
		"connect imap|starttls connect imap|connect-imap"
		"connect pop3|starttls connect pop3|connect-pop3")
	for proto in $more; do specs+=("connect $proto|starttls connect $proto|connect-$proto"); done
	specs+=("audit smtp|starttls check|$groups")
	summarize "${specs[@]}"

	{
		echo "starttls $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?'), $(go version 2>/dev/null | cut -d' ' -f3)"
		local p
		for p in openssl postfix testssl.sh hyperfine; do
			installed "$p" && printf '%s %s\n' "$p" "$(dpkg-query -W -f='${Version}' "$p")"
		done
		echo "lab: $BIN lab --json --listen 127.0.0.1 (one Go process, sharing the $(nproc) CPU(s) with the clients)"
		echo "MAIL_CONFIG=$MAIL_CONFIG for posttls-finger"
	} >"$OUT/versions.txt"
	print_table | tee "$OUT/summary.txt"
	echo
	echo "commands (run by hyperfine through sh):"
	awk -F'\t' '{ printf "  %-32s %s\n", $1 ":", $2 }' "$OUT/commands.tsv"
	echo
	sed 's/^/  /' "$OUT/versions.txt"
	if [ ${#NOTES[@]} -gt 0 ]; then
		echo
		echo "notes:"
		printf '  - %s\n' "${NOTES[@]}" | tee "$OUT/notes.txt"
	fi
	echo
	echo "commands, hyperfine JSON/markdown, sanity outputs and memory logs: $OUT"
	log "done in $(($(date +%s) - T0))s"
}

main "$@"
