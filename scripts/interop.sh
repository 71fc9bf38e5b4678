#!/usr/bin/env bash
# Interop suite: the starttls library and binary against real servers
# (Postfix and Dovecot here; Prosody, slapd, INN, vsftpd, InspIRCd,
# Pigeonhole, PostgreSQL, MariaDB, telnetd-ssl, the audit's Postfix,
# unbound and knot for mail domains, and the proxy's plaintext Postfix and
# Dovecot in scripts/interop/modules/), and real clients (openssl s_client,
# curl, swaks, Python, psql, mariadb, ldapsearch, msmtp, fetchmail, mutt, …)
# against the starttls lab, directly and through starttls proxy and strip.
# Run by `make interop` and CI.
#
#   bash scripts/interop.sh        install, start, test, stop, print the matrix
#   bash scripts/interop.sh --up   install and start the servers, print the
#                                  test environment and wait (Ctrl-C stops)
#   bash scripts/interop.sh --only mail,xmpp
#                                  only these modules (also INTEROP_ONLY)
#
# Servers come in modules: "mail" (Postfix, Dovecot) is here, the others
# are scripts/interop/modules/NAME.sh (see the README there).
#
# Needs root (apt, Postfix). Installs what it needs from Debian's packages,
# skips apt when everything is present. Everything it starts runs on
# loopback, on unprivileged ports, under $INTEROP_WORK (default
# /tmp/starttls-interop), and is stopped by pid on exit, even on failure.
# Extra arguments after `--` go to `go test` (e.g. -- -run TestPostfix).
set -Eeuo pipefail
umask 022
cd "$(dirname "$0")/.."
ROOT=$PWD

WORK=${INTEROP_WORK:-/tmp/starttls-interop}
SMTP_PORT=${INTEROP_SMTP_PORT:-10025}
SMTPS_PORT=${INTEROP_SMTPS_PORT:-10465}
IMAP_PORT=${INTEROP_IMAP_PORT:-10143}
IMAPS_PORT=${INTEROP_IMAPS_PORT:-10993}
POP3_PORT=${INTEROP_POP3_PORT:-10110}
POP3S_PORT=${INTEROP_POP3S_PORT:-10995}
LMTP_PORT=${INTEROP_LMTP_PORT:-10024}
# Dovecot treats a client on its own address as secure; the real pre-TLS
# policy is seen from another loopback address. 127.0.0.3 is configured to
# be offered plaintext login (the "bad server" case).
SOURCE_STRICT=127.0.0.2
SOURCE_LAX=127.0.0.3
MAIL_USER=alice
MAIL_PASSWORD=interop-secret
MAIL_DOMAIN=interop.test
MAIL_UID=65534 # nobody: owns the Maildir Postfix delivers to and Dovecot serves
MAIL_GID=65534
# Packages every module's tests need; modules add their own.
BASE_PACKAGES=(curl openssl python3 ca-certificates)
PACKAGES=()

# The built-in module: Postfix and Dovecot (see the module contract in
# scripts/interop/modules/README.md).
MODULES=(mail)
mail_packages=(postfix dovecot-imapd dovecot-pop3d dovecot-lmtpd swaks libnet-ssleay-perl)
mail_ports=("$SMTP_PORT" "$SMTPS_PORT" "$IMAP_PORT" "$IMAPS_PORT" "$POP3_PORT" "$POP3S_PORT" "$LMTP_PORT")
mail_strays=(master dovecot)
mail_sections=(
	"A. our library, check and connect -> Postfix and Dovecot|TestPostfix TestDovecot TestDovecotLMTP TestConnect"
	"B. real clients -> starttls lab (mail)|TestOpenSSLClient TestCurl TestSwaks TestPython"
	"C. Postfix posttls-finger (oracle) -> starttls lab|TestPosttlsFinger"
)
ONLY=${INTEROP_ONLY:-}

ARGS=("$@")
MODE=test
GO_TEST_ARGS=()
while [ $# -gt 0 ]; do
	case $1 in
	--up) MODE=up ;;
	--only) shift; ONLY=${1:-} ;;
	--only=*) ONLY=${1#--only=} ;;
	--) shift; GO_TEST_ARGS=("$@"); break ;;
	-h | --help) sed -n '2,24p' "$0"; exit 0 ;;
	*) echo "interop.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

