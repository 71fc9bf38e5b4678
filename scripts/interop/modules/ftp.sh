# Interop module "ftp": vsftpd on 127.0.0.1, anonymous read-only FTP over
# TLS: 10021 with AUTH TLS (RFC 4217), 10990 implicit TLS; passive ports
# 30000-30049. No system user is created: vsftpd's anonymous login maps to
# the packaged "ftp" user, and local logins are allowed for nobody. Virtual
# users would need a PAM service file in /etc/pam.d, outside $WORK.
# See README.md here.
MODULES+=(ftp)
FTP_PORT=${INTEROP_FTP_PORT:-10021}
FTPS_PORT=${INTEROP_FTPS_PORT:-10990}
FTP_PASV_MIN=${INTEROP_FTP_PASV_MIN:-30000}
FTP_PASV_MAX=${INTEROP_FTP_PASV_MAX:-30049}
ftp_packages=(vsftpd curl)
ftp_ports=("$FTP_PORT" "$FTPS_PORT")
ftp_strays=(vsftpd)
ftp_sections=(
	"F. FTP: our library, check and connect -> vsftpd (AUTH TLS and implicit, PROT P data); curl, Python ftplib -> lab|TestVsftpd TestFTPClients"
)

ftp_start() {
	local d=$WORK/ftp
	mkdir -p "$d/tls" "$d/pub/sub" "$d/empty"
	cp "$WORK/pki/server.pem" "$d/tls/server.pem"
	cp "$WORK/pki/server.key" "$d/tls/server.key"
	chmod 600 "$d/tls/server.key"
	# The allow-list (userlist_deny=NO) names only the anonymous login.
	printf 'anonymous\nftp\n' >"$d/user_list"
	printf 'hello from vsftpd over a protected data connection\r\n' >"$d/pub/hello.txt"
	printf 'nested\n' >"$d/pub/sub/nested.txt"
	# vsftpd refuses a writable anonymous root and a writable chroot dir.
	chmod 755 "$d/pub" "$d/pub/sub"
	chmod 555 "$d/empty"
	local name port implicit
	for name in explicit implicit; do
		if [ "$name" = explicit ]; then port=$FTP_PORT implicit=NO; else port=$FTPS_PORT implicit=YES; fi
		sed -e "s|@DIR@|$d|g" -e "s|@PORT@|$port|g" -e "s|@IMPLICIT@|$implicit|g" \
			-e "s|@NAME@|$name|g" -e "s|@REUSE@|${INTEROP_FTP_REUSE:-YES}|g" \
			-e "s|@PASV_MIN@|$FTP_PASV_MIN|g" -e "s|@PASV_MAX@|$FTP_PASV_MAX|g" \
			"$ROOT/scripts/interop/ftp/vsftpd.conf.in" >"$d/vsftpd-$name.conf"
		chmod 600 "$d/vsftpd-$name.conf"
		log "starting vsftpd ($(ftp_version)) on 127.0.0.1:$port ($name TLS)"
		vsftpd "$d/vsftpd-$name.conf" </dev/null >"$d/stdout-$name.log" 2>&1 &
		record vsftpd $!
	done
}

ftp_version() {
	dpkg-query -W -f='${Version}' vsftpd 2>/dev/null || echo unknown
}

ftp_env() {
	export INTEROP_FTP=127.0.0.1:$FTP_PORT
	export INTEROP_FTPS=127.0.0.1:$FTPS_PORT
	export INTEROP_FTP_FILE=hello.txt
	export INTEROP_FTP_FILE_DATA="hello from vsftpd over a protected data connection"
}

ftp_versions() {
	echo "vsftpd $(ftp_version), curl $(curl --version | head -n1 | cut -d' ' -f2), Python $(/usr/bin/python3 -c 'import sys; print(sys.version.split()[0])')"
}
