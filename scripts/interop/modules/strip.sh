# Interop module "strip": the ground truth for `starttls strip` (issue 7).
# No daemon of its own: interop/strip_test.go starts the starttls lab
# (`starttls lab --json`) as the honest upstream and, for every (client,
# attack) cell, one `starttls strip --once --report FILE` on a free
# loopback port (--listen 127.0.0.1:0; strip names it on stderr), then runs
# a real client through it:
# curl, swaks, Python's smtplib/imaplib/poplib, openssl s_client, msmtp,
# fetchmail, mutt (batch mode) and our own `starttls connect`. The verdict
# in strip's report is compared with the client's documented behaviour
# (the expectation table and its sources are in interop/strip_test.go);
# the client x attack table is written to $WORK/strip/verdicts.md.
# Client configuration templates: scripts/interop/strip/.
# No strip_ports: every port is ephemeral (strip: ephemeral ports chosen by
# the tests).
MODULES+=(strip)
strip_packages=(curl openssl python3 swaks libnet-ssleay-perl msmtp fetchmail mutt)
strip_sections=(
	"T. starttls strip: real clients -> strip -> lab|TestStrip"
)

strip_start() {
	mkdir -p "$WORK/strip"
}

strip_env() {
	export INTEROP_STRIP_DIR=$WORK/strip
}

strip_versions() {
	echo "clients through strip: swaks $(swaks --version 2>/dev/null | sed -n 's/^swaks version //p'), msmtp $(msmtp --version | sed -n '1s/^msmtp version //p'), fetchmail $(fetchmail --version 2>/dev/null | sed -n 's/^This is fetchmail release \([^+]*\).*/\1/p'), mutt $(mutt -v | sed -n '1s/^Mutt \([^ ]*\).*/\1/p')"
}
