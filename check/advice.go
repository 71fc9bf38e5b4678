package check

// advice is what the report tells an administrator to change, per
// protocol, naming the settings of the servers people run. A protocol
// without a row gets the generic text.
type advice struct {
	notOffered    string // enable the upgrade
	versions      string // TLS 1.2 and later only
	ciphers       string // strong suites only
	order         string // server cipher order
	authBeforeTLS string // hide login until TLS
	injection     string // the CVE-2011-0411 class fix
	// noLoginList: the protocol does not list login methods during the
	// upgrade dialog (an MX needs none; PostgreSQL and MySQL name the
	// method only after a user name is sent), so an empty list says
	// nothing.
	noLoginList bool
	// capsOnce: the server states its capabilities once, before TLS
	// (MySQL's greeting); there is nothing to read again.
	capsOnce bool
	// staticOffer: the protocol lists the upgrade in a fixed capability
	// set that no RFC asks to change inside TLS (FTP FEAT, the LDAP root
	// DSE), so listing it again is no finding.
	staticOffer bool
}

var advices = map[string]advice{
	"smtp": {
		notOffered:    "enable STARTTLS with a certificate (Postfix: smtpd_tls_security_level = may; Exim: tls_advertise_hosts = *)",
		authBeforeTLS: "offer AUTH only after STARTTLS (Postfix: smtpd_tls_auth_only = yes; Dovecot submission: disable_plaintext_auth = yes)",
		injection:     "discard input buffered before the TLS handshake (CVE-2011-0411: fixed in Postfix 2.8.4)",
		noLoginList:   true,
	},
	"lmtp": {notOffered: "enable STARTTLS (Dovecot: ssl = yes in the lmtp service)", noLoginList: true},
	"imap": {
		notOffered:    "enable STARTTLS with a certificate (Dovecot: ssl = yes)",
		authBeforeTLS: "announce LOGINDISABLED and refuse login before TLS (Dovecot: disable_plaintext_auth = yes)",
	},
	"pop3": {
		notOffered:    "enable STLS with a certificate (Dovecot: ssl = yes)",
		authBeforeTLS: "refuse USER/PASS and AUTH before STLS (Dovecot: disable_plaintext_auth = yes)",
	},
	"xmpp": {
		notOffered:    "enable STARTTLS (Prosody: c2s_require_encryption = true with a certificate)",
		authBeforeTLS: "offer SASL only after TLS (Prosody: c2s_require_encryption = true)",
	},
	"xmpp-server": {notOffered: "enable STARTTLS between servers (Prosody: s2s_require_encryption = true)", noLoginList: true},
	"ldap": {
		notOffered:    "configure a certificate so that StartTLS is offered (slapd: olcTLSCertificateFile, olcTLSCertificateKeyFile)",
		authBeforeTLS: "require TLS for simple binds (slapd: security simple_bind=128, or olcSecurity: tls=1)",
		staticOffer:   true,
		noLoginList:   true, // simple bind is never announced
	},
	"nntp": {
		notOffered:    "enable STARTTLS (INN: tlscertfile and tlskeyfile in inn.conf)",
		authBeforeTLS: "require TLS before AUTHINFO (INN: require_ssl: true in readers.conf)",
	},
	"ftp": {
		notOffered:    "enable AUTH TLS (vsftpd: ssl_enable = YES; ProFTPD: TLSEngine on)",
		authBeforeTLS: "refuse USER/PASS before AUTH TLS (vsftpd: force_local_logins_ssl = YES, force_anon_logins_ssl = YES; ProFTPD: TLSRequired on)",
		staticOffer:   true,
	},
	"irc": {
		notOffered:    "load the STARTTLS module (InspIRCd: <module name=\"starttls\">)",
		authBeforeTLS: "offer SASL only after TLS",
		injection:     "discard input buffered before the TLS handshake",
	},
	"sieve": {
		notOffered:    "enable STARTTLS (Dovecot: ssl = yes)",
		authBeforeTLS: "offer SASL only after STARTTLS (Dovecot: disable_plaintext_auth = yes)",
	},
	"postgres": {
		notOffered:    "enable TLS (postgresql.conf: ssl = on with ssl_cert_file and ssl_key_file)",
		authBeforeTLS: "accept password logins only over TLS (pg_hba.conf: hostssl lines only, hostnossl … reject)",
		injection:     "upgrade PostgreSQL (CVE-2021-23214: fixed in 14.1, 13.5, 12.9, 11.14, 10.19)",
		noLoginList:   true,
	},
	"mysql": {
		notOffered:    "enable TLS (MariaDB/MySQL: ssl_cert and ssl_key)",
		authBeforeTLS: "refuse logins without TLS (require_secure_transport = ON, or REQUIRE SSL per account)",
		noLoginList:   true,
		capsOnce:      true,
	},
	"http": {notOffered: "answer Upgrade: TLS/1.0 with 101 Switching Protocols (RFC 2817), or serve https only"},
}

