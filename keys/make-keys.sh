#!/bin/sh
# Regenerate the test PKI in this directory (see README.md).  Needs certtool (gnutls-bin).
#
#   ca.crt ca.key              test CA that signs everything below
#   cert.crt pkey.key          server: localhost, server.quic.test, *.quic.test, 127.0.0.1, ::1
#   client.crt client.key      client certificate (CN quic-client) for client-auth tests
#   other-ca.crt other-ca.key  unrelated CA that signed none of these (wrong-CA tests)
#
# ECDSA P-256 everywhere (fast in the slow test VM), valid for 20 years so tests never expire.
set -eu

command -v certtool >/dev/null 2>&1 || {
	echo "make-keys.sh: certtool not found (apt-get install gnutls-bin)" >&2
	exit 1
}

cd "$(dirname "$0")"
DAYS=7300
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

genkey() {
	certtool --generate-privkey --key-type ecdsa --curve secp256r1 --no-text --outfile "$1" \
		2>/dev/null
	# certtool may write the P-256 scalar as 33 bytes (leading zero); RFC 5915 wants exactly
	# 32, and Python's cryptography (aioquic) rejects anything else: re-encode with OpenSSL.
	openssl pkey -in "$1" -out "$1.pem" && mv "$1.pem" "$1"
	chmod 0644 "$1" # test material, committed on purpose
}

ca() { # ca <name> <CN>
	cat >"$tmp/$1.tmpl" <<EOF
organization = "quicctl selftests"
cn = "$2"
ca
cert_signing_key
crl_signing_key
expiration_days = $DAYS
EOF
	genkey "$1.key"
	certtool --generate-self-signed --load-privkey "$1.key" --template "$tmp/$1.tmpl" \
		--no-text --outfile "$1.crt" 2>/dev/null
}

leaf() { # leaf <key> <crt> <template body>
	printf 'organization = "quicctl selftests"\nexpiration_days = %s\nsigning_key\n%s\n' \
		"$DAYS" "$3" >"$tmp/$2.tmpl"
	genkey "$1"
	certtool --generate-certificate --load-privkey "$1" --load-ca-certificate ca.crt \
		--load-ca-privkey ca.key --template "$tmp/$2.tmpl" --no-text --outfile "$2" 2>/dev/null
}

ca ca "quicctl test CA"
ca other-ca "quicctl unrelated test CA"

leaf pkey.key cert.crt 'cn = "localhost"
dns_name = "localhost"
dns_name = "server.quic.test"
dns_name = "*.quic.test"
ip_address = "127.0.0.1"
ip_address = "::1"
tls_www_server'

leaf client.key client.crt 'cn = "quic-client"
dns_name = "client.quic.test"
tls_www_client'

for c in cert.crt client.crt; do
	out=$(certtool --verify --load-ca-certificate ca.crt --infile "$c" 2>&1) || {
		echo "make-keys.sh: $c does not verify against ca.crt:" >&2
		echo "$out" >&2
		exit 1
	}
done
echo "make-keys.sh: wrote ca.crt ca.key cert.crt pkey.key client.crt client.key" \
	"other-ca.crt other-ca.key in $(pwd)"
