# Interop module "irc": InspIRCd 3 (Debian's inspircd) on 127.0.0.1, with
# ssl_gnutls and starttls: 16667 plaintext with STARTTLS (IRCv3 tls), 16697
# implicit TLS. No services, so no SASL: login is not tested against it.
# See README.md here.
MODULES+=(irc)
IRC_PORT=${INTEROP_IRC_PORT:-16667}
IRCS_PORT=${INTEROP_IRCS_PORT:-16697}
irc_packages=(inspircd)
irc_ports=("$IRC_PORT" "$IRCS_PORT")
irc_strays=(inspircd)
irc_sections=(
	"I. IRC: our library, check and connect -> InspIRCd; openssl s_client -starttls irc -> lab and InspIRCd|TestInspIRCd TestIRCOpenSSLClient"
)

irc_start() {
	local d=$WORK/irc
	mkdir -p "$d/tls" "$d/data" "$d/logs"
	cp "$WORK/pki/server.pem" "$d/tls/server.pem"
	cp "$WORK/pki/server.key" "$d/tls/server.key"
	chmod 600 "$d/tls/server.key"
	echo "starttls interop: InspIRCd" >"$d/motd.txt"
	sed -e "s|@WORK@|$WORK|g" -e "s|@PLAIN@|$IRC_PORT|g" -e "s|@TLS@|$IRCS_PORT|g" \
		"$ROOT/scripts/interop/irc/inspircd.conf.in" >"$d/inspircd.conf"
	# InspIRCd refuses to run as root: the package's system user runs it
	# (setpriv execs, so the recorded pid is inspircd's own). InspIRCd
	# 3.15 crashes while unloading ssl_gnutls on SIGTERM at the end of the
	# run: bash then prints "Segmentation fault" for it. Harmless: the
	# tests are over by then.
	chown -R irc:irc "$d"
	log "starting InspIRCd ($(irc_version)) on 127.0.0.1:$IRC_PORT (STARTTLS) and :$IRCS_PORT (implicit TLS)"
	setpriv --reuid=irc --regid=irc --init-groups -- inspircd --nofork --nopid --config="$d/inspircd.conf" \
		</dev/null >"$d/stdout.log" 2>&1 &
	record inspircd $!
}

irc_version() {
	inspircd --version 2>/dev/null | head -n1 | sed 's/^InspIRCd-//'
}

irc_env() {
	export INTEROP_IRC=127.0.0.1:$IRC_PORT
	export INTEROP_IRCS=127.0.0.1:$IRCS_PORT
}

irc_versions() {
	echo "InspIRCd $(irc_version) (ssl_gnutls, starttls)"
}