// serverSettings names the TLS settings of the usual server per protocol,
// shared by several hints.
var serverSettings = map[string][3]string{ // versions, ciphers, order
	"smtp":     {"Postfix: smtpd_tls_protocols = >=TLSv1.2 and smtpd_tls_mandatory_protocols = >=TLSv1.2", "Postfix: smtpd_tls_ciphers = high, smtpd_tls_exclude_ciphers = aNULL, RC4, 3DES, MD5", "Postfix: tls_preempt_cipherlist = yes"},
	"imap":     {"Dovecot: ssl_min_protocol = TLSv1.2", "Dovecot: ssl_cipher_list = HIGH:!aNULL:!3DES:!RC4", "Dovecot: ssl_prefer_server_ciphers = yes"},
	"pop3":     {"Dovecot: ssl_min_protocol = TLSv1.2", "Dovecot: ssl_cipher_list = HIGH:!aNULL:!3DES:!RC4", "Dovecot: ssl_prefer_server_ciphers = yes"},
	"sieve":    {"Dovecot: ssl_min_protocol = TLSv1.2", "Dovecot: ssl_cipher_list = HIGH:!aNULL:!3DES:!RC4", "Dovecot: ssl_prefer_server_ciphers = yes"},
	"postgres": {"postgresql.conf: ssl_min_protocol_version = 'TLSv1.2'", "postgresql.conf: ssl_ciphers = 'HIGH:!aNULL:!3DES'", "postgresql.conf: ssl_prefer_server_ciphers = on"},
	"ldap":     {"slapd: TLSProtocolMin 3.3", "slapd: TLSCipherSuite HIGH:!aNULL:!3DES", ""},
	"ftp":      {"vsftpd: ssl_tlsv1 = NO (and OpenSSL's MinProtocol)", "vsftpd: ssl_ciphers = HIGH:!aNULL:!3DES", ""},
}

func adviceFor(protocol string) advice {
	a := advices[protocol]
	if st, ok := serverSettings[protocol]; ok {
		a.versions, a.ciphers, a.order = st[0], st[1], st[2]
	}
	if a.versions == "" {
		a.versions = "accept TLS 1.2 and 1.3 only"
	}
	if a.ciphers == "" {
		a.ciphers = "accept only AEAD suites with ECDHE (and the TLS 1.3 suites)"
	}
	if a.order == "" {
		a.order = "let the server choose the suite by its own order"
	}
	if a.notOffered == "" {
		a.notOffered = "enable the upgrade to TLS with a certificate"
	}
	if a.authBeforeTLS == "" {
		a.authBeforeTLS = "offer login only after the upgrade to TLS"
	}
	if a.injection == "" {
		a.injection = "discard input buffered before the TLS handshake (the CVE-2011-0411 class)"
	}
	return a
}
