#!/usr/bin/env bash
# A throwaway Samba AD DC on loopback for resa's directory tests (tests/it/directory.rs).
#
# Choice: ONE domain controller holding TWO organisational units, OU=PlaineCommune and
# OU=SaintDenis, each configured in resa as a separate directory with its own base DNs.
# Why: a Samba DC takes about 300 MB and a minute to provision; two of them on CI's 2-core
# machine would double both for no extra coverage, because resa keeps no state per server,
# only per configured directory (its own URL, bind account, base DNs, USN watermark). The
# two directories still differ on the wire: one is read over LDAPS (636), the other over
# StartTLS (389), with one bind account each.
#
# Needs root (ports 88/389/636) and the packages:
#   samba samba-ad-dc samba-ad-provision samba-dsdb-modules winbind ldap-utils openssl
# Usage: .ci/samba-ad.sh start|stop|env   (env: RESA_AD_DIR, default /tmp/resa-samba-ad)
# After `start`, "$RESA_AD_DIR/env" holds the variables the tests read; export
# RESA_TEST_AD_ENV="$RESA_AD_DIR/env" before `cargo test` (the script prints that line).
set -euo pipefail
ADDIR=${RESA_AD_DIR:-/tmp/resa-samba-ad}
REALM=RESA.EXAMPLE.TEST
DOMAIN=RESA
BASE='DC=resa,DC=example,DC=test'
UPN_SUFFIX=resa.example.test
ADMIN_PW='Passw0rd!Admin'
USER_PW='Passw0rd!'
PC="OU=PlaineCommune,$BASE"
SD="OU=SaintDenis,$BASE"

ldap_admin() { # ldapmodify/ldapsearch as Administrator over LDAPS
  local tool=$1; shift
  LDAPTLS_CACERT="$ADDIR/tls/ca.pem" "$tool" -x -H ldaps://127.0.0.1 \
    -D "Administrator@$UPN_SUFFIX" -w "$ADMIN_PW" "$@"
}

