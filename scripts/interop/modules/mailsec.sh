# Interop module "mailsec": the DNS and HTTPS side of a mail domain's
# security (issue 5: `starttls check DOMAIN`), with the mail module's
# Postfix (127.0.0.1:$SMTP_PORT, certificate $WORK/pki/server.pem) as every
# domain's MX:
#
#   10053 unbound, a validating resolver: loopback only, no network (stub
#         zones to knotd, every other name refused, root hints on a dead
#         loopback address), one trust anchor, the DS of sec.test
#   10054 knotd, authoritative for sec.test (signed here with ldns-signzone
#         and keys made here with ldns-keygen) and its children, and for
#         the unsigned sts.test and interop.test
#   10443 policy_server.py (Python standard library), the MTA-STS policy
#         host of every mta-sts.DOMAIN, a certificate from the shared CA
#
# The test domains and what each one is for are in the zone files and
# sites.tsv.in under scripts/interop/mailsec/; the expected results in
# interop/mailsec_test.go. Needs the mail module (--only mail,mailsec).
MODULES+=(mailsec)
MAILSEC_RESOLVER_PORT=${INTEROP_MAILSEC_RESOLVER_PORT:-10053}
MAILSEC_AUTH_PORT=${INTEROP_MAILSEC_AUTH_PORT:-10054}
MAILSEC_STS_PORT=${INTEROP_MAILSEC_STS_PORT:-10443}
mailsec_packages=(unbound knot ldnsutils bind9-dnsutils python3 openssl)
mailsec_ports=("$MAILSEC_RESOLVER_PORT" "$MAILSEC_AUTH_PORT" "$MAILSEC_STS_PORT")
mailsec_strays=(unbound knotd python3)
mailsec_sections=(
	"M. mail domains: MX, MTA-STS, TLS-RPT, DANE -> unbound + Postfix|TestMailsecOracles TestMailsecLibrary TestMailsecCheck TestMailsecDial"
)

# Signed children of sec.test (sec.test.zone.in says what each is for).
MAILSEC_SIGNED=(dane-ok dane-bad unusable cname bogus bogus-tlsa)

# mailsec_spki_sha256 CERT: the hex SHA-256 of the certificate's
# SubjectPublicKeyInfo (the data of a TLSA 3 1 1 record).
mailsec_spki_sha256() {
	openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1
}

# mailsec_sign DIR ZONE FILE: sign FILE for ZONE with a new ECDSA P-256 key
# (one key with the SEP flag signing everything) into DIR/ZONE.signed, and
# print the key's DS (SHA-256).
mailsec_sign() {
	local dir=$1 zone=$2 file=$3 key
	key=$(cd "$dir/keys" && ldns-keygen -a ECDSAP256SHA256 -k "$zone") || die "mailsec: ldns-keygen $zone failed"
	# Valid from an hour ago (clock skew), for 30 days.
	ldns-signzone -o "$zone" -f "$dir/zones/$zone.signed" \
		-i "$(date -u -d '-1 hour' +%Y%m%d%H%M%S)" -e "$(date -u -d '+30 days' +%Y%m%d%H%M%S)" \
		"$file" "$dir/keys/$key" >>"$dir/sign.log" 2>&1 || die "mailsec: ldns-signzone $zone failed (see $dir/sign.log)"
	ldns-key2ds -n -2 "$dir/keys/$key.key"
}

