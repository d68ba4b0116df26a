#!/bin/sh
# cloud-init user data of the IMS core's PostgreSQL VM (deploy/openstack/ims-core.yaml,
# postgres_vm = true; the placeholders, capitals between double underscores, are filled
# in with str_replace): the shared stores of a pool of S-CSCFs (database ims_scscf) and
# of the HSSs (ims_hss), owned by the role `ims`, whose password is the stack's hidden
# db_password (the content of `imsctl config init --db-password-file`). Clients
# authenticate with SCRAM-SHA-256 from the core network only; the security group lets
# only the S-CSCFs and HSSs reach port 5432.
set -eu

DB_PASSWORD='__DB_PASSWORD__'
CORE_CIDR='__CORE_CIDR__'

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y postgresql

conf=$(find /etc/postgresql -name postgresql.conf | head -n 1)
hba=$(dirname "$conf")/pg_hba.conf
echo "listen_addresses = '*'" >> "$conf"
echo "password_encryption = 'scram-sha-256'" >> "$conf"
echo "host ims_scscf,ims_hss ims $CORE_CIDR scram-sha-256" >> "$hba"
systemctl restart postgresql

# The password goes through a file, never the command line (ps).
pw=$(mktemp)
trap 'rm -f "$pw"' EXIT
chmod 0600 "$pw"
printf '%s' "$DB_PASSWORD" > "$pw"
chown postgres "$pw"
su postgres -c "psql -v ON_ERROR_STOP=1 -q" <<SQL
\set pw \`cat $pw\`
CREATE ROLE ims LOGIN PASSWORD :'pw';
CREATE DATABASE ims_scscf OWNER ims;
CREATE DATABASE ims_hss OWNER ims;
SQL