ensure_packages() {
  local missing=() p
  for p in samba samba-ad-dc samba-ad-provision samba-dsdb-modules winbind ldap-utils openssl; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

start() {
  [ "$(id -u)" = 0 ] || { echo "$0 must run as root (Samba binds ports 88, 389 and 636)" >&2; exit 1; }
  ensure_packages
  # A DC left by an earlier start is replaced: every start gives a fresh domain.
  if [ -f "$ADDIR/samba.pid" ] && kill -0 "$(cat "$ADDIR/samba.pid")" 2>/dev/null; then
    echo "replacing the test DC already running (pid $(cat "$ADDIR/samba.pid"))" >&2
    stop
  fi
  rm -rf "$ADDIR"; mkdir -p "$ADDIR/run" "$ADDIR/log" "$ADDIR/tls" "$ADDIR/secrets"
  # Samba's self-signed certificate has a CN only, which rustls rejects: make a CA and a
  # server certificate with subjectAltNames for the names the tests connect to.
  ( cd "$ADDIR/tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj '/CN=resa test CA' -keyout ca.key -out ca.pem \
      -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=dc1.$UPN_SUFFIX" -keyout key.pem -out srv.csr 2>/dev/null
    printf 'subjectAltName=DNS:dc1.%s,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' "$UPN_SUFFIX" > ext.cnf
    openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile ext.cnf -out cert.pem 2>/dev/null
    chmod 600 key.pem ca.key )
  local O=(--option="interfaces=lo" --option="bind interfaces only=yes"
     --option="pid directory=$ADDIR/run" --option="ncalrpc dir=$ADDIR/run/ncalrpc"
     --option="winbindd socket directory=$ADDIR/run/winbindd" --option="log file=$ADDIR/log/log.%m"
     --option="server services=ldap cldap kdc" --option="prefork children=1"
     --option="tls enabled=yes"
     --option="tls keyfile=$ADDIR/tls/key.pem" --option="tls certfile=$ADDIR/tls/cert.pem" --option="tls cafile=$ADDIR/tls/ca.pem")
  samba-tool domain provision --targetdir="$ADDIR/dc" --realm=$REALM --domain=$DOMAIN --server-role=dc \
     --dns-backend=NONE --use-rfc2307 --host-name=dc1 --adminpass="$ADMIN_PW" "${O[@]}" >"$ADDIR/log/provision.log" 2>&1
  local C=(-s "$ADDIR/dc/etc/smb.conf")
  # Lockout after 3 bad passwords, for a day (longer than any CI run), so a locked
  # account can be shown.
  samba-tool domain passwordsettings set --complexity=off --min-pwd-length=4 \
     --account-lockout-threshold=3 --account-lockout-duration=1440 --reset-account-lockout-after=1440 "${C[@]}" >/dev/null

  samba-tool ou add "$PC" "${C[@]}" >/dev/null
  samba-tool ou add "$SD" "${C[@]}" >/dev/null
  for org in PlaineCommune SaintDenis; do
    samba-tool ou add "OU=Agents,OU=$org,$BASE" "${C[@]}" >/dev/null
    samba-tool ou add "OU=Groupes,OU=$org,$BASE" "${C[@]}" >/dev/null
  done
  # The service accounts resa binds with live outside both OUs, as in production.
  samba-tool user create svc-resa-pc "$USER_PW" "${C[@]}" >/dev/null
  samba-tool user create svc-resa-sd "$USER_PW" "${C[@]}" >/dev/null

  # name given surname ou
  local users=(
    "alice.martin Alice Martin PlaineCommune"
    "bob.durand Bob Durand PlaineCommune"
    "claire.petit Claire Petit PlaineCommune"
    "denis.moreau Denis Moreau PlaineCommune"
    "eric.lefebvre Eric Lefebvre PlaineCommune"
    "fanny.garcia Fanny Garcia PlaineCommune"
    "gilles.roux Gilles Roux PlaineCommune"
    "helene.fournier Helene Fournier SaintDenis"
    "ines.girard Ines Girard SaintDenis"
  )
  for u in "${users[@]}"; do
    set -- $u
    samba-tool user create "$1" "$USER_PW" --given-name="$2" --surname="$3" \
      --userou="OU=Agents,OU=$4" --mail-address="$1@$( [ "$4" = PlaineCommune ] && echo plainecommune.test || echo saint-denis.test )" \
      --department="Service $3" "${C[@]}" >/dev/null
  done
  # Three levels of nesting: alice is in PC-Informatique, which is in PC-DSI, which is
  # in PC-Reservants-Salles (the group the tests grant rights to).
  local groups=(PC-Reservants-Salles PC-DSI PC-Informatique PC-Cycle-A PC-Cycle-B PC-Vehicules)
  for g in "${groups[@]}"; do samba-tool group add "$g" --groupou="OU=Groupes,OU=PlaineCommune" "${C[@]}" >/dev/null; done
  samba-tool group add SD-Agents --groupou="OU=Groupes,OU=SaintDenis" "${C[@]}" >/dev/null
  samba-tool group addmembers PC-Reservants-Salles PC-DSI "${C[@]}" >/dev/null
  samba-tool group addmembers PC-DSI PC-Informatique "${C[@]}" >/dev/null
  samba-tool group addmembers PC-Informatique alice.martin,eric.lefebvre "${C[@]}" >/dev/null
  # A membership cycle (AD allows it): the sync must terminate and give bob both groups.
  samba-tool group addmembers PC-Cycle-A PC-Cycle-B "${C[@]}" >/dev/null
  samba-tool group addmembers PC-Cycle-B PC-Cycle-A,bob.durand "${C[@]}" >/dev/null
  # fanny's membership is removed by a test to show incremental sync.
  samba-tool group addmembers PC-Vehicules fanny.garcia,alice.martin "${C[@]}" >/dev/null
  samba-tool group addmembers SD-Agents helene.fournier,ines.girard "${C[@]}" >/dev/null
  samba-tool user disable claire.petit "${C[@]}" >/dev/null
  # gilles's account expired yesterday (bind error data 701).
  samba-tool user setexpiry gilles.roux --days=0 "${C[@]}" >/dev/null 2>&1 || true

  samba --foreground --no-process-group "${C[@]}" >"$ADDIR/log/samba.out" 2>&1 &
  echo $! > "$ADDIR/samba.pid"
  local up=
  for _ in $(seq 1 240); do
    if LDAPTLS_CACERT="$ADDIR/tls/ca.pem" ldapsearch -x -H ldaps://127.0.0.1 -D "svc-resa-pc@$UPN_SUFFIX" -w "$USER_PW" \
        -b '' -s base dnsHostName >/dev/null 2>&1; then up=1; break; fi
    sleep 0.25
  done
  [ -n "$up" ] || { echo "samba did not come up; see $ADDIR/log" >&2; exit 1; }

  # Exchange attributes: every SMTP alias in proxyAddresses (primary in upper case), and
  # the legacy Exchange DN that Exchange 2007 uses as the organiser's address. Also
  # alice's licence classes (carLicense), and ines must change her password (data 773).
  local LEG='/o=Plaine Commune/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn='
  {
    cat <<EOF
dn: CN=Alice Martin,OU=Agents,$PC
changetype: modify
replace: proxyAddresses
proxyAddresses: SMTP:alice.martin@plainecommune.test
proxyAddresses: smtp:a.martin@plainecommune.test
proxyAddresses: smtp:alice.martin@ville-stdenis.test
proxyAddresses: X500:/o=Ancienne Org/ou=First Administrative Group/cn=Recipients/cn=amartin
-
replace: legacyExchangeDN
legacyExchangeDN: ${LEG}alice.martin
-
replace: manager
manager: CN=Denis Moreau,OU=Agents,$PC
-
replace: carLicense
carLicense: B
carLicense: be

dn: CN=Bob Durand,OU=Agents,$PC
changetype: modify
replace: proxyAddresses
proxyAddresses: SMTP:bob.durand@plainecommune.test
proxyAddresses: smtp:b.durand@plainecommune.test
-
replace: legacyExchangeDN
legacyExchangeDN: ${LEG}bob.durand

dn: CN=Helene Fournier,OU=Agents,$SD
changetype: modify
replace: proxyAddresses
proxyAddresses: SMTP:helene.fournier@saint-denis.test
proxyAddresses: smtp:h.fournier@pierrefitte.test
-
replace: legacyExchangeDN
legacyExchangeDN: /o=Saint-Denis/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=helene.fournier

dn: CN=Ines Girard,OU=Agents,$SD
changetype: modify
replace: pwdLastSet
pwdLastSet: 0
EOF
  } | ldap_admin ldapmodify >"$ADDIR/log/ldapmodify.log"

  # Lock denis out with three wrong passwords (threshold above).
  for _ in 1 2 3 4; do
    LDAPTLS_CACERT="$ADDIR/tls/ca.pem" ldapwhoami -x -H ldaps://127.0.0.1 \
      -D "denis.moreau@$UPN_SUFFIX" -w 'wrong-password' >/dev/null 2>&1 || true
  done

  printf '%s' "$USER_PW" > "$ADDIR/secrets/svc-resa-pc"
  printf '%s' "$USER_PW" > "$ADDIR/secrets/svc-resa-sd"
  chmod 600 "$ADDIR/secrets/"*
  cat > "$ADDIR/env" <<EOF
# Written by .ci/samba-ad.sh start; read by tests/it/directory.rs.
RESA_TEST_AD_LDAPS_URL=ldaps://127.0.0.1:636
RESA_TEST_AD_STARTTLS_URL=ldap://127.0.0.1:389
RESA_TEST_AD_CA_FILE=$ADDIR/tls/ca.pem
RESA_TEST_AD_BASE_DN=$BASE
RESA_TEST_AD_UPN_SUFFIX=$UPN_SUFFIX
RESA_TEST_AD_NETBIOS=$DOMAIN
RESA_TEST_AD_PC_BIND_DN=CN=svc-resa-pc,CN=Users,$BASE
RESA_TEST_AD_PC_PASSWORD_FILE=$ADDIR/secrets/svc-resa-pc
RESA_TEST_AD_SD_BIND_DN=CN=svc-resa-sd,CN=Users,$BASE
RESA_TEST_AD_SD_PASSWORD_FILE=$ADDIR/secrets/svc-resa-sd
RESA_TEST_AD_ADMIN_DN=CN=Administrator,CN=Users,$BASE
RESA_TEST_AD_ADMIN_PASSWORD=$ADMIN_PW
RESA_TEST_AD_USER_PASSWORD=$USER_PW
EOF
  echo "samba AD DC ready on ldaps://127.0.0.1:636 and ldap://127.0.0.1:389 (StartTLS)"
  echo "export RESA_TEST_AD_ENV=$ADDIR/env"
}

stop() {
  [ -f "$ADDIR/samba.pid" ] || { echo "no samba pid file in $ADDIR" >&2; return 0; }
  local pid; pid=$(cat "$ADDIR/samba.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  rm -rf "$ADDIR"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  env) echo "export RESA_TEST_AD_ENV=$ADDIR/env" ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
