# Interop module "audit": the ground truth for `starttls check`'s TLS audit.
# A private Postfix instance of its own (not the mail module's: config,
# queue, data and log under $WORK/audit) with one STARTTLS smtpd per
# audited configuration, ports 10030-10036:
#
#   10030 modern           TLS 1.2+1.3, ECDHE+AEAD only, server order
#   10031 legacy-versions  TLS 1.0-1.3, Postfix's default "medium" list
#                          (CBC, RSA kex, DHE, anonymous), client order
#   10032 legacy-cipher    TLS 1.2+1.3, ECDHE+AEAD plus AES128-SHA (RSA
#                          kex, CBC, SHA-1), client order
#   10033 expired          modern, with an expired certificate
#   10034 wrong-name       modern, with a certificate for other.example
#   10035 no-intermediate  modern, leaf issued by an intermediate CA that
#                          is not served
#   10036 full-chain       modern, the same leaf with its intermediate
#
# and two Dovecot IMAP instances (STARTTLS), one per configuration:
#
#   10040 imap-legacy-versions  TLS 1.0-1.3, ECDHE with AEAD or CBC, server order
#   10041 imap-no-intermediate  TLS 1.2+1.3, ECDHE+AEAD, leaf without its intermediate
#
# Every certificate chains to the shared $WORK/pki/ca.pem. The ground truth
# of each port (and how it was verified) is in interop/audit_test.go.
MODULES+=(audit)
AUDIT_PORT_BASE=${INTEROP_AUDIT_PORT_BASE:-10030}
# name:offset, in port order
AUDIT_SERVICES=(modern:0 legacy-versions:1 legacy-cipher:2 expired:3 wrong-name:4 no-intermediate:5 full-chain:6)
# Dovecot IMAP: name:offset:min-protocol:cipher-list:cert (offsets from the base)
AUDIT_IMAP_SERVICES=(
	"imap-legacy-versions:10:TLSv1:ECDHE+AESGCM:ECDHE+CHACHA20:ECDHE+AES:!aNULL:!PSK:@SECLEVEL=0:server"
	"imap-no-intermediate:11:TLSv1.2:ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!PSK:leaf"
)
audit_packages=(postfix dovecot-imapd sslscan)
audit_ports=()
for _s in "${AUDIT_SERVICES[@]}" "${AUDIT_IMAP_SERVICES[@]}"; do
	_s=${_s#*:}
	audit_ports+=($((AUDIT_PORT_BASE + ${_s%%:*})))
done
unset _s
audit_strays=(master dovecot)
audit_sections=(
	"T. TLS audit: starttls check -> Postfix and Dovecot with known TLS configurations (oracles: openssl s_client, sslscan)|TestAudit"
)

# audit_port NAME: the port of a service.
audit_port() {
	local s
	for s in "${AUDIT_SERVICES[@]}"; do
		[ "${s%%:*}" = "$1" ] && { echo $((AUDIT_PORT_BASE + ${s#*:})); return; }
	done
	die "audit: no service $1"
}

# audit_pki DIR: certificates under DIR, all chaining to $WORK/pki/ca.pem.
audit_pki() {
	local d=$1 ca=$WORK/pki
	local names="subjectAltName = IP:127.0.0.1,DNS:localhost,DNS:mx.$MAIL_DOMAIN"
	mkdir -p "$d"
	# leaf_ext FILE SAN-LINE
	leaf_ext() {
		printf '%s\n' "basicConstraints = critical,CA:FALSE" \
			"keyUsage = critical,digitalSignature,keyEncipherment" \
			"extendedKeyUsage = serverAuth" "$2" >"$1"
	}
	# An expired certificate: `openssl x509 -req` cannot back-date, `openssl
	# ca` can (-startdate/-enddate).
	mkdir -p "$d/ca"
	: >"$d/ca/index.txt"
	cat >"$d/ca/ca.cnf" <<-EOF
		[ca]
		default_ca = audit
		[audit]
		database = $d/ca/index.txt
		new_certs_dir = $d/ca
		serial = $d/ca/serial
		default_md = sha256
		policy = any
		unique_subject = no
		copy_extensions = none
		[any]
		commonName = supplied
		organizationName = optional
		[leaf]
		basicConstraints = critical,CA:FALSE
		keyUsage = critical,digitalSignature,keyEncipherment
		extendedKeyUsage = serverAuth
		$names
	EOF
	echo 1000 >"$d/ca/serial"
	openssl req -new -newkey rsa:2048 -nodes -sha256 -keyout "$d/expired.key" -out "$d/expired.csr" \
		-subj "/O=starttls interop/CN=localhost" 2>/dev/null
	openssl ca -batch -config "$d/ca/ca.cnf" -cert "$ca/ca.pem" -keyfile "$ca/ca.key" \
		-startdate 20200101000000Z -enddate 20210101000000Z -extensions leaf \
		-in "$d/expired.csr" -out "$d/expired.pem" -notext 2>"$d/ca/ca.log" ||
		{ cat "$d/ca/ca.log" >&2; die "audit: openssl ca (expired certificate) failed"; }

	# A certificate for another name only.
	openssl req -new -newkey rsa:2048 -nodes -sha256 -keyout "$d/wrongname.key" -out "$d/wrongname.csr" \
		-subj "/O=starttls interop/CN=other.example" 2>/dev/null
	leaf_ext "$d/wrongname.ext" "subjectAltName = DNS:other.example"
	openssl x509 -req -sha256 -days 365 -in "$d/wrongname.csr" -CA "$ca/ca.pem" -CAkey "$ca/ca.key" \
		-CAcreateserial -CAserial "$d/root.srl" -extfile "$d/wrongname.ext" -out "$d/wrongname.pem" 2>/dev/null

	# An intermediate CA, and a leaf it issued.
	openssl req -new -newkey rsa:2048 -nodes -sha256 -keyout "$d/intermediate.key" -out "$d/intermediate.csr" \
		-subj "/O=starttls interop/CN=starttls interop intermediate CA" 2>/dev/null
	printf '%s\n' "basicConstraints = critical,CA:TRUE,pathlen:0" "keyUsage = critical,keyCertSign,cRLSign" \
		>"$d/intermediate.ext"
	openssl x509 -req -sha256 -days 365 -in "$d/intermediate.csr" -CA "$ca/ca.pem" -CAkey "$ca/ca.key" \
		-CAcreateserial -CAserial "$d/root.srl" -extfile "$d/intermediate.ext" -out "$d/intermediate.pem" 2>/dev/null
	openssl req -new -newkey rsa:2048 -nodes -sha256 -keyout "$d/leaf.key" -out "$d/leaf.csr" \
		-subj "/O=starttls interop/CN=localhost" 2>/dev/null
	leaf_ext "$d/leaf.ext" "$names"
	openssl x509 -req -sha256 -days 365 -in "$d/leaf.csr" -CA "$d/intermediate.pem" -CAkey "$d/intermediate.key" \
		-CAcreateserial -CAserial "$d/intermediate.srl" -extfile "$d/leaf.ext" -out "$d/leaf.pem" 2>/dev/null
	cat "$d/leaf.pem" "$d/intermediate.pem" >"$d/leaf-chain.pem"
	chmod 600 "$d"/*.key

	# The shape is the point: check it.
	openssl verify -CAfile "$ca/ca.pem" "$d/wrongname.pem" >/dev/null || die "audit: wrongname.pem"
	openssl verify -CAfile "$ca/ca.pem" -untrusted "$d/intermediate.pem" "$d/leaf.pem" >/dev/null || die "audit: leaf.pem"
	! openssl verify -CAfile "$ca/ca.pem" "$d/leaf.pem" >/dev/null 2>&1 || die "audit: leaf.pem verifies without its intermediate"
	openssl verify -CAfile "$ca/ca.pem" -no_check_time "$d/expired.pem" >/dev/null || die "audit: expired.pem"
	! openssl verify -CAfile "$ca/ca.pem" "$d/expired.pem" >/dev/null 2>&1 || die "audit: expired.pem is not expired"
}

audit_start() {
	local d=$WORK/audit s
	mkdir -p "$d/etc" "$d/spool" "$d/data"
	audit_pki "$d/pki"
	local sub=(-e "s|@D@|$d|g" -e "s|@WORK@|$WORK|g")
	for s in "${AUDIT_SERVICES[@]}"; do
		local n=${s%%:*}
		n=${n^^}
		sub+=(-e "s|@P_${n//-/_}@|$((AUDIT_PORT_BASE + ${s#*:}))|g")
	done
	sed "${sub[@]}" "$ROOT/scripts/interop/audit/main.cf.in" >"$d/etc/main.cf"
	sed "${sub[@]}" "$ROOT/scripts/interop/audit/master.cf.in" >"$d/etc/master.cf"
	! grep -n '@[A-Z_]*@' "$d/etc/main.cf" "$d/etc/master.cf" || die "audit: unsubstituted template variables"
	[ -f /etc/postfix/dynamicmaps.cf ] && cp /etc/postfix/dynamicmaps.cf "$d/etc/"
	[ -d /etc/postfix/dynamicmaps.cf.d ] && cp -r /etc/postfix/dynamicmaps.cf.d "$d/etc/"
	chown -R root:root "$d/etc"
	chown postfix: "$d/data"
	log "starting Postfix (audit) $(postconf -c "$d/etc" -h mail_version) on 127.0.0.1:$AUDIT_PORT_BASE-$((AUDIT_PORT_BASE + ${#AUDIT_SERVICES[@]} - 1))"
	postfix -c "$d/etc" start >>"$d/start.log" 2>&1 || {
		cat "$d/start.log" "$d/postfix.log" >&2 2>/dev/null
		die "postfix (audit) start failed"
	}
	local pidf=$d/spool/pid/master.pid pid='' i key
	for i in $(seq 50); do
		[ -s "$pidf" ] && pid=$(tr -dc 0-9 <"$pidf") && [ -n "$pid" ] && break
		sleep 0.1
	done
	[ -n "$pid" ] || die "no Postfix (audit) master pid in $pidf"
	record postfix-audit "$pid"

	local spec name rest off min ciphers cert dd
	for spec in "${AUDIT_IMAP_SERVICES[@]}"; do
		name=${spec%%:*} rest=${spec#*:}
		off=${rest%%:*} rest=${rest#*:}
		min=${rest%%:*} rest=${rest#*:}
		cert=${rest##*:} ciphers=${rest%:*}
		dd=$d/$name
		mkdir -p "$dd/run" "$dd/state" "$dd/home"
		chown "$MAIL_UID:$MAIL_GID" "$dd/home"
		case $cert in
		server) cert=$WORK/pki/server.pem key=$WORK/pki/server.key ;;
		leaf) cert=$d/pki/leaf.pem key=$d/pki/leaf.key ;;
		esac
		sed -e "s|@D@|$dd|g" -e "s|@NAME@|$name|g" -e "s|@PORT@|$((AUDIT_PORT_BASE + off))|g" \
			-e "s|@MIN@|$min|g" -e "s|@CIPHERS@|$ciphers|g" -e "s|@CERT@|$cert|g" -e "s|@KEY@|$key|g" \
			"$ROOT/scripts/interop/audit/dovecot.conf.in" >"$dd/dovecot.conf"
		doveconf -c "$dd/dovecot.conf" -n >"$dd/doveconf.txt" 2>&1 ||
			{ cat "$dd/doveconf.txt" >&2; die "dovecot ($name) configuration rejected"; }
		log "starting Dovecot (audit $name) IMAP on 127.0.0.1:$((AUDIT_PORT_BASE + off))"
		dovecot -F -c "$dd/dovecot.conf" </dev/null >>"$dd/stdout.log" 2>&1 &
		record "dovecot-$name" $!
	done
}

audit_env() {
	local s
	for s in "${AUDIT_SERVICES[@]}"; do
		local n=${s%%:*}
		n=${n^^}
		export "INTEROP_AUDIT_${n//-/_}=127.0.0.1:$((AUDIT_PORT_BASE + ${s#*:}))"
	done
	for s in "${AUDIT_IMAP_SERVICES[@]}"; do
		local n=${s%%:*} off=${s#*:}
		n=${n^^}
		export "INTEROP_AUDIT_${n//-/_}=127.0.0.1:$((AUDIT_PORT_BASE + ${off%%:*}))"
	done
	export INTEROP_AUDIT_LOG=$WORK/audit/postfix.log
}

audit_versions() {
	echo "Postfix (audit) $(postconf -d -h mail_version 2>/dev/null), Dovecot (audit) $(dovecot --version | cut -d' ' -f1), $(openssl version | cut -d' ' -f1-2)"
}