for f in "$ROOT"/scripts/interop/modules/*.sh; do
	[ -e "$f" ] || continue
	# shellcheck source=/dev/null
	. "$f"
done
SELECTED=()
if [ -n "$ONLY" ]; then
	for m in ${ONLY//,/ }; do
		[[ " ${MODULES[*]} " == *" $m "* ]] || { echo "interop.sh: unknown module $m (known: ${MODULES[*]})" >&2; exit 2; }
		SELECTED+=("$m")
	done
else
	SELECTED=("${MODULES[@]}")
fi
# each_module FUNC: run NAME_FUNC for every selected module that defines it.
each_module() {
	local m
	for m in "${SELECTED[@]}"; do
		if declare -F "${m}_$1" >/dev/null; then "${m}_$1"; fi
	done
}
# module_list VAR: the elements of NAME_VAR of every selected module.
module_list() {
	local m ref
	for m in "${SELECTED[@]}"; do
		ref="${m}_$1[@]"
		# An empty array expands to one empty word: drop empty lines.
		if declare -p "${m}_$1" >/dev/null 2>&1; then printf '%s\n' "${!ref}" | sed '/^$/d'; fi
	done
}
PACKAGES=("${BASE_PACKAGES[@]}")
mapfile -t -O "${#PACKAGES[@]}" PACKAGES < <(module_list packages)
mapfile -t ALL_PORTS < <(module_list ports)
mapfile -t STRAY_COMMS < <(module_list strays)

T0=$(date +%s)
log() { printf '== [%3ds] %s\n' "$(($(date +%s) - T0))" "$*" >&2; }
die() { printf 'interop.sh: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null || die "go is not on PATH (the suite builds and tests the module)"
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null || die "must run as root (apt-get, Postfix); no sudo found"
	log "re-running as root with sudo"
	exec sudo -E env "PATH=$PATH" bash "$0" "${ARGS[@]}"
fi

# ---------------------------------------------------------------------------
# 1. Packages
# ---------------------------------------------------------------------------
missing_packages() {
	local p status
	status=$(dpkg-query -W -f='${db:Status-Status} ${Package}\n' "${PACKAGES[@]}" 2>/dev/null || true)
	for p in "${PACKAGES[@]}"; do
		grep -qx "installed $p" <<<"$status" || printf '%s ' "$p"
	done
}

POLICY_RC=/usr/sbin/policy-rc.d
ADDED_POLICY=
remove_policy() {
	if [ -n "$ADDED_POLICY" ]; then
		rm -f "$POLICY_RC"
		ADDED_POLICY=
	fi
}

install_packages() {
	local missing
	missing=$(missing_packages)
	if [ -z "$missing" ]; then
		log "packages present: ${PACKAGES[*]} (apt skipped)"
		return
	fi
	log "installing: $missing"
	export DEBIAN_FRONTEND=noninteractive
	# Postfix: no debconf questions, no main.cf of its own (ours is private).
	debconf-set-selections <<-EOF
		postfix postfix/main_mailer_type select No configuration
		postfix postfix/mailname string $MAIL_DOMAIN
	EOF
	# No init system here, and on a dev machine we do not want the packaged
	# services started on the standard ports: deny service starts during the
	# install unless a policy already exists.
	if [ ! -e "$POLICY_RC" ]; then
		printf '#!/bin/sh\n# added by starttls scripts/interop.sh for the install\nexit 101\n' >"$POLICY_RC"
		chmod 755 "$POLICY_RC"
		ADDED_POLICY=1
	fi
	local rc=0
	{
		apt-get update -q &&
			apt-get install -y -q --no-install-recommends $missing
	} </dev/null >"$WORK_APT_LOG" 2>&1 || rc=$?
	remove_policy
	if [ $rc != 0 ]; then
		tail -n 30 "$WORK_APT_LOG" >&2
		die "apt-get failed (exit $rc); full log: $WORK_APT_LOG"
	fi
	missing=$(missing_packages)
	[ -z "$missing" ] || die "still missing after apt-get: $missing"
}

# ---------------------------------------------------------------------------
# Processes: everything started is recorded in $PIDFILE and stopped by pid.
# ---------------------------------------------------------------------------
PIDFILE=$WORK/pids

# ours PID: the process exists and was started for this work directory
# (its command line or environment names $WORK).
ours() {
	local pid=$1
	[ -r "/proc/$pid/cmdline" ] || return 1
	grep -qaF -- "$WORK" "/proc/$pid/cmdline" "/proc/$pid/environ" 2>/dev/null
}

stop_pid() { # name pid
	local name=$1 pid=$2 i
	ours "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || { log "stopped $name (pid $pid)"; return 0; }
		sleep 0.1
	done
	log "$name (pid $pid) did not stop; killing"
	kill -KILL "$pid" 2>/dev/null || true
}

stop_recorded() {
	[ -f "$PIDFILE" ] || return 0
	local name pid
	# Reverse order: last started, first stopped.
	tac "$PIDFILE" | while read -r name pid; do
		[ -n "$pid" ] && stop_pid "$name" "$pid"
	done
	rm -f "$PIDFILE"
}

record() { echo "$1 $2" >>"$PIDFILE"; }

# stop_strays stops Postfix and Dovecot master processes of an earlier run
# on this work directory that never made it into $PIDFILE (a run killed
# with SIGKILL at the wrong moment).
stop_strays() {
	local d pid comm
	for d in /proc/[0-9]*; do
		pid=${d#/proc/}
		read -r comm 2>/dev/null <"$d/comm" || continue
		if [[ " ${STRAY_COMMS[*]} " == *" $comm "* ]] && ours "$pid"; then
			stop_pid "stray $comm" "$pid"
		fi
	done
	return 0
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[ -z "${SLEEP_PID:-}" ] || kill "$SLEEP_PID" 2>/dev/null || true
	remove_policy
	stop_recorded || true
	exit $rc
}

# ---------------------------------------------------------------------------
# 2. Work directory and PKI
# ---------------------------------------------------------------------------
prepare_work() {
	if [ -d "$WORK" ]; then
		[ -f "$WORK/.starttls-interop" ] ||
			die "$WORK exists and is not an interop work directory; set INTEROP_WORK"
		stop_recorded # leftovers of an interrupted run
		stop_strays
		rm -rf "$WORK"
	fi
	local port
	for port in "${ALL_PORTS[@]}"; do
		port_free "$port" || die "127.0.0.1:$port is already in use; stop that service or set INTEROP_*_PORT (see the top of $0)"
	done
	mkdir -p "$WORK"
	chmod 755 "$WORK"
	touch "$WORK/.starttls-interop"
	mkdir -p "$WORK/pki"
}

make_pki() {
	local d=$WORK/pki
	log "private CA and server certificate (127.0.0.1, localhost) in $d"
	openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 365 \
		-keyout "$d/ca.key" -out "$d/ca.pem" -subj "/O=starttls interop/CN=starttls interop CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
	openssl req -new -newkey rsa:2048 -nodes -sha256 \
		-keyout "$d/server.key" -out "$d/server.csr" -subj "/O=starttls interop/CN=localhost" 2>/dev/null
	cat >"$d/server.ext" <<-EOF
		basicConstraints = critical,CA:FALSE
		keyUsage = critical,digitalSignature,keyEncipherment
		extendedKeyUsage = serverAuth
		subjectAltName = IP:127.0.0.1,DNS:localhost,DNS:mx.$MAIL_DOMAIN
	EOF
	openssl x509 -req -sha256 -days 365 -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
		-CAcreateserial -extfile "$d/server.ext" -out "$d/server.pem" 2>/dev/null
	chmod 600 "$d/ca.key" "$d/server.key"
	openssl verify -CAfile "$d/ca.pem" "$d/server.pem" >/dev/null
}

subst() { # template -> stdout
	sed -e "s|@WORK@|$WORK|g" -e "s|@SMTP_PORT@|$SMTP_PORT|g" -e "s|@SMTPS_PORT@|$SMTPS_PORT|g" \
		-e "s|@IMAP_PORT@|$IMAP_PORT|g" -e "s|@IMAPS_PORT@|$IMAPS_PORT|g" \
		-e "s|@POP3_PORT@|$POP3_PORT|g" -e "s|@POP3S_PORT@|$POP3S_PORT|g" -e "s|@LMTP_PORT@|$LMTP_PORT|g" \
		-e "s|@MAILUID@|$MAIL_UID|g" -e "s|@MAILGID@|$MAIL_GID|g" "$1"
}

# ---------------------------------------------------------------------------
# 3. Mail store, Postfix, Dovecot
# ---------------------------------------------------------------------------
make_mailbox() {
	local md=$WORK/mail/$MAIL_USER/Maildir
	mkdir -p "$md/new" "$md/cur" "$md/tmp"
	cat >"$md/new/1700000000.M1P1.interop" <<-EOF
		Return-Path: <postmaster@$MAIL_DOMAIN>
		From: Interop <postmaster@$MAIL_DOMAIN>
		To: Alice <$MAIL_USER@$MAIL_DOMAIN>
		Subject: welcome to the interop mailbox
		Date: Tue, 14 Nov 2023 22:13:20 +0000
		Message-ID: <welcome@$MAIL_DOMAIN>

		This message was put here by scripts/interop.sh.
	EOF
	sed -i 's/$/\r/' "$md/new/1700000000.M1P1.interop"
	chown -R "$MAIL_UID:$MAIL_GID" "$WORK/mail"
	chmod 700 "$WORK/mail/$MAIL_USER"
}

start_postfix() {
	local etc=$WORK/postfix/etc
	subst "$ROOT/scripts/interop/postfix-main.cf.in" >"$etc/main.cf"
	subst "$ROOT/scripts/interop/postfix-master.cf.in" >"$etc/master.cf"
	# Debian's postfix looks for dynamic map definitions in the config dir.
	[ -f /etc/postfix/dynamicmaps.cf ] && cp /etc/postfix/dynamicmaps.cf "$etc/"
	[ -d /etc/postfix/dynamicmaps.cf.d ] && cp -r /etc/postfix/dynamicmaps.cf.d "$etc/"
	chown -R root:root "$etc"
	# Postfix wants its data directory (master.lock, caches) owned by
	# mail_owner; anything it warns about slows start-up (postlog waits for
	# postlogd, which is not running yet).
	chown postfix: "$WORK/postfix/data"
	# posttls-finger reads a main.cf too; give it a minimal one.
	mkdir -p "$WORK/posttls-finger"
	printf 'compatibility_level = 3.6\nmyhostname = client.interop.test\n' >"$WORK/posttls-finger/main.cf"
	log "starting Postfix ($(postconf -c "$etc" -h mail_version)) on 127.0.0.1:$SMTP_PORT (STARTTLS) and :$SMTPS_PORT (implicit TLS)"
	# `postfix start` runs `postfix check` (creating the queue directories)
	# and waits for the master daemon to come up.
	postfix -c "$etc" start >>"$WORK/postfix/start.log" 2>&1 || {
		cat "$WORK/postfix/start.log" "$WORK/postfix/postfix.log" >&2 2>/dev/null
		die "postfix start failed"
	}
	local pidf=$WORK/postfix/spool/pid/master.pid pid= i
	for i in $(seq 50); do
		[ -s "$pidf" ] && pid=$(tr -dc 0-9 <"$pidf") && [ -n "$pid" ] && break
		sleep 0.1
	done
	[ -n "$pid" ] || die "no Postfix master pid in $pidf"
	record postfix "$pid"
}

mail_start() {
	mkdir -p "$WORK/postfix/etc" "$WORK/postfix/spool" "$WORK/postfix/data" \
		"$WORK/dovecot/run" "$WORK/dovecot/state" "$WORK/mail"
	make_mailbox
	start_dovecot # first: Postfix authenticates through Dovecot's auth socket
	start_postfix
	wait_ports "${mail_ports[@]}"
	check_sources
}

start_dovecot() {
	local d=$WORK/dovecot
	subst "$ROOT/scripts/interop/dovecot.conf.in" >"$d/dovecot.conf"
	printf '%s:{PLAIN}%s:%s:%s::%s::\n' "$MAIL_USER" "$MAIL_PASSWORD" "$MAIL_UID" "$MAIL_GID" \
		"$WORK/mail/$MAIL_USER" >"$d/users"
	chown root:dovecot "$d/users"
	chmod 640 "$d/users"
	doveconf -c "$d/dovecot.conf" -n >"$d/doveconf.txt" 2>&1 ||
		{ cat "$d/doveconf.txt" >&2; die "dovecot configuration rejected"; }
	log "starting Dovecot $(dovecot --version | cut -d' ' -f1) IMAP :$IMAP_PORT/:$IMAPS_PORT, POP3 :$POP3_PORT/:$POP3S_PORT, LMTP :$LMTP_PORT"
	dovecot -F -c "$d/dovecot.conf" </dev/null >>"$d/stdout.log" 2>&1 &
	record dovecot $!
}

wait_ports() {
	local deadline=$(($(date +%s) + 30)) port
	for port in "$@"; do
		until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
			if [ "$(date +%s)" -ge $deadline ]; then
				find "$WORK" -name '*.log' -newer "$WORK/.starttls-interop" -exec tail -n 20 {} + >&2 2>/dev/null || true
				die "port 127.0.0.1:$port not listening after 30s"
			fi
			sleep 0.2
		done
	done
	log "listening: $*"
}

check_sources() {
	local a
	for a in "$SOURCE_STRICT" "$SOURCE_LAX"; do
		/usr/bin/python3 -c 'import socket,sys
s=socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=5, source_address=(sys.argv[1], 0))
s.close()' "$a" "$IMAP_PORT" ||
			die "cannot connect from source address $a (all of 127/8 should be on lo)"
	done
	log "source addresses $SOURCE_STRICT and $SOURCE_LAX usable"
}

# ---------------------------------------------------------------------------
# 5. Tests and matrix
# ---------------------------------------------------------------------------
export_env() {
	export INTEROP_WORK=$WORK
	export INTEROP_CA=$WORK/pki/ca.pem
	export INTEROP_USER=$MAIL_USER
	export INTEROP_PASSWORD=$MAIL_PASSWORD
	export INTEROP_RCPT=$MAIL_USER@$MAIL_DOMAIN
	export INTEROP_MAILDIR=$WORK/mail/$MAIL_USER/Maildir
	export INTEROP_STARTTLS=$WORK/starttls
	export INTEROP_PYTHON=/usr/bin/python3
	export INTEROP_SCRIPTS=$ROOT/scripts/interop
	export INTEROP_MODULES="${SELECTED[*]}"
	each_module env
}

mail_env() {
	export INTEROP_POSTFIX_SMTP=127.0.0.1:$SMTP_PORT
	export INTEROP_POSTFIX_SMTPS=127.0.0.1:$SMTPS_PORT
	export INTEROP_DOVECOT_IMAP=127.0.0.1:$IMAP_PORT
	export INTEROP_DOVECOT_IMAPS=127.0.0.1:$IMAPS_PORT
	export INTEROP_DOVECOT_POP3=127.0.0.1:$POP3_PORT
	export INTEROP_DOVECOT_POP3S=127.0.0.1:$POP3S_PORT
	export INTEROP_DOVECOT_LMTP=127.0.0.1:$LMTP_PORT
	export INTEROP_SOURCE=$SOURCE_STRICT
	export INTEROP_SOURCE_PLAINTEXT_LOGIN=$SOURCE_LAX
	export INTEROP_POSTFIX_CLIENT_CONFIG=$WORK/posttls-finger
}

mail_versions() {
	echo "Postfix $(postconf -d -h mail_version 2>/dev/null), Dovecot $(dovecot --version | cut -d' ' -f1), swaks $(swaks --version 2>/dev/null | sed -n 's/^swaks version //p')"
}

# The matrix: every subtest of the interop package is named "client→server"
# (go test shows spaces as underscores). Sections in a fixed order; a test
# that failed before its subtests ran is listed as a whole.
mapfile -t SECTIONS < <(module_list sections)

print_matrix() { # go test -v log
	local logf=$1 results section title tests top known="" rows=0
	results=$(grep -E '^ *--- (PASS|FAIL|SKIP): ' "$logf" | sed -E 's/^ *--- (PASS|FAIL|SKIP): ([^ ]+).*/\1 \2/' || true)
	echo
	echo "=========================== interop matrix ==========================="
	for section in "${SECTIONS[@]}" "other|"; do
		title=${section%%|*}
		tests=${section#*|}
		if [ "$title" = other ]; then
			# Top-level tests not in a section (new ones): list them too.
			tests=$(awk '{print $2}' <<<"$results" | grep -v / | grep -vxF -f <(tr ' ' '\n' <<<"$known") || true)
			[ -n "$tests" ] || continue
		fi
		known="$known $tests"
		echo
		echo "$title"
		printf '  %-46s %-26s %s\n' CLIENT SERVER RESULT
		for top in $tests; do
			while read -r res name; do
				[ -n "$name" ] || continue
				case $name in
				"$top"/*→*)
					local sub=${name#*/}
					printf '  %-46s %-26s %s\n' "${sub%%→*}" "${sub#*→}" "$res"
					rows=$((rows + 1))
					;;
				"$top")
					# A whole test that failed or skipped without subtests
					# (for instance the lab did not start).
					if [ "$res" != PASS ] && ! grep -q "^[A-Z]* $top/" <<<"$results"; then
						printf '  %-46s %-26s %s\n' "$top" "(whole test)" "$res"
						rows=$((rows + 1))
					fi
					;;
				esac
			done <<<"$results"
		done
	done
	[ $rows -gt 0 ] || echo "  (no test results: see the go test output above)"
	local pass fail skip
	pass=$(grep -cE '^ *--- PASS: [^ ]+/' "$logf" || true)
	fail=$(grep -cE '^ *--- FAIL: [^ ]+/' "$logf" || true)
	skip=$(grep -cE '^ *--- SKIP: [^ ]+/' "$logf" || true)
	echo
	echo "----------------------------------------------------------------------"
	echo "components:"
	each_module versions | sed 's/^/  /'
	echo "  $(openssl version | cut -d' ' -f1-2), $(curl --version | head -n1 | cut -d' ' -f1-2), $(/usr/bin/python3 --version), $(go version | cut -d' ' -f3)"
	echo "subtests: $pass passed, $fail failed, $skip skipped"
	SKIPPED=$skip
}

