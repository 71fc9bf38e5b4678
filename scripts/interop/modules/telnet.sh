# Interop module "telnet": netkit telnetd-ssl (Debian's telnetd-ssl) run per
# connection by scripts/interop/telnet/inetd.py on 127.0.0.1: 10023 plain
# Telnet, 10992 implicit TLS (-z ssl). telnetd-ssl does NOT implement the
# START_TLS option (46) of draft-altman-telnet-starttls: on a plain
# connection it offers TLS only through its own AUTHENTICATION option
# (RFC 2941) type SSL (7); the tests record that our client reports "not
# offered" there. Its implicit-TLS mode is a real server for telnets, and
# telnet-ssl -z ssl is a real client for the lab's telnets endpoint. No
# login against telnetd (it would be a system login).
MODULES+=(telnet)
TELNET_PORT=${INTEROP_TELNET_PORT:-10023}
TELNETS_PORT=${INTEROP_TELNETS_PORT:-10992}
telnet_packages=(telnetd-ssl telnet-ssl)
telnet_ports=("$TELNET_PORT" "$TELNETS_PORT")
telnet_sections=(
	"E. Telnet: our library and check -> telnetd-ssl (implicit; no START_TLS option there); telnet-ssl -z ssl -> lab telnets|TestTelnetdSSL TestTelnetSSLClient"
)

telnet_start() {
	local d=$WORK/telnet
	mkdir -p "$d"
	cp "$WORK/pki/server.pem" "$d/server.pem"
	cp "$WORK/pki/server.key" "$d/server.key"
	chmod 600 "$d/server.key"
	log "starting telnetd-ssl ($(telnet_version telnetd-ssl)) via inetd.py on 127.0.0.1:$TELNET_PORT (plain, AUTH SSL) and :$TELNETS_PORT (implicit TLS)"
	/usr/bin/python3 "$ROOT/scripts/interop/telnet/inetd.py" --work "$d" --listen "127.0.0.1:$TELNET_PORT" -- \
		/usr/sbin/in.telnetd -z "cert=$d/server.pem" -z "key=$d/server.key" </dev/null >"$d/plain.log" 2>&1 &
	record inetd-telnet $!
	/usr/bin/python3 "$ROOT/scripts/interop/telnet/inetd.py" --work "$d" --listen "127.0.0.1:$TELNETS_PORT" -- \
		/usr/sbin/in.telnetd -z ssl -z "cert=$d/server.pem" -z "key=$d/server.key" </dev/null >"$d/ssl.log" 2>&1 &
	record inetd-telnets $!
}

telnet_version() {
	dpkg-query -W -f='${Version}' "$1" 2>/dev/null
}

telnet_env() {
	export INTEROP_TELNETD=127.0.0.1:$TELNET_PORT
	export INTEROP_TELNETDS=127.0.0.1:$TELNETS_PORT
}

telnet_versions() {
	echo "telnetd-ssl $(telnet_version telnetd-ssl), telnet-ssl $(telnet_version telnet-ssl)"
}
