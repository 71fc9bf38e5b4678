#!/usr/bin/env bash
# TLS audit, peer comparison: `starttls check` against testssl.sh (--full)
# and sslscan on the SAME real server: the interop module "audit"'s Postfix,
# service legacy-versions (127.0.0.1:10031, TLS 1.0-1.3, 91 suites with
# anonymous, RSA key exchange and CBC ones, client order: the port with the
# most to find). Each tool runs once (testssl.sh takes minutes), under
# /usr/bin/time -v: wall time, CPU time (user+sys), and the connections it
# opened, counted as that smtpd service's "connect from" lines in Postfix's
# own log file (maillog_file) before and after the run. Then the findings:
# TLS versions and cipher suites per version of each tool, names normalised
# to IANA (sslscan prints OpenSSL's: mapped with `openssl ciphers -stdname`),
# and every difference decided by openssl s_client on the spot.
#
#   bash scripts/bench-audit.sh          (`make bench-audit`)
#
# Environment:
#   BENCH_OUT=DIR           results directory (default /tmp/starttls-bench-audit-DATE)
#   BENCH_STARTTLS=PATH     use this starttls binary instead of building one
#   BENCH_TESTSSL=0         skip testssl.sh
#   BENCH_AUDIT_SERVICE=S   another service of the module (modern, legacy-cipher, …)
#
# Needs root (apt for what is missing; Postfix, started through
# `scripts/interop.sh --up --only audit` in a work directory under $BENCH_OUT
# and stopped by its pid on exit). Loopback only; every run is under
# `timeout`, every loop is bounded.
set -Eeuo pipefail
umask 022
cd "$(dirname "$0")/.."
ROOT=$PWD

OUT=${BENCH_OUT:-/tmp/starttls-bench-audit-$(date +%Y%m%d-%H%M%S)}
SERVICE=${BENCH_AUDIT_SERVICE:-legacy-versions}
TESTSSL_ON=${BENCH_TESTSSL:-1}
APT_TIMEOUT=600
UP_TIMEOUT=120
CHECK_TIMEOUT=300
TESTSSL_TIMEOUT=1200
SSLSCAN_TIMEOUT=300
PROBE_TIMEOUT=15
MAX_PROBES=400 # openssl s_client probes to decide differences

T0=$(date +%s)
log() { printf '== [%3ds] %s\n' "$(($(date +%s) - T0))" "$*" >&2; }
die() { printf 'bench-audit.sh: %s\n' "$*" >&2; exit 1; }
NOTES=()
note() { NOTES+=("$*"); log "note: $*"; }

