# Interop module "http": no server yet. The http-upgrade scheme (RFC 2817)
# is tested against our lab only, with `starttls check`; https is tested
# with real clients, curl and Python's http.client, against the lab. curl
# and python3 are in the script's base packages, so the module installs
# nothing. (Apache httpd's mod_ssl implements RFC 2817 with "SSLEngine
# optional" — upgrade_connection() in ssl_engine_kernel.c sends "101
# Switching Protocols / Upgrade: TLS/1.0, HTTP/1.1" — so Debian's apache2
# could become this module's real server; nginx and lighttpd cannot.)
# No http_packages or http_ports: scripts/interop.sh's module_list turns
# an empty array into one empty name.
MODULES+=(http)
http_sections=(
	"H. HTTP: curl and Python http.client -> lab https; check -> lab http-upgrade|TestHTTPCurl TestHTTPPython TestHTTPCheckLab"
)

http_start() { :; }

http_versions() {
	echo "no HTTP server (the lab only; apache2 mod_ssl could be one); clients: $(curl --version | head -n1 | cut -d' ' -f1-2), $(/usr/bin/python3 --version) http.client"
}