mailsec_zones() {
	local d=$1 src=$ROOT/scripts/interop/mailsec tlsa wrong name ds
	mkdir -p "$d/keys" "$d/zones" "$d/src"
	tlsa=$(mailsec_spki_sha256 "$WORK/pki/server.pem")
	# dane-bad: the SPKI digest of the CA's key, which the server never presents.
	wrong=$(mailsec_spki_sha256 "$WORK/pki/ca.pem")
	echo "$tlsa" >"$d/tlsa-server.hex"
	: >"$d/parent-ds"
	local rr
	for name in "${MAILSEC_SIGNED[@]}" insecure; do
		if [ -f "$src/$name.sec.test.zone.in" ]; then # a zone of its own shape
			cp "$src/$name.sec.test.zone.in" "$d/src/$name.sec.test"
			continue
		fi
		case $name in
		dane-bad) rr="3 1 1 $wrong" ;;
		# PKIX-EE: unusable for SMTP (RFC 7672 3.1.3), though it matches.
		unusable) rr="1 1 1 $tlsa" ;;
		*) rr="3 1 1 $tlsa" ;;
		esac
		sed -e "s|@NAME@|$name.sec.test|g" -e "s|@SMTP_PORT@|$SMTP_PORT|g" -e "s|@TLSA@|$rr|g" \
			"$src/child.zone.in" >"$d/src/$name.sec.test"
	done
	cp "$d/src/insecure.sec.test" "$d/zones/insecure.sec.test.signed" # served unsigned
	for name in "${MAILSEC_SIGNED[@]}"; do
		ds=$(mailsec_sign "$d" "$name.sec.test" "$d/src/$name.sec.test")
		if [ "$name" = bogus ]; then
			# The DS of a key that never signed the zone: the chain breaks.
			local other
			other=$(cd "$d/keys" && ldns-keygen -a ECDSAP256SHA256 -k "$name.sec.test")
			ds=$(ldns-key2ds -n -2 "$d/keys/$other.key")
		fi
		echo "$ds" >>"$d/parent-ds"
	done
	# bogus-tlsa: flip the first character of every TLSA signature.
	awk 'BEGIN { OFS = "\t" }
		$4 == "RRSIG" && $5 == "TLSA" { c = substr($NF, 1, 1); $NF = (c == "A" ? "B" : "A") substr($NF, 2); n++ }
		{ print }
		END { if (n != 2) exit 1 }' "$d/zones/bogus-tlsa.sec.test.signed" >"$d/zones/bogus-tlsa.tmp" ||
		die "mailsec: no TLSA signatures to corrupt in bogus-tlsa.sec.test"
	mv "$d/zones/bogus-tlsa.tmp" "$d/zones/bogus-tlsa.sec.test.signed"
	cat "$src/sec.test.zone.in" "$d/parent-ds" >"$d/src/sec.test"
	ds=$(mailsec_sign "$d" sec.test "$d/src/sec.test")
	echo "$ds" >"$d/unbound/sec.test.ds"
	for name in sts.test interop.test; do
		sed -e "s|@STS_PORT@|$MAILSEC_STS_PORT|g" "$src/$name.zone.in" >"$d/zones/$name.signed"
	done
}

mailsec_policy_pki() {
	local d=$1 ca=$WORK/pki names="" h
	# Every policy host except mta-sts.webpki.sts.test (the invalid-certificate case).
	while IFS=$'\t' read -r h _; do
		case $h in '' | '#'* | mta-sts.webpki.sts.test) continue ;; esac
		names="$names,DNS:$h"
	done <"$d/sites.tsv"
	openssl req -new -newkey rsa:2048 -nodes -sha256 -keyout "$d/policy.key" -out "$d/policy.csr" \
		-subj "/O=starttls interop/CN=mta-sts.enforce.sts.test" 2>/dev/null
	printf '%s\n' "basicConstraints = critical,CA:FALSE" "keyUsage = critical,digitalSignature,keyEncipherment" \
		"extendedKeyUsage = serverAuth" "subjectAltName = ${names#,}" >"$d/policy.ext"
	openssl x509 -req -sha256 -days 30 -in "$d/policy.csr" -CA "$ca/ca.pem" -CAkey "$ca/ca.key" \
		-CAcreateserial -CAserial "$d/ca.srl" -extfile "$d/policy.ext" -out "$d/policy.pem" 2>/dev/null
	chmod 600 "$d/policy.key"
	openssl verify -CAfile "$ca/ca.pem" "$d/policy.pem" >/dev/null || die "mailsec: policy.pem does not verify"
}

