#!/bin/sh
# cloud-init user data of one IMS core VM (deploy/openstack/ims-core.yaml fills in the
# placeholders, capitals between double underscores, with str_replace): installs the
# ims-core package, unpacks this node's bundle (its TOML, the CA certificate, its
# certificate and key, the core's host names; the HSS's store key and admin token; the
# database password file of a pool's S-CSCFs and HSSs) into /etc/ims-core, writes the
# Keystone service password, appends the core's host names to /etc/hosts, and starts
# the node's unit.
#
# Limits: the user data, bundle included, is readable by any process on the VM through
# the metadata service, and is limited to 64 KiB by Nova; the stack keeps the bundle in
# Heat's database (hidden parameter). deploy/README.md, "How the configuration reaches
# the VMs", has the details and an alternative.
set -eu

ROLE='__ROLE__'
PACKAGE_URL='__PACKAGE_URL__'
UNIT='__UNIT_PREFIX__'"$ROLE"
BUNDLE='__BUNDLE__'
KEYSTONE_PASSWORD='__KEYSTONE_PASSWORD__'
KEYSTONE_URL='__KEYSTONE_URL__'
KEYSTONE_USER='__KEYSTONE_USER__'

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y curl ca-certificates
curl -fsSL --retry 5 -o /tmp/ims-core.deb "$PACKAGE_URL"
apt-get install -y /tmp/ims-core.deb
rm -f /tmp/ims-core.deb

# The package creates the nodes' user and group `ims` and /etc/ims-core (root, 0755,
# which its units' ConfigurationDirectory= keeps): files root:ims 0640, directories
# below 0750, keys and secrets the nodes' own (ims, 0600).
printf '%s' "$BUNDLE" | base64 -d | tar -xz -C /etc/ims-core --no-same-owner
chown -R root:ims /etc/ims-core
chmod 0755 /etc/ims-core
find /etc/ims-core -mindepth 1 -type d -exec chmod 0750 {} +
find /etc/ims-core -type f -exec chmod 0640 {} +
find /etc/ims-core -type f \( -name '*.key' -o -name '*.token' -o -name pgpass \) \
    -exec chown ims:ims {} + -exec chmod 0600 {} +
if [ -n "$KEYSTONE_PASSWORD" ]; then
    (umask 077 && printf '%s\n' "$KEYSTONE_PASSWORD" > /etc/ims-core/keystone-service.password)
    chown ims:ims /etc/ims-core/keystone-service.password
fi

# The stack's Keystone parameters should be what `imsctl config init --keystone` wrote.
conf="/etc/ims-core/$ROLE.toml"
for want in "$KEYSTONE_URL" "$KEYSTONE_USER"; do
    if [ -n "$KEYSTONE_URL" ] && [ -f "$conf" ] && ! grep -qF "\"$want\"" "$conf"; then
        echo "ims-core: $conf does not name $want (stack parameter): regenerate the bundle" >&2
    fi
done

# The core's host names (certificates, Diameter identities), as config init wrote them
# (/etc/ims-core/hosts); also in cloud-init's template of /etc/hosts, which it may
# rewrite at boot.
for hosts in /etc/hosts /etc/cloud/templates/hosts.debian.tmpl; do
    [ -f "$hosts" ] || continue
    [ -f /etc/ims-core/hosts ] && cat /etc/ims-core/hosts >> "$hosts"
done

systemctl enable --now "$UNIT"
