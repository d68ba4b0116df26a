//! Every statement the store runs. They are written in the SQL both backends accept
//! (`$n` placeholders, `ORDER BY`/`LIMIT`, no dialect functions), so this is the one
//! place for SQL text; only the schema differs per backend (`hss/migrations/<backend>/`).

pub const INSERT_SUBSCRIPTION: &str = "INSERT INTO subscription \
    (id, project_id, user_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)";
pub const UPDATE_SUBSCRIPTION: &str =
    "UPDATE subscription SET project_id = $2, user_id = $3, updated_at = $4 WHERE id = $1";
pub const DELETE_SUBSCRIPTION: &str = "DELETE FROM subscription WHERE id = $1";
pub const SELECT_SUBSCRIPTION: &str =
    "SELECT id, project_id, user_id, created_at, updated_at FROM subscription WHERE id = $1";
pub const LIST_SUBSCRIPTION_IDS: &str =
    "SELECT id FROM subscription WHERE id > $1 ORDER BY id LIMIT $2";
pub const COUNT_SUBSCRIPTIONS: &str = "SELECT COUNT(*) AS n FROM subscription";

pub const OWNER_OF_IMPI: &str = "SELECT subscription_id FROM private_identity WHERE impi = $1";
pub const OWNER_OF_IMPU: &str = "SELECT subscription_id FROM public_identity WHERE impu = $1";

pub const SELECT_IMPIS: &str = "SELECT impi, realm, digest_ha1, aka_amf, aka_sqn \
    FROM private_identity WHERE subscription_id = $1 ORDER BY impi";
pub const SELECT_IMPI_NAMES: &str = "SELECT impi FROM private_identity WHERE subscription_id = $1";
pub const INSERT_IMPI: &str = "INSERT INTO private_identity \
    (impi, subscription_id, realm, digest_ha1, aka_k, aka_opc, aka_amf, aka_sqn) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
pub const UPDATE_IMPI_REALM: &str = "UPDATE private_identity SET realm = $2 WHERE impi = $1";
pub const UPDATE_IMPI_HA1: &str = "UPDATE private_identity SET digest_ha1 = $2 WHERE impi = $1";
pub const UPDATE_IMPI_AKA: &str = "UPDATE private_identity \
    SET aka_k = $2, aka_opc = $3, aka_amf = $4 WHERE impi = $1";
pub const UPDATE_IMPI_SQN: &str = "UPDATE private_identity SET aka_sqn = $2 WHERE impi = $1";
pub const INIT_IMPI_SQN: &str =
    "UPDATE private_identity SET aka_sqn = 0 WHERE impi = $1 AND aka_sqn IS NULL";
pub const DELETE_IMPI: &str = "DELETE FROM private_identity WHERE impi = $1";
pub const SELECT_CREDENTIALS: &str = "SELECT subscription_id, realm, digest_ha1, \
    aka_k, aka_opc, aka_amf, aka_sqn FROM private_identity WHERE impi = $1";

pub const SELECT_SQN: &str = "SELECT aka_sqn FROM private_identity WHERE impi = $1";
/// Compare-and-set: only succeeds if nobody moved SQN since it was read.
pub const CAS_SQN: &str =
    "UPDATE private_identity SET aka_sqn = $2 WHERE impi = $1 AND aka_sqn = $3";
pub const SET_SQN: &str =
    "UPDATE private_identity SET aka_sqn = $2 WHERE impi = $1 AND aka_sqn IS NOT NULL";

pub const SELECT_IMPUS: &str = "SELECT impu, profile, barred, implicit_set, reg_state, \
    scscf_name FROM public_identity WHERE subscription_id = $1 ORDER BY position";
pub const SELECT_IMPU_NAMES: &str = "SELECT impu FROM public_identity WHERE subscription_id = $1";
pub const INSERT_IMPU: &str = "INSERT INTO public_identity \
    (impu, subscription_id, profile, barred, implicit_set, position) \
    VALUES ($1, $2, $3, $4, $5, $6)";
pub const UPDATE_IMPU: &str = "UPDATE public_identity \
    SET profile = $2, barred = $3, implicit_set = $4, position = $5 WHERE impu = $1";
pub const DELETE_IMPU: &str = "DELETE FROM public_identity WHERE impu = $1";
pub const SET_REGISTRATION: &str =
    "UPDATE public_identity SET reg_state = $2, scscf_name = $3 WHERE impu = $1";
pub const SELECT_REGISTRATION: &str =
    "SELECT reg_state, scscf_name FROM public_identity WHERE impu = $1";

pub const DELETE_SPTS: &str = "DELETE FROM spt WHERE subscription_id = $1";
pub const DELETE_IFCS: &str = "DELETE FROM ifc WHERE subscription_id = $1";
pub const DELETE_PROFILES: &str = "DELETE FROM service_profile WHERE subscription_id = $1";
pub const INSERT_PROFILE: &str =
    "INSERT INTO service_profile (subscription_id, name) VALUES ($1, $2)";
pub const INSERT_IFC: &str = "INSERT INTO ifc (subscription_id, profile, position, \
    priority, cnf, server_name, default_handling, service_info, include_register_request, \
    include_register_response, profile_part_indicator) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
pub const INSERT_SPT: &str = "INSERT INTO spt (subscription_id, profile, ifc_position, \
    position, grp, negated, kind, value, content, registration_types) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
pub const SELECT_PROFILES: &str =
    "SELECT name FROM service_profile WHERE subscription_id = $1 ORDER BY name";
pub const SELECT_IFCS: &str = "SELECT profile, position, priority, cnf, server_name, \
    default_handling, service_info, include_register_request, include_register_response, \
    profile_part_indicator FROM ifc WHERE subscription_id = $1 ORDER BY profile, position";
pub const SELECT_SPTS: &str = "SELECT profile, ifc_position, grp, negated, kind, value, \
    content, registration_types FROM spt WHERE subscription_id = $1 \
    ORDER BY profile, ifc_position, position";

pub const DELETE_ROAMING: &str = "DELETE FROM roaming_network WHERE subscription_id = $1";
pub const INSERT_ROAMING: &str =
    "INSERT INTO roaming_network (subscription_id, network) VALUES ($1, $2)";
pub const SELECT_ROAMING: &str =
    "SELECT network FROM roaming_network WHERE subscription_id = $1 ORDER BY network";