mailsec_start() {
	local d=$WORK/mailsec src=$ROOT/scripts/interop/mailsec name zones="" f
	rm -rf "$d"
	mkdir -p "$d/unbound" "$d/knot/db" "$d/sts"
	log "mailsec: signing the test zones (ldns $(ldns-signzone -v 2>&1 | grep -o '[0-9][0-9.]*' | head -n1))"
	mailsec_zones "$d"
	for f in "$d"/zones/*.signed; do
		name=$(basename "$f" .signed)
		zones="$zones  - domain: $name\n    file: \"$f\"\n"
	done
	sed -e "s|@D@|$d/knot|g" -e "s|@AUTH_PORT@|$MAILSEC_AUTH_PORT|g" -e "s|@ZONES@|$zones|" \
		"$src/knot.conf.in" >"$d/knot/knot.conf"
	knotc -c "$d/knot/knot.conf" conf-check >"$d/knot/conf-check.log" 2>&1 ||
		{ cat "$d/knot/conf-check.log" >&2; die "mailsec: knot configuration rejected"; }
	log "mailsec: starting knotd $(knotd -V | grep -o '[0-9][0-9.]*' | head -n1) on 127.0.0.1:$MAILSEC_AUTH_PORT"
	knotd -c "$d/knot/knot.conf" </dev/null >>"$d/knot/stdout.log" 2>&1 &
	record knotd $!

	sed -e "s|@D@|$d/unbound|g" -e "s|@RESOLVER_PORT@|$MAILSEC_RESOLVER_PORT|g" \
		-e "s|@AUTH_PORT@|$MAILSEC_AUTH_PORT|g" "$src/unbound.conf.in" >"$d/unbound/unbound.conf"
	cp "$src/root.hints" "$d/unbound/root.hints"
	unbound-checkconf "$d/unbound/unbound.conf" >"$d/unbound/checkconf.log" 2>&1 ||
		{ cat "$d/unbound/checkconf.log" >&2; die "mailsec: unbound configuration rejected"; }
	log "mailsec: starting unbound $(unbound -V | sed -n 's/^Version //p') on 127.0.0.1:$MAILSEC_RESOLVER_PORT (trust anchor: $(cut -f1,4- "$d/unbound/sec.test.ds" | tr '\t' ' '))"
	unbound -d -c "$d/unbound/unbound.conf" </dev/null >>"$d/unbound/unbound.log" 2>&1 &
	record unbound $!

	sed -e "s|@STS_PORT@|$MAILSEC_STS_PORT|g" "$src/sites.tsv.in" >"$d/sts/sites.tsv"
	mailsec_policy_pki "$d/sts"
	log "mailsec: starting the MTA-STS policy server on 127.0.0.1:$MAILSEC_STS_PORT"
	/usr/bin/python3 "$src/policy_server.py" --listen 127.0.0.1 --port "$MAILSEC_STS_PORT" \
		--cert "$d/sts/policy.pem" --key "$d/sts/policy.key" --sites "$d/sts/sites.tsv" \
		--policies "$src/policies" </dev/null >>"$d/sts/server.log" 2>&1 &
	record policy-server $!
}

mailsec_env() {
	export INTEROP_MAILSEC_RESOLVER=127.0.0.1:$MAILSEC_RESOLVER_PORT
	export INTEROP_MAILSEC_AUTH=127.0.0.1:$MAILSEC_AUTH_PORT
	export INTEROP_MAILSEC_STS_PORT=$MAILSEC_STS_PORT
	export INTEROP_MAILSEC_TLSA=$WORK/mailsec/tlsa-server.hex
}

mailsec_versions() {
	echo "unbound $(unbound -V | sed -n 's/^Version //p'), knotd $(knotd -V | grep -o '[0-9][0-9.]*' | head -n1), ldns-signzone $(ldns-signzone -v 2>&1 | grep -o '[0-9][0-9.]*' | head -n1), $(dig -v 2>&1 | head -n1), policy server $(/usr/bin/python3 --version)"
}
