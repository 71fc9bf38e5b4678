# Interop module "xmpp": Prosody 0.12 (Debian's prosody) on 127.0.0.1 with
# the interop certificate: 10222 client-to-server with STARTTLS (required),
# 10223 client-to-server direct TLS (XEP-0368), 10269 server-to-server with
# STARTTLS (required). VirtualHost "localhost", user $MAIL_USER created
# with prosodyctl. See README.md here.
MODULES+=(xmpp)
XMPP_PORT=${INTEROP_XMPP_PORT:-10222}
XMPPS_PORT=${INTEROP_XMPPS_PORT:-10223}
XMPP_S2S_PORT=${INTEROP_XMPP_S2S_PORT:-10269}
xmpp_packages=(prosody)
xmpp_ports=("$XMPP_PORT" "$XMPPS_PORT" "$XMPP_S2S_PORT")
xmpp_strays=(lua5.4 prosody)
xmpp_sections=(
	"X. XMPP: our library, check and connect -> Prosody (c2s, direct TLS, s2s); openssl s_client -starttls xmpp / xmpp-server -> lab and Prosody|TestProsody TestXMPPOpenSSLClient"
)

xmpp_start() {
	local d=$WORK/xmpp
	mkdir -p "$d/certs" "$d/data"
	cp "$WORK/pki/server.pem" "$d/certs/server.pem"
	cp "$WORK/pki/server.key" "$d/certs/server.key"
	sed -e "s|@DIR@|$d|g" -e "s|@C2S@|$XMPP_PORT|g" -e "s|@C2S_TLS@|$XMPPS_PORT|g" -e "s|@S2S@|$XMPP_S2S_PORT|g" \
		"$ROOT/scripts/interop/xmpp/prosody.cfg.lua.in" >"$d/prosody.cfg.lua"
	# Prosody drops root for its package user; it must read the key and
	# write its data, log and pid file.
	chown -R prosody:prosody "$d"
	chmod 600 "$d/certs/server.key"
	setpriv --reuid=prosody --regid=prosody --init-groups -- \
		prosodyctl --config "$d/prosody.cfg.lua" register "$MAIL_USER" localhost "$MAIL_PASSWORD" \
		>"$d/prosodyctl.log" 2>&1 || die "prosodyctl register failed: $(cat "$d/prosodyctl.log")"
	log "starting Prosody ($(xmpp_version)) on 127.0.0.1:$XMPP_PORT (c2s STARTTLS), :$XMPPS_PORT (c2s direct TLS), :$XMPP_S2S_PORT (s2s STARTTLS)"
	setpriv --reuid=prosody --regid=prosody --init-groups -- \
		prosody -F --config "$d/prosody.cfg.lua" </dev/null >"$d/stdout.log" 2>&1 &
	record prosody $!
}

xmpp_version() {
	dpkg-query -W -f='${Version}' prosody 2>/dev/null || echo unknown
}

xmpp_env() {
	export INTEROP_XMPP=127.0.0.1:$XMPP_PORT
	export INTEROP_XMPPS=127.0.0.1:$XMPPS_PORT
	export INTEROP_XMPP_S2S=127.0.0.1:$XMPP_S2S_PORT
}

xmpp_versions() {
	echo "Prosody $(xmpp_version) (c2s_require_encryption, s2s_require_encryption, c2s_direct_tls_ports)"
}
