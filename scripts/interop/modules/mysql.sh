# Interop module "mysql": MariaDB (Debian's mariadb-server) on 127.0.0.1:13306
# with --require-secure-transport=ON, so that the plaintext-login probe sees
# a server that refuses login without TLS. See README.md here.
MODULES+=(mysql)
MYSQL_PORT=${INTEROP_MYSQL_PORT:-13306}
mysql_packages=(mariadb-server mariadb-client)
mysql_ports=("$MYSQL_PORT")
mysql_strays=(mariadbd)
mysql_sections=(
	"M. MySQL: our library, check and connect -> MariaDB; mariadb client -> starttls lab|TestMariaDB TestMariaDBClient"
)

mysql_start() {
	local d=$WORK/mysql
	mkdir -p "$d/data" "$d/tls"
	cp "$WORK/pki/server.pem" "$WORK/pki/ca.pem" "$d/tls/"
	cp "$WORK/pki/server.key" "$d/tls/server.key"
	chown -R mysql:mysql "$d"
	chmod 600 "$d/tls/server.key"
	log "initialising MariaDB in $d/data"
	mariadb-install-db --no-defaults --user=mysql --datadir="$d/data" \
		--auth-root-authentication-method=socket --skip-test-db >"$d/install.log" 2>&1 || {
		tail -n 30 "$d/install.log" >&2
		die "mariadb-install-db failed"
	}
	log "starting MariaDB ($(mariadbd --version | awk '{print $3}')) on 127.0.0.1:$MYSQL_PORT (require_secure_transport=ON)"
	mariadbd --no-defaults --user=mysql --datadir="$d/data" --socket="$d/mysqld.sock" \
		--port="$MYSQL_PORT" --bind-address=127.0.0.1 --pid-file="$d/mysqld.pid" \
		--log-error="$d/error.log" --skip-name-resolve \
		--ssl-cert="$d/tls/server.pem" --ssl-key="$d/tls/server.key" --ssl-ca="$d/tls/ca.pem" \
		--require-secure-transport=ON </dev/null >"$d/stdout.log" 2>&1 &
	record mariadbd $!
	local i
	for i in $(seq 100); do
		[ -S "$d/mysqld.sock" ] && break
		sleep 0.1
	done
	[ -S "$d/mysqld.sock" ] || { tail -n 30 "$d/error.log" >&2; die "MariaDB did not start"; }
	mariadb --no-defaults -S "$d/mysqld.sock" -u root <<-EOF2 || die "creating the MariaDB user failed"
		CREATE USER '$MAIL_USER'@'%' IDENTIFIED BY '$MAIL_PASSWORD';
		FLUSH PRIVILEGES;
	EOF2
}

mysql_env() {
	export INTEROP_MYSQL=127.0.0.1:$MYSQL_PORT
	export INTEROP_MYSQL_SOCKET=$WORK/mysql/mysqld.sock
}

mysql_versions() {
	echo "MariaDB $(mariadbd --version | awk '{print $3}'), mariadb client $(mariadb --version | sed -n 's/.*Distrib \([^,]*\),.*/\1/p')"
}
