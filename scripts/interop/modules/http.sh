# Interop module "http": no server yet. The http-upgrade scheme (RFC 2817)
# is tested against our lab only, with `starttls check`; https is tested
# with real clients, curl and Python's http.client, against the lab. curl
# and python3 are in the script's base packages, so the module installs
# nothing. No Debian web server does the RFC 2817 upgrade any more:
# Apache's mod_ssl dropped "SSLEngine optional" in 2.4.64 (CVE-2025-49812,
# an HTTP desynchronisation through the upgrade; Debian 12 ships 2.4.71,
# which logs AH10510 and answers the upgrade request with a plain 200), and
# nginx and lighttpd never had it.
# No http_packages or http_ports: scripts/interop.sh's module_list turns
# an empty array into one empty name.
MODULES+=(http)
http_sections=(
	"H. HTTP: curl and Python http.client -> lab https; check -> lab http-upgrade|TestHTTPCurl TestHTTPPython TestHTTPCheckLab"
)

http_start() { :; }

http_versions() {
	echo "no HTTP server does RFC 2817 (Apache removed it in 2.4.64, CVE-2025-49812); clients: $(curl --version | head -n1 | cut -d' ' -f1-2), $(/usr/bin/python3 --version) http.client"
}