[ "$(id -u)" = 0 ] || die "must run as root (apt, Postfix through scripts/interop.sh)"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# ---------------------------------------------------------------------------
# Packages
# ---------------------------------------------------------------------------
NEEDED=(jq time openssl postfix sslscan testssl.sh)
installed() { dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null | grep -qx installed; }
candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}'; }
install_missing() {
	local want=() p c ok=()
	for p in "${NEEDED[@]}"; do
		[ "$p" = testssl.sh ] && [ "$TESTSSL_ON" = 0 ] && continue
		installed "$p" || want+=("$p")
	done
	[ ${#want[@]} -gt 0 ] || { log "packages present (apt skipped)"; return 0; }
	export DEBIAN_FRONTEND=noninteractive
	c=$(candidate "${want[0]}")
	if [ -z "$c" ] || [ "$c" = "(none)" ]; then
		log "apt-get update"
		timeout "$APT_TIMEOUT" apt-get update -q </dev/null >>"$OUT/apt.log" 2>&1 || note "apt-get update failed (see $OUT/apt.log)"
	fi
	for p in "${want[@]}"; do
		c=$(candidate "$p")
		if [ -z "$c" ] || [ "$c" = "(none)" ]; then note "package $p has no installation candidate: skipped"; else ok+=("$p"); fi
	done
	[ ${#ok[@]} -gt 0 ] || return 0
	log "installing: ${ok[*]}"
	debconf-set-selections <<-EOF
		postfix postfix/main_mailer_type select No configuration
		postfix postfix/mailname string bench.invalid
	EOF
	local policy=/usr/sbin/policy-rc.d added=''
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\n# added by starttls scripts/bench-audit.sh for the install\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		added=1
	fi
	timeout "$APT_TIMEOUT" apt-get install -y -q --no-install-recommends "${ok[@]}" </dev/null >>"$OUT/apt.log" 2>&1 ||
		note "apt-get install ${ok[*]} failed (see $OUT/apt.log)"
	[ -z "$added" ] || rm -f "$policy"
}

# ---------------------------------------------------------------------------
# The audit module's Postfix, through scripts/interop.sh --up (it stops
# Postfix by pid when it gets SIGTERM); we stop the script by its pid.
# ---------------------------------------------------------------------------
UP_PID=
WORK=$OUT/interop
cleanup() {
	local rc=$? i
	trap - EXIT INT TERM
	if [ -n "$UP_PID" ] && kill -0 "$UP_PID" 2>/dev/null; then
		kill -TERM "$UP_PID" 2>/dev/null || true
		for i in $(seq 100); do
			kill -0 "$UP_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$UP_PID" 2>/dev/null && kill -KILL "$UP_PID" 2>/dev/null
		wait "$UP_PID" 2>/dev/null || true
		log "servers stopped (scripts/interop.sh pid $UP_PID)"
	fi
	exit $rc
}

start_servers() {
	INTEROP_WORK=$WORK bash "$ROOT/scripts/interop.sh" --up --only audit </dev/null >"$OUT/interop-up.log" 2>&1 &
	UP_PID=$!
	local deadline=$(($(date +%s) + UP_TIMEOUT))
	until grep -q 'servers running' "$OUT/interop-up.log" 2>/dev/null; do
		kill -0 "$UP_PID" 2>/dev/null || { cat "$OUT/interop-up.log" >&2; die "scripts/interop.sh exited"; }
		[ "$(date +%s)" -lt "$deadline" ] || die "servers not up within ${UP_TIMEOUT}s (see $OUT/interop-up.log)"
		sleep 0.2
	done
	eval "$(grep '^export INTEROP_' "$OUT/interop-up.log")"
	local var=INTEROP_AUDIT_${SERVICE^^}
	var=${var//-/_}
	ADDR=${!var:-}
	[ -n "$ADDR" ] || die "no service $SERVICE in the audit module"
	CA=$INTEROP_CA
	MAILLOG=$INTEROP_AUDIT_LOG
	log "audit Postfix up (scripts/interop.sh pid $UP_PID); target $SERVICE at $ADDR"
}

# connections: "connect from" lines of the target service so far.
connections() {
	grep -c "postfix-audit/$SERVICE/smtpd\[[0-9]*\]: connect from" "$MAILLOG" 2>/dev/null || true
}

# measure TOOL TIMEOUT CMD...: runs CMD once under timeout and time -v;
# records wall, CPU and connections in $OUT/TOOL.*.
measure() {
	local tool=$1 tmo=$2 before after="" rc=0
	shift 2
	before=$(connections)
	log "$tool: $*"
	timeout "$tmo" /usr/bin/time -v -o "$OUT/$tool.time" "$@" >"$OUT/$tool.stdout" 2>"$OUT/$tool.stderr" || rc=$?
	[ $rc = 124 ] && note "$tool ran into the ${tmo}s timeout"
	# Postfix logs through postlogd: let the last lines land.
	local i n
	for i in $(seq 20); do
		sleep 0.25
		n=$(connections)
		[ "$n" = "$after" ] && break
		after=$n
	done
	awk -v rc="$rc" -v conns="$((after - before))" '
		/Elapsed \(wall clock\) time/ { n = split($NF, p, ":"); w = 0; for (i = 1; i <= n; i++) w = w * 60 + p[i] }
		/User time \(seconds\)/ { u = $NF }
		/System time \(seconds\)/ { s = $NF }
		END { printf "%.2f %.2f %d %d\n", w, u + s, conns, rc }' "$OUT/$tool.time" >"$OUT/$tool.cost"
	log "$tool: exit $rc, $(cat "$OUT/$tool.cost") (wall cpu connections rc)"
}

# ---------------------------------------------------------------------------
# Normalised findings: TOOL.versions ("TLS1.2" per line), TOOL.suites
# ("TLS1.2 TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" per line), sorted.
# ---------------------------------------------------------------------------
openssl ciphers -stdname 'ALL:COMPLEMENTOFALL:@SECLEVEL=0' | awk '$2 == "-" {print $3, $1}' | sort -u >"$OUT/openssl-names.txt"
iana_of() { awk -v o="$1" '$1 == o {print $2; exit}' "$OUT/openssl-names.txt"; }
openssl_of() { awk -v i="$1" '$2 == i {print $1; exit}' "$OUT/openssl-names.txt"; }

parse_starttls() {
	local j=$OUT/starttls.stdout
	if ! jq -e '.tls.versions | type == "object"' "$j" >/dev/null 2>&1; then
		note "starttls check --json has no tls.versions (did check fail? see $j): its findings are not compared"
		return 1
	fi
	jq -r '.tls.versions | to_entries[] | select(.value == true) | .key' "$j" | sort >"$OUT/starttls.versions"
	jq -r '.tls.ciphers[]? | "\(.version) \(.name)"' "$j" | sort -u >"$OUT/starttls.suites"
}

parse_testssl() {
	local j=$OUT/testssl.json
	[ -s "$j" ] || { note "testssl.sh wrote no JSON"; return 1; }
	# Flat JSON: protocols are ids SSLv2 … TLS1_3 with finding "offered…" or
	# "not offered…"; suites per protocol (-E, in --full) are ids
	# cipher-<proto>_x<hex> whose finding ends in the IANA name.
	jq -r '.[] | select(.id | test("^(SSLv2|SSLv3|TLS1|TLS1_1|TLS1_2|TLS1_3)$")) | select(.finding | test("^offered")) | .id' "$j" |
		sed 's/^TLS1$/TLS1.0/; s/^TLS1_\([0-9]\)$/TLS1.\1/' | sort >"$OUT/testssl.versions"
	jq -r '.[] | select(.id | test("^cipher-(ssl|tls)")) | "\(.id) \(.finding)"' "$j" |
		awk '{ split($1, a, /[-_]/); p = a[2] "_" a[3]; v = ""
			if ($1 ~ /^cipher-ssl2/) v = "SSLv2"; else if ($1 ~ /^cipher-ssl3/) v = "SSLv3"
			else if ($1 ~ /^cipher-tls1_1_/) v = "TLS1.1"; else if ($1 ~ /^cipher-tls1_2_/) v = "TLS1.2"
			else if ($1 ~ /^cipher-tls1_3_/) v = "TLS1.3"; else if ($1 ~ /^cipher-tls1_/) v = "TLS1.0"
			if (v != "" && $NF ~ /^(TLS|SSL)_/) print v, $NF }' | sort -u >"$OUT/testssl.suites"
	[ -s "$OUT/testssl.suites" ] || note "testssl.sh JSON has no cipher-<proto>_… lines (did -E/--full run?)"
}

parse_sslscan() {
	local x=$OUT/sslscan.xml
	[ -s "$x" ] || { note "sslscan wrote no XML"; return 1; }
	sed -n 's/.*<protocol type="\([a-z]*\)" version="\([0-9.]*\)" enabled="1".*/\1\2/p' "$x" |
		sed 's/^ssl2$/SSLv2/; s/^ssl3$/SSLv3/; s/^tls/TLS/' | sort >"$OUT/sslscan.versions"
	local v n i
	sed -n 's/.*<cipher status="[a-z]*" sslversion="\([^"]*\)".* cipher="\([^"]*\)".*/\1 \2/p' "$x" |
		while read -r v n; do
			v=${v/TLSv/TLS}
			case $n in TLS_*) i=$n ;; *) i=$(iana_of "$n") ;; esac
			echo "$v ${i:-OPENSSL:$n}"
		done | sort -u >"$OUT/sslscan.suites"
}

# ---------------------------------------------------------------------------
# Deciding differences with openssl s_client
# ---------------------------------------------------------------------------
PROBES=0
declare -A OSSL_FLAG=([TLS1.0]=-tls1 [TLS1.1]=-tls1_1 [TLS1.2]=-tls1_2 [TLS1.3]=-tls1_3)
probe() { # args…: prints the negotiated suite (OpenSSL name) or nothing
	PROBES=$((PROBES + 1))
	[ $PROBES -le $MAX_PROBES ] || { echo "?"; return; }
	timeout "$PROBE_TIMEOUT" openssl s_client -starttls smtp -connect "$ADDR" -CAfile "$CA" "$@" </dev/null 2>/dev/null |
		sed -n 's/^New, [^,]*, Cipher is \([^ ]*\).*/\1/p' | grep -v '^(NONE)$' | head -n1 || true
}
# yes_no PROBE-OUTPUT: a suite name is yes, nothing is no, "?" (probe
# budget spent) stays "?".
yes_no() {
	case $1 in
	"") echo no ;;
	"?") echo "?" ;;
	*) echo yes ;;
	esac
}
# truth_version V: yes / no / "?" (cannot tell)
truth_version() {
	case $1 in
	SSLv2 | SSLv3) echo no ;; # neither this OpenSSL nor the server's has them (no -ssl3 in s_client)
	TLS1.3) yes_no "$(probe -tls1_3)" ;;
	*) yes_no "$(probe "${OSSL_FLAG[$1]}" -cipher 'ALL:COMPLEMENTOFALL:@SECLEVEL=0')" ;;
	esac
}
# truth_suite V IANA: yes / no / "?"
truth_suite() {
	local v=$1 s=$2 o got
	[ -n "${OSSL_FLAG[$v]:-}" ] || { echo no; return; }
	if [ "$v" = TLS1.3 ]; then
		got=$(probe -tls1_3 -ciphersuites "$s")
		[ "$got" = "?" ] && { echo "?"; return; }
		[ "$got" = "$s" ] && echo yes || echo no
		return
	fi
	o=$(openssl_of "$s")
	[ -n "$o" ] || { echo "?"; return; } # this OpenSSL cannot offer it
	got=$(probe "${OSSL_FLAG[$v]}" -cipher "$o:@SECLEVEL=0")
	[ "$got" = "?" ] && { echo "?"; return; }
	[ "$got" = "$o" ] && echo yes || echo no
}

