# Interop module "sieve": Dovecot Pigeonhole's ManageSieve (Debian's
# dovecot-managesieved) in a Dovecot instance of its own (not the mail
# module's) on 127.0.0.1:14190, STARTTLS only (RFC 5804 has no implicit
# port), AUTHENTICATE PLAIN only after TLS. Dovecot treats a client from its
# own address as secure: the tests connect from 127.0.0.2.
MODULES+=(sieve)
SIEVE_PORT=${INTEROP_SIEVE_PORT:-14190}
sieve_packages=(dovecot-managesieved dovecot-sieve)
sieve_ports=("$SIEVE_PORT")
sieve_sections=(
	"S. ManageSieve: our library, check and connect -> Dovecot Pigeonhole; openssl s_client -starttls sieve -> lab and Dovecot|TestDovecotManageSieve TestSieveOpenSSLClient"
)

sieve_start() {
	local d=$WORK/sieve
	rm -rf "$d/run" "$d/state"
	mkdir -p "$d/run" "$d/state" "$d/home/$MAIL_USER/sieve"
	sed -e "s|@D@|$d|g" -e "s|@WORK@|$WORK|g" -e "s|@PORT@|$SIEVE_PORT|g" \
		"$ROOT/scripts/interop/sieve/dovecot.conf.in" >"$d/dovecot.conf"
	printf '%s:{PLAIN}%s:%s:%s::%s::\n' "$MAIL_USER" "$MAIL_PASSWORD" "$MAIL_UID" "$MAIL_GID" \
		"$d/home/$MAIL_USER" >"$d/users"
	chown root:dovecot "$d/users"
	chmod 640 "$d/users"
	chown -R "$MAIL_UID:$MAIL_GID" "$d/home"
	chmod 700 "$d/home/$MAIL_USER"
	doveconf -c "$d/dovecot.conf" -n >"$d/doveconf.txt" 2>&1 ||
		{ cat "$d/doveconf.txt" >&2; die "dovecot (sieve) configuration rejected"; }
	log "starting Dovecot $(sieve_version) ManageSieve on 127.0.0.1:$SIEVE_PORT (STARTTLS)"
	dovecot -F -c "$d/dovecot.conf" </dev/null >>"$d/stdout.log" 2>&1 &
	record dovecot-sieve $!
}

sieve_version() {
	dovecot --version | cut -d' ' -f1
}

sieve_env() {
	export INTEROP_SIEVE=127.0.0.1:$SIEVE_PORT
	# Dovecot treats its own address as secure; connect from this one.
	export INTEROP_SIEVE_SOURCE=127.0.0.2
}

sieve_versions() {
	echo "Dovecot $(sieve_version) Pigeonhole ManageSieve $(dpkg-query -W -f='${Version}' dovecot-managesieved 2>/dev/null)"
}
