# Interop module "ldap": OpenLDAP slapd 2.5 (Debian's slapd) on 127.0.0.1:
# 10389 plaintext with StartTLS, 10636 implicit TLS (ldaps). One mdb
# database dc=interop,dc=test holding uid=$MAIL_USER with $MAIL_PASSWORD,
# loaded with slapadd before the start. `security simple_bind=128`: a simple
# bind before StartTLS gets confidentialityRequired (13). slapd runs in the
# foreground as the package's user openldap, with SASL_PATH pointing at an
# empty directory so that it offers no SASL mechanism (Debian's
# libsasl2-modules would otherwise list DIGEST-MD5 before TLS).
MODULES+=(ldap)
LDAP_PORT=${INTEROP_LDAP_PORT:-10389}
LDAPS_PORT=${INTEROP_LDAPS_PORT:-10636}
ldap_packages=(slapd ldap-utils)
ldap_ports=("$LDAP_PORT" "$LDAPS_PORT")
ldap_strays=(slapd)
ldap_sections=(
	"L. LDAP: our library, check and connect -> OpenLDAP slapd; ldapsearch/ldapwhoami -ZZ -> starttls lab|TestOpenLDAP TestLDAPClients"
)

ldap_start() {
	local d=$WORK/ldap
	rm -rf "$d"
	mkdir -p "$d/tls" "$d/db" "$d/nosasl"
	cp "$WORK/pki/server.pem" "$d/tls/server.pem"
	cp "$WORK/pki/server.key" "$d/tls/server.key"
	cp "$WORK/pki/ca.pem" "$d/tls/ca.pem"
	sed -e "s|@DIR@|$d|g" "$ROOT/scripts/interop/ldap/slapd.conf.in" >"$d/slapd.conf"
	local hash
	hash=$(slappasswd -s "$MAIL_PASSWORD") || die "slappasswd failed"
	sed -e "s|@USER@|$MAIL_USER|g" -e "s|@HASH@|$hash|g" \
		"$ROOT/scripts/interop/ldap/directory.ldif.in" >"$d/directory.ldif"
	slapadd -f "$d/slapd.conf" -l "$d/directory.ldif" >"$d/slapadd.log" 2>&1 || {
		cat "$d/slapadd.log" >&2
		die "slapadd failed"
	}
	# slapd drops to openldap after reading its configuration; the database
	# and the key must be that user's.
	chown -R openldap:openldap "$d"
	chmod 600 "$d/tls/server.key"
	log "starting slapd ($(ldap_version)) on 127.0.0.1:$LDAP_PORT (StartTLS) and :$LDAPS_PORT (ldaps)"
	SASL_PATH="$d/nosasl" slapd -d 0 -u openldap -g openldap \
		-h "ldap://127.0.0.1:$LDAP_PORT/ ldaps://127.0.0.1:$LDAPS_PORT/" -f "$d/slapd.conf" \
		</dev/null >"$d/slapd.log" 2>&1 &
	record slapd $!
}

ldap_version() {
	slapd -VV 2>&1 | sed -n 's/.*slapd \([0-9][^ ]*\).*/\1/p' | head -n1
}

ldap_env() {
	export INTEROP_LDAP=127.0.0.1:$LDAP_PORT
	export INTEROP_LDAPS=127.0.0.1:$LDAPS_PORT
	export INTEROP_LDAP_BASE=dc=interop,dc=test
}

ldap_versions() {
	echo "OpenLDAP slapd $(ldap_version) (mdb, security simple_bind=128), ldap-utils $(ldapsearch -VV 2>&1 | sed -n 's/.*ldapsearch \([0-9][^ ]*\).*/\1/p' | head -n1)"
}
