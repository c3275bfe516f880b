#!/usr/bin/env bash
# Installs the Debian packages the local internet needs (tests, benchmarks, `npm start`).
# Idempotent; run as root on Debian 12 or Ubuntu. Leaves daemons stopped: the tests start
# every server themselves, bound to their own namespace addresses.
set -euo pipefail

packages=(
  iproute2 util-linux procps systemd
  knot knot-dnsutils bind9-dnsutils bind9-utils
  pebble openssh-server
  # postsrsd: the independent SRS implementation test/integration/srs-postsrsd.test.ts checks maild against
  postfix dovecot-imapd dovecot-lmtpd dovecot-sieve postsrsd
  # the box's spam filter (server-bootstrap/spam/): rspamd brings libhyperscan5 with it
  rspamd redis-server
  opendkim opendkim-tools opendmarc python3-dkim python3-spf postfix-mta-sts-resolver
  # the benchmark's Mail-in-a-Box-style peer: SPF checked by a Postfix policy service (test/bench/)
  postfix-policyd-spf-python
  swaks libnet-dns-perl libnet-ssleay-perl libio-socket-inet6-perl libauthen-sasl-perl
  unbound nftables testssl.sh
  # What the server's user data installs at first boot (server-bootstrap/cloud-init.ts
  # FIRST_BOOT_PACKAGES): a machine of the local internet sees this computer's /usr and cannot run apt.
  unattended-upgrades curl xz-utils ca-certificates
  # The backup job's tools (server-bootstrap/backup/) and the Storage Box stand-in's rclone.
  restic rclone
  # the status page test (test/integration/operations.test.ts) drives it through playwright-core
  chromium
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-packages: missing Debian packages: ${missing[*]}; run as root: sudo bash $0" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Keep apt from starting the daemons it installs (exit 101 = "not allowed").
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
fi
debconf-set-selections <<'SEL'
postfix postfix/main_mailer_type select No configuration
postfix postfix/mailname string mx.example.test
opendmarc opendmarc/dbconfig-install boolean false
SEL
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
