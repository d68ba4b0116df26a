//! The reg event package (RFC 3680) notifier of the S-CSCF (TS 24.229 §5.4.2.1): who
//! may subscribe to a registered identity ([`authorize`]), the subscription dialogs
//! ([`subscription`]), the `application/reginfo+xml` documents ([`reginfo`]), the
//! contact events each registration change means ([`changes`]), and the notifier that
//! ties them to the registrar, the store and the SIP engine ([`notifier`]).

pub mod authorize;
pub mod changes;
pub mod notifier;
pub mod reginfo;
pub mod subscription;

pub use changes::Cause;
pub use notifier::{Notifier, NotifierSettings, NOTIFY_WRITE_LAG};
