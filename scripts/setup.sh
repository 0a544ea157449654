#!/usr/bin/env bash
# Sets up vigie on a fresh Debian machine (run as root): system packages,
# a virtual environment in .venv and the package itself.
#   bash scripts/setup.sh          runtime: nmap + vigie
#   bash scripts/setup.sh --test   also the real servers and tools the tests use
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

runtime_pkgs=(nmap ca-certificates libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 fonts-dejavu-core)
test_pkgs=(nginx redis-server openssh-server vsftpd memcached knot knot-dnsutils postgresql
           poppler-utils openssl iproute2 testssl.sh sslscan procps apache2-bin
           bind9-dnsutils nftables)
test_pkgs+=(git)  # tests/scanner/http_servers.py: a real .git folder for the exposed-repository detector
test_pkgs+=(postfix unbound curl)  # mail family tests: real MX (Postfix, posttls-finger), a validating resolver (DANE), curl as MTA-STS oracle
test_pkgs+=(bind9-utils)  # tests/scanner/test_mail.py: dnssec-signzone signs bogus TLSA data (delv, the validating oracle, is in bind9-dnsutils)
test_pkgs+=(mariadb-server)  # tests/scanner/test_service_daemons.py: MariaDB with and without grant tables
test_pkgs+=(samba)  # tests/scanner/test_service_daemons.py: smbd (SMB on 445, NetBIOS session on 139)
test_pkgs+=(xrdp)  # tests/scanner/test_service_daemons.py: RDP X.224 negotiation
test_pkgs+=(tigervnc-standalone-server tigervnc-tools)  # tests/scanner/test_service_daemons.py: Xvnc (RFB) and vncpasswd
test_pkgs+=(xauth socat)  # tests/scanner/test_service_daemons.py: an X11 cookie, and socat relaying a Unix-socket X server to 127.0.26.x:6000
test_pkgs+=(inetutils-telnetd inetutils-inetd)  # tests/scanner/test_service_daemons.py: telnetd under inetd
test_pkgs+=(dovecot-imapd dovecot-pop3d)  # tests/scanner/test_service_daemons.py: IMAP/POP3 with and without STARTTLS
test_pkgs+=(postfix)  # tests/scanner/test_service_daemons.py: submission (587) with and without STARTTLS
test_pkgs+=(chromium chromium-driver)  # browser tests and screenshots of the web console (Selenium)
test_pkgs+=(dovecot-imapd dovecot-pop3d mariadb-server)  # software family: real Dovecot greetings, MariaDB handshake
test_pkgs+=(e2fsprogs util-linux)  # chattr and mount: tests/test_database_faults.py makes the database read-only or its disk full mid-sweep

missing=()
pkgs=("${runtime_pkgs[@]}")
[ "$want_test" = 1 ] && pkgs+=("${test_pkgs[@]}")
python3 -c 'import venv, ensurepip' 2>/dev/null || pkgs+=(python3-venv)
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Keep the distribution's daemons from starting on 0.0.0.0: tests start their own on loopback.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ "$want_test" = 1 ]; then
  .venv/bin/python -m pip install -q -e '.[test]'
else
  .venv/bin/python -m pip install -q -e .
fi
echo "setup: ready (.venv/bin/vigie)"