# other_findings: what each tool says beyond versions and suites, side by
# side (not scored: the tools name these differently), and s_client's view.
other_findings() {
	local j=$OUT/starttls.stdout t=$OUT/testssl.json x=$OUT/sslscan.xml
	printf '\nother findings (not scored):\n'
	printf '  %-22s %-40s %-40s %s\n' ITEM starttls testssl.sh sslscan
	tf() { [ -s "$t" ] && jq -r --arg id "$1" '[.[] | select(.id == $id) | .finding] | first // "-"' "$t" 2>/dev/null || echo -; }
	sj() { [ -s "$j" ] && jq -r "$1 | if . == null then \"-\" else tostring end" "$j" 2>/dev/null || echo -; }
	local sg
	sg=$([ -s "$x" ] && sed -n 's/.*<group sslversion="TLSv1.3".* name="\([^" ]*\).*/\1/p' "$x" | paste -sd' ' || echo -)
	printf '  %-22s %-40s %-40s %s\n' "groups" "$(sj '.tls.groups | join(" ")?')" "$(tf PFS_ECDHE_curves)" "${sg:--}"
	printf '  %-22s %-40s %-40s %s\n' "server cipher order" "$(sj .tls.server_cipher_order)" "$(tf cipher_order | cut -c1-40)" "-"
	printf '  %-22s %-40s %-40s %s\n' "fallback SCSV" "$(sj .tls.fallback_scsv)" "$(tf fallback_SCSV)" "-"
	printf '  %-22s %-40s %-40s %s\n' "DH group" "$(sj .tls.dh_bits) bits" "$(tf DH_groups)" "-"
	# OpenSSL's automatic DH group follows the certificate; without one
	# (anonymous) it follows the cipher's strength.
	local spec out line=''
	for spec in 'DHE_RSA:DHE:!aNULL' 'DH_anon+AES128:ADH+AES128' 'DH_anon+AES256:ADH+AES256'; do
		out=$(timeout "$PROBE_TIMEOUT" openssl s_client -starttls smtp -connect "$ADDR" -tls1_2 -cipher "${spec#*:}:@SECLEVEL=0" </dev/null 2>/dev/null |
			sed -n 's/^Server Temp Key: //p' || true)
		line="$line${spec%%:*} ${out:-none}; "
	done
	printf '  openssl s_client, server DH key: %s\n' "${line%; }"
}