main() {
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	WORK_APT_LOG=$(mktemp /tmp/starttls-interop-apt.XXXXXX)
	install_packages
	prepare_work
	mv "$WORK_APT_LOG" "$WORK/apt.log"
	make_pki
	local m
	for m in "${SELECTED[@]}"; do
		"${m}_start"
	done
	[ ${#ALL_PORTS[@]} = 0 ] || wait_ports "${ALL_PORTS[@]}"
	export_env

	if [ $MODE = up ]; then
		env | grep '^INTEROP_' | sort | sed 's/^/export /'
		log "servers running; Ctrl-C or SIGTERM stops them"
		while :; do
			sleep 3600 &
			SLEEP_PID=$!
			wait $SLEEP_PID || true
		done
	fi

	log "building starttls"
	go build -o "$WORK/starttls" ./cmd/starttls || die "go build ./cmd/starttls failed"
	log "go test -tags interop ./interop/"
	local rc gotest=$WORK/go-test.log
	set +e
	go test -tags interop -count=1 -v -timeout 20m ./interop/ "${GO_TEST_ARGS[@]}" </dev/null 2>&1 | tee "$gotest"
	rc=${PIPESTATUS[0]}
	set -e
	print_matrix "$gotest"
	log "total $(($(date +%s) - T0))s; logs in $WORK"
	if [ $rc != 0 ]; then
		echo "interop: FAILED (go test exit $rc)" >&2
		exit 1
	fi
	# In CI every module runs and installs its tools: a skipped subtest
	# means something is missing, not optional.
	if [ -n "${CI:-}" ] && [ "${SKIPPED:-0}" != 0 ] && [ -z "$ONLY" ]; then
		echo "interop: FAILED ($SKIPPED subtests skipped in CI)" >&2
		exit 1
	fi
	echo "interop: PASSED"
}

main
