# Interop module "proxy": real clients -> `starttls proxy` -> real servers.
# Its own legacy servers with TLS switched off, on loopback:
#
#   10060 Postfix, plaintext SMTP only (no STARTTLS, no AUTH), delivering
#         alice@interop.test into $WORK/proxy/mail
#   10061 Dovecot IMAP, plaintext only (no STARTTLS, plaintext login),
#         serving that Maildir
#
# The Go tests (interop/proxy_test.go) start `starttls proxy` themselves on
# 10062-10069 (base + 2 …): server side in front of these two, client side
# towards the mail module's TLS Postfix (10025) and Dovecot (10143), which
# the client-side tests need (run with --only mail,proxy).
MODULES+=(proxy)
PROXY_PORT_BASE=${INTEROP_PROXY_PORT_BASE:-10060}
proxy_packages=(postfix dovecot-imapd swaks libnet-ssleay-perl curl python3)
proxy_ports=("$PROXY_PORT_BASE" "$((PROXY_PORT_BASE + 1))")
proxy_strays=(master dovecot)
proxy_sections=(
	"G. starttls proxy (gateway): real clients -> proxy -> real servers|TestProxyServerSide TestProxyClientSide"
)

proxy_start() {
	local d=$WORK/proxy
	mkdir -p "$d/postfix/etc" "$d/postfix/spool" "$d/postfix/data" "$d/dovecot/run" "$d/dovecot/state" \
		"$d/mail/$MAIL_USER/Maildir/new" "$d/mail/$MAIL_USER/Maildir/cur" "$d/mail/$MAIL_USER/Maildir/tmp" "$d/logs"
	chown -R "$MAIL_UID:$MAIL_GID" "$d/mail"
	chmod 700 "$d/mail/$MAIL_USER"
	local sub=(-e "s|@D@|$d|g" -e "s|@WORK@|$WORK|g" -e "s|@MAILUID@|$MAIL_UID|g" -e "s|@MAILGID@|$MAIL_GID|g")

	# Dovecot, plaintext IMAP.
	sed "${sub[@]}" -e "s|@PORT@|$((PROXY_PORT_BASE + 1))|g" "$ROOT/scripts/interop/proxy/dovecot.conf.in" >"$d/dovecot/dovecot.conf"
	printf '%s:{PLAIN}%s:%s:%s::%s::\n' "$MAIL_USER" "$MAIL_PASSWORD" "$MAIL_UID" "$MAIL_GID" \
		"$d/mail/$MAIL_USER" >"$d/dovecot/users"
	chown root:dovecot "$d/dovecot/users"
	chmod 640 "$d/dovecot/users"
	doveconf -c "$d/dovecot/dovecot.conf" -n >"$d/dovecot/doveconf.txt" 2>&1 ||
		{ cat "$d/dovecot/doveconf.txt" >&2; die "dovecot (proxy) configuration rejected"; }
	log "starting Dovecot (proxy, plaintext only) IMAP on 127.0.0.1:$((PROXY_PORT_BASE + 1))"
	dovecot -F -c "$d/dovecot/dovecot.conf" </dev/null >>"$d/dovecot/stdout.log" 2>&1 &
	record dovecot-proxy $!

	# Postfix, plaintext SMTP.
	local etc=$d/postfix/etc
	sed "${sub[@]}" "$ROOT/scripts/interop/proxy/main.cf.in" >"$etc/main.cf"
	sed "${sub[@]}" -e "s|@PORT@|$PROXY_PORT_BASE|g" "$ROOT/scripts/interop/proxy/master.cf.in" >"$etc/master.cf"
	! grep -n '@[A-Z_]*@' "$etc/main.cf" "$etc/master.cf" "$d/dovecot/dovecot.conf" || die "proxy: unsubstituted template variables"
	[ -f /etc/postfix/dynamicmaps.cf ] && cp /etc/postfix/dynamicmaps.cf "$etc/"
	[ -d /etc/postfix/dynamicmaps.cf.d ] && cp -r /etc/postfix/dynamicmaps.cf.d "$etc/"
	chown -R root:root "$etc"
	chown postfix: "$d/postfix/data"
	log "starting Postfix (proxy, plaintext only) $(postconf -c "$etc" -h mail_version) on 127.0.0.1:$PROXY_PORT_BASE"
	postfix -c "$etc" start >>"$d/postfix/start.log" 2>&1 || {
		cat "$d/postfix/start.log" "$d/postfix/postfix.log" >&2 2>/dev/null
		die "postfix (proxy) start failed"
	}
	local pidf=$d/postfix/spool/pid/master.pid pid='' i
	for i in $(seq 50); do
		[ -s "$pidf" ] && pid=$(tr -dc 0-9 <"$pidf") && [ -n "$pid" ] && break
		sleep 0.1
	done
	[ -n "$pid" ] || die "no Postfix (proxy) master pid in $pidf"
	record postfix-proxy "$pid"
}

proxy_env() {
	local d=$WORK/proxy
	export INTEROP_PROXY_POSTFIX=127.0.0.1:$PROXY_PORT_BASE
	export INTEROP_PROXY_DOVECOT=127.0.0.1:$((PROXY_PORT_BASE + 1))
	export INTEROP_PROXY_PORT_BASE=$PROXY_PORT_BASE
	export INTEROP_PROXY_MAILDIR=$d/mail/$MAIL_USER/Maildir
	export INTEROP_PROXY_POSTFIX_LOG=$d/postfix/postfix.log
	export INTEROP_PROXY_DOVECOT_LOG=$d/dovecot/dovecot.log
	export INTEROP_PROXY_LOGS=$d/logs
	# The mail module's logs, for the client-side tests: Dovecot's login
	# line names its transport ("TLS"), Postfix logs every session's end.
	export INTEROP_DOVECOT_LOG=$WORK/dovecot/dovecot.log
	export INTEROP_POSTFIX_LOG=$WORK/postfix/postfix.log
}

proxy_versions() {
	echo "Postfix (proxy, plaintext) $(postconf -d -h mail_version 2>/dev/null), Dovecot (proxy, plaintext) $(dovecot --version | cut -d' ' -f1), swaks $(swaks --version 2>/dev/null | sed -n 's/^swaks version //p')"
}