main() {
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	install_missing
	local bin=${BENCH_STARTTLS:-}
	if [ -z "$bin" ]; then
		log "building starttls"
		go build -o "$OUT/starttls" ./cmd/starttls
		bin=$OUT/starttls
	fi
	start_servers

	TOOLS=(starttls)
	measure starttls "$CHECK_TIMEOUT" "$bin" check --json --timeout 20s --ca "$CA" "smtp://$ADDR"
	if [ "$TESTSSL_ON" != 0 ] && command -v testssl >/dev/null; then
		TOOLS+=(testssl)
		rm -f "$OUT/testssl.json"
		measure testssl "$TESTSSL_TIMEOUT" testssl --full --starttls smtp --jsonfile "$OUT/testssl.json" \
			--add-ca "$CA" --warnings batch --color 0 --connect-timeout 10 --openssl-timeout 10 "$ADDR"
	else
		note "testssl.sh skipped"
	fi
	if command -v sslscan >/dev/null; then
		TOOLS+=(sslscan)
		measure sslscan "$SSLSCAN_TIMEOUT" sslscan --starttls-smtp --no-colour --xml="$OUT/sslscan.xml" "$ADDR"
	else
		note "sslscan is not installed"
	fi

	local t compared=()
	for t in "${TOOLS[@]}"; do
		if "parse_$t"; then compared+=("$t"); fi
	done

	# Every (version) and (version, suite) any tool reported; where not all
	# compared tools agree, openssl s_client decides.
	local v s verdict who n
	: >"$OUT/differences.txt"
	: >"$OUT/truth.versions"
	: >"$OUT/truth.suites"
	for v in SSLv2 SSLv3 TLS1.0 TLS1.1 TLS1.2 TLS1.3; do
		who=$(for t in "${compared[@]}"; do if grep -qx "$v" "$OUT/$t.versions"; then printf '%s ' "$t"; fi; done)
		verdict=$(truth_version "$v")
		if [ "$verdict" = yes ]; then echo "$v" >>"$OUT/truth.versions"; fi
		n=$(wc -w <<<"$who")
		if { [ "$n" -gt 0 ] && [ "$n" -lt "${#compared[@]}" ]; } || { [ "$n" = 0 ] && [ "$verdict" = yes ]; } ||
			{ [ "$n" -gt 0 ] && [ "$n" = "${#compared[@]}" ] && [ "$verdict" = no ]; }; then
			echo "version $v: reported by [${who% }] of [${compared[*]}]; openssl s_client: accepted=$verdict" >>"$OUT/differences.txt"
		fi
	done
	if [ ${#compared[@]} -lt 2 ]; then
		note "only ${compared[*]} could be compared: its agreement with itself means nothing; the differences below are checked against openssl s_client only"
	fi
	local all
	all=$(for t in "${compared[@]}"; do cat "$OUT/$t.suites"; done | sort -u)
	while read -r v s; do
		[ -n "$s" ] || continue
		who=$(for t in "${compared[@]}"; do if grep -qx "$v $s" "$OUT/$t.suites"; then printf '%s ' "$t"; fi; done)
		if [ "$(wc -w <<<"$who")" = "${#compared[@]}" ]; then
			echo "$v $s" >>"$OUT/truth.suites" # all agree: not re-probed
			continue
		fi
		verdict=$(truth_suite "$v" "$s")
		if [ "$verdict" = yes ]; then echo "$v $s" >>"$OUT/truth.suites"; fi
		echo "suite $v $s: reported by [${who% }] of [${compared[*]}]; openssl s_client: accepted=$verdict" >>"$OUT/differences.txt"
	done <<<"$all"
	sort -u -o "$OUT/truth.suites" "$OUT/truth.suites"

	# The table.
	{
		printf '\nTLS audit of %s (Postfix audit service %s); truth = what openssl s_client confirms\n' "$ADDR" "$SERVICE"
		printf '%-9s %9s %9s %11s  %-34s %-24s %s\n' TOOL WALL CPU CONNECTIONS VERSIONS "SUITES (1.0/1.1/1.2/1.3)" "AGREEMENT WITH TRUTH"
		printf '%s\n' "-------------------------------------------------------------------------------------------------------------------------"
		for t in "${TOOLS[@]}"; do
			read -r wall cpu conns rc <"$OUT/$t.cost"
			if [[ " ${compared[*]} " == *" $t "* ]]; then
				local vers per agree miss extra
				vers=$(paste -sd, "$OUT/$t.versions")
				per=$(for v in TLS1.0 TLS1.1 TLS1.2 TLS1.3; do grep -c "^$v " "$OUT/$t.suites" || true; done | paste -sd/)
				miss=$(comm -23 "$OUT/truth.suites" "$OUT/$t.suites" | wc -l)
				extra=$(comm -13 "$OUT/truth.suites" "$OUT/$t.suites" | wc -l)
				local vmiss vextra
				vmiss=$(comm -23 <(sort "$OUT/truth.versions") "$OUT/$t.versions" | wc -l)
				vextra=$(comm -13 <(sort "$OUT/truth.versions") "$OUT/$t.versions" | wc -l)
				agree="versions -$vmiss/+$vextra, suites -$miss/+$extra"
				printf '%-9s %8ss %8ss %11s  %-34s %-24s %s\n' "$t" "$wall" "$cpu" "$conns" "${vers:-none}" "$per" "$agree"
			else
				printf '%-9s %8ss %8ss %11s  %-34s %-24s %s\n' "$t" "$wall" "$cpu" "$conns" "n/a" "n/a" "not compared (exit $rc)"
			fi
		done
		printf '\ntruth: versions %s; suites %s (%s)\n' "$(paste -sd, "$OUT/truth.versions")" \
			"$(wc -l <"$OUT/truth.suites")" \
			"$(for v in TLS1.0 TLS1.1 TLS1.2 TLS1.3; do printf '%s %s  ' "$v" "$(grep -c "^$v " "$OUT/truth.suites" || true)"; done)"
		printf 'connections: "connect from" lines of postfix-audit/%s/smtpd in %s\n' "$SERVICE" "$MAILLOG"
		printf 'CPU: user+sys of the tool and its children (/usr/bin/time -v); -N/+M: missed/extra against the truth\n'
		printf 'truth: what every compared tool reports, plus what openssl s_client confirms where they differ (interop/audit_test.go verifies every suite with s_client)\n'
		other_findings
		if [ -s "$OUT/differences.txt" ]; then
			printf '\ndifferences (%d), decided by openssl s_client (%d probes):\n' "$(wc -l <"$OUT/differences.txt")" "$PROBES"
			sed 's/^/  /' "$OUT/differences.txt"
		else
			printf '\nno differences between the compared tools (%s)\n' "${compared[*]}"
		fi
		local n
		for n in "${NOTES[@]}"; do printf 'note: %s\n' "$n"; done
		printf 'components: %s, testssl.sh %s, sslscan %s, Postfix %s\n' "$(openssl version | cut -d' ' -f1-2)" \
			"$(dpkg-query -W -f='${Version}' testssl.sh 2>/dev/null)" "$(dpkg-query -W -f='${Version}' sslscan 2>/dev/null)" \
			"$(postconf -d -h mail_version 2>/dev/null)"
		printf 'results in %s\n' "$OUT"
	} | tee "$OUT/table.txt"
}

main "$@"
