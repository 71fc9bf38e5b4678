# Interop module "nntp": INN 2.7's nnrpd (Debian's inn2) standalone on
# 127.0.0.1: 10119 with STARTTLS (RFC 4642), 10563 implicit TLS (-S); one
# group local.test with one article in a tradspool, history and overview
# built by makehistory; login (AUTHINFO USER/PASS via ckpasswd) only over TLS.
#
# inn2 is NOT installed: its postinst runs innconfval (which dies when the
# host name is not a FQDN) and newaliases (which dies without
# /etc/postfix/main.cf), and a half-configured package breaks every later
# apt-get. nntp_packages lists inn2's runtime libraries instead; nntp_start
# fetches the .deb with `apt-get download` and unpacks it under $WORK with
# dpkg-deb -x. nnrpd runs as root and drops to the news user itself.
# Cyrus SASL mechanisms are switched off (SASL_CONF_PATH, INN.conf
# "mech_list: none"): else nnrpd offers SCRAM, DIGEST-MD5… before TLS.
MODULES+=(nntp)
NNTP_PORT=${INTEROP_NNTP_PORT:-10119}
NNTPS_PORT=${INTEROP_NNTPS_PORT:-10563}
nntp_packages=(libcanlock3 libdb5.3 libperl5.36 libpython3.11 libsasl2-2 libsqlite3-0 libssl3 zlib1g libpam0g libcrypt1 openssl)
nntp_ports=("$NNTP_PORT" "$NNTPS_PORT")
nntp_strays=(nnrpd)
nntp_sections=(
	"N. NNTP: our library, check and connect -> INN nnrpd; openssl s_client -starttls nntp -> lab|TestINN TestNNTPOpenSSLClient"
)

nntp_root() { echo "$WORK/nntp/root"; }

nntp_fetch() {
	local d=$WORK/nntp deb
	deb=$(ls "$d"/inn2_*.deb 2>/dev/null | head -n1 || true)
	if [ -z "$deb" ]; then
		log "fetching the inn2 package (apt-get download; not installed)"
		(cd "$d" && apt-get download inn2 >/dev/null 2>"$d/apt-download.log") ||
			die "apt-get download inn2 failed (see $d/apt-download.log)"
		deb=$(ls "$d"/inn2_*.deb | head -n1)
	fi
	rm -rf "$d/root"
	dpkg-deb -x "$deb" "$d/root"
}

nntp_start() {
	local d=$WORK/nntp r sub
	mkdir -p "$d"
	nntp_fetch
	r=$(nntp_root)
	rm -rf "$d/etc" "$d/db" "$d/run" "$d/log" "$d/spool" "$d/tmp" "$d/http" "$d/tls" "$d/sasl"
	mkdir -p "$d/etc" "$d/db" "$d/run" "$d/log" "$d/tmp" "$d/http" "$d/tls" "$d/sasl" \
		"$d/spool/articles/local/test" "$d/spool/overview" "$d/spool/outgoing" "$d/spool/incoming" "$d/spool/archive"
	sub=(-e "s|@D@|$d|g" -e "s|@ROOT@|$r|g" -e "s|@WORK@|$WORK|g" -e "s|@PORT@|$NNTP_PORT|g" -e "s|@USER@|$MAIL_USER|g")
	sed "${sub[@]}" "$ROOT/scripts/interop/nntp/inn.conf.in" >"$d/etc/inn.conf"
	sed "${sub[@]}" "$ROOT/scripts/interop/nntp/readers.conf.in" >"$d/etc/readers.conf"
	cp "$r/etc/news/storage.conf" "$d/etc/storage.conf"
	printf 'local.test 0000000001 0000000001 y\n' >"$d/db/active"
	printf 'local.test\tinterop test group\n' >"$d/db/newsgroups"
	: >"$d/db/history"
	printf 'local/test 1\n' >"$d/spool/tradspool.map"
	cp "$ROOT/scripts/interop/nntp/article.in" "$d/spool/articles/local/test/1"
	printf '%s:%s\n' "$MAIL_USER" "$(openssl passwd -6 "$MAIL_PASSWORD")" >"$d/passwd"
	printf 'mech_list: none\n' >"$d/sasl/INN.conf"
	cp "$WORK/pki/server.pem" "$d/tls/server.pem"
	cp "$WORK/pki/server.key" "$d/tls/server.key"
	chown -R news:news "$d/etc" "$d/db" "$d/run" "$d/log" "$d/spool" "$d/tmp" "$d/http" "$d/tls" "$d/sasl" "$d/passwd"
	chmod 600 "$d/tls/server.key" "$d/passwd"
	export INNCONF=$d/etc/inn.conf
	# History (message-id lookups) and overview of the spool, small dbz
	# (-s); makehistory leaves a flag that makes nnrpd answer 400 until it
	# is removed.
	LD_LIBRARY_PATH=$r/usr/lib/news setpriv --reuid=news --regid=news --init-groups -- \
		"$r/usr/lib/news/bin/makehistory" -O -s 100 >"$d/log/makehistory.log" 2>&1 ||
		die "makehistory failed (see $d/log/makehistory.log)"
	rm -f "$d/run/.rebuildoverview"
	log "starting INN nnrpd ($(nntp_version)) on 127.0.0.1:$NNTP_PORT (STARTTLS) and :$NNTPS_PORT (implicit TLS)"
	LD_LIBRARY_PATH=$r/usr/lib/news SASL_CONF_PATH=$d/sasl \
		"$r/usr/lib/news/bin/nnrpd" -D -f -b 127.0.0.1 -p "$NNTP_PORT" </dev/null >"$d/log/nnrpd.out" 2>&1 &
	record nnrpd $!
	LD_LIBRARY_PATH=$r/usr/lib/news SASL_CONF_PATH=$d/sasl \
		"$r/usr/lib/news/bin/nnrpd" -D -f -S -b 127.0.0.1 -p "$NNTPS_PORT" </dev/null >"$d/log/nnrpds.out" 2>&1 &
	record nnrpd $!
	unset INNCONF
}

nntp_version() {
	local deb
	deb=$(ls "$WORK"/nntp/inn2_*.deb 2>/dev/null | head -n1 || true)
	[ -n "$deb" ] && dpkg-deb -f "$deb" Version || echo unknown
}

nntp_env() {
	export INTEROP_NNTP=127.0.0.1:$NNTP_PORT
	export INTEROP_NNTPS=127.0.0.1:$NNTPS_PORT
}

nntp_versions() {
	echo "INN nnrpd $(nntp_version) (unpacked inn2 .deb, standalone, tradspool)"
}
