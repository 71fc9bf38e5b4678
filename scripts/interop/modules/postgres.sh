# Interop module "postgres": PostgreSQL 15 (Debian's postgresql-15) on
# 127.0.0.1:15432 with ssl = on; pg_hba.conf allows
# login from 127.0.0.1 only over TLS (hostssl / hostnossl reject) and from
# 127.0.0.3 also in plaintext (the auth-before-tls case). See README.md here.
MODULES+=(postgres)
POSTGRES_PORT=${INTEROP_POSTGRES_PORT:-15432}
POSTGRES_BIN=/usr/lib/postgresql/15/bin
postgres_packages=(postgresql-15 postgresql-client-15)
postgres_ports=("$POSTGRES_PORT")
postgres_strays=(postgres)
postgres_sections=(
	"P. PostgreSQL: our library, check and connect -> PostgreSQL 15; psql -> starttls lab|TestPostgres TestPostgresPsql"
)

postgres_start() {
	local d=$WORK/postgres
	mkdir -p "$d"
	rm -rf "$d/data"
	chown postgres:postgres "$d"
	log "initialising PostgreSQL in $d/data"
	setpriv --reuid=postgres --regid=postgres --init-groups \
		"$POSTGRES_BIN/initdb" -D "$d/data" -U postgres --auth-local=peer --auth-host=reject \
		--encoding=UTF8 --no-instructions >"$d/initdb.log" 2>&1 || {
		tail -n 30 "$d/initdb.log" >&2
		die "initdb failed"
	}
	sed -e "s|@PORT@|$POSTGRES_PORT|g" -e "s|@DIR@|$d|g" \
		"$ROOT/scripts/interop/postgres/postgresql.conf.in" >"$d/data/postgresql.conf"
	cp "$ROOT/scripts/interop/postgres/pg_hba.conf" "$d/data/pg_hba.conf"
	cp "$WORK/pki/server.pem" "$d/data/server.pem"
	cp "$WORK/pki/server.key" "$d/data/server.key"
	chown postgres:postgres "$d/data/postgresql.conf" "$d/data/pg_hba.conf" "$d/data/server.pem" "$d/data/server.key"
	chmod 600 "$d/data/server.key" "$d/data/pg_hba.conf"
	log "starting PostgreSQL ($("$POSTGRES_BIN/postgres" --version | awk '{print $3}')) on 127.0.0.1:$POSTGRES_PORT"
	# setpriv execs: the recorded pid is the postmaster itself.
	setpriv --reuid=postgres --regid=postgres --init-groups \
		"$POSTGRES_BIN/postgres" -D "$d/data" </dev/null >"$d/postgres.log" 2>&1 &
	record postgres $!
	local i
	for i in $(seq 100); do
		[ -S "$d/.s.PGSQL.$POSTGRES_PORT" ] && break
		sleep 0.1
	done
	[ -S "$d/.s.PGSQL.$POSTGRES_PORT" ] || { tail -n 30 "$d/postgres.log" >&2; die "PostgreSQL did not start"; }
	setpriv --reuid=postgres --regid=postgres --init-groups \
		psql -X -q -v ON_ERROR_STOP=1 -h "$d" -p "$POSTGRES_PORT" -U postgres -d postgres <<-EOF2 || die "creating the PostgreSQL role failed"
		CREATE ROLE $MAIL_USER LOGIN PASSWORD '$MAIL_PASSWORD';
		CREATE DATABASE $MAIL_USER OWNER $MAIL_USER;
	EOF2
}

postgres_env() {
	export INTEROP_POSTGRES=127.0.0.1:$POSTGRES_PORT
	# The source address pg_hba.conf lets log in without TLS.
	export INTEROP_POSTGRES_PLAINTEXT_SOURCE=127.0.0.3
}

postgres_versions() {
	echo "PostgreSQL $("$POSTGRES_BIN/postgres" --version | awk '{print $3}'), psql $(psql --version | awk '{print $3}')"
}
