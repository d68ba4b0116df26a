//! The policy engine: the current policies in memory (a snapshot rebuilt from the store's
//! change log), their compilation into [`Policy`] trees, decisions, and the invalidation
//! feed.
//!
//! Every write goes to the store first, then the engine reads the log past the revision it
//! holds, swaps in a new snapshot, forgets compiled policies and publishes one [`Change`]
//! per new version. [`Engine::refresh`], run periodically, does the same for versions
//! written by other nodes sharing a PostgreSQL store.
//!
//! A tenant's effective policy is `op-and` of the configured references, by default
//! `op-and(global:restrict, tenant:root)`, where `tenant:` names the policies of the tenant
//! owning the object (the callee's tenant for an INVITE, the identity's for a REGISTER).
//! A missing policy, a reference cycle, a composition nested too deep: each stands for a
//! policy that denies everything.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use serde::Serialize;
use tokio::sync::broadcast;

use super::builtin::builtins;
use super::model::{EnforcerKind, Member, Parsed, PolicyVersion, Reference, Scope, Spec};
use super::store::{Store, StoreError};
use crate::oslo::{Credentials, Target};
use crate::policy::{Effect, Enforcer, Policy, Request};

/// Most compiled policies kept between changes (one per tenant asked about, plus the
/// management policies); past it the cache starts over.
const MAX_COMPILED: usize = 4096;
/// Rows read from the store per round of [`Engine::refresh`].
const REFRESH_BATCH: i64 = 1000;
/// Changes buffered for a slow feed subscriber before it is told to reset.
const FEED_BUFFER: usize = 1024;

/// One change, as published on the invalidation feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The policy's name.
    pub policy: String,
    /// Its owner tenant; `None` for a global policy (which may affect every tenant).
    pub tenant: Option<String>,
    /// The policy's new version.
    pub version: i64,
    /// The store-wide revision of the change.
    pub revision: i64,
    /// Whether the change deletes the policy.
    pub deleted: bool,
}

/// A decision and what settled it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// `allow` or `deny`.
    pub effect: &'static str,
    /// The stored policy that settled it (`global/restrict`, `<tenant>/root`...).
    pub policy: String,
    /// That policy's version (0 when it does not exist).
    pub version: i64,
    /// The store revision the decision was made at.
    pub revision: i64,
}

#[derive(Default, Clone)]
struct Snapshot {
    revision: i64,
    current: BTreeMap<(Scope, String), PolicyVersion>,
}

/// The engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    effective: Vec<Reference>,
    snapshot: RwLock<Arc<Snapshot>>,
    compiled: Mutex<HashMap<String, Arc<Policy>>>,
    refreshing: tokio::sync::Mutex<()>,
    writing: tokio::sync::Mutex<()>,
    feed: broadcast::Sender<Change>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Engine {
    /// Loads every policy from `store`, creating the built-in globals that never existed
    /// (first start). `effective` is the composition of a tenant's effective policy.
    pub async fn open(store: Store, effective: Vec<Reference>) -> Result<Engine, StoreError> {
        let (feed, _) = broadcast::channel(FEED_BUFFER);
        let engine = Engine {
            inner: Arc::new(Inner {
                store,
                effective,
                snapshot: RwLock::default(),
                compiled: Mutex::default(),
                refreshing: tokio::sync::Mutex::new(()),
                writing: tokio::sync::Mutex::new(()),
                feed,
            }),
        };
        engine.refresh().await?;
        for (name, spec) in builtins() {
            // Only on first start: a built-in the cloud admin deleted stays deleted.
            let existed = !engine
                .inner
                .store
                .history(&Scope::Global, name)
                .await?
                .is_empty();
            if !existed {
                engine.put(&Scope::Global, name, &spec, "policyd").await?;
                tracing::info!(policy = name, "created built-in global policy");
            }
        }
        Ok(engine)
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.inner
            .snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The store revision the engine holds.
    pub fn revision(&self) -> i64 {
        self.snapshot().revision
    }

    /// Subscribes to the invalidation feed.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.inner.feed.subscribe()
    }

    /// Reads the versions written since the held revision (by this node or another one
    /// sharing the store), applies them and publishes them on the feed.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let _one_at_a_time = self.inner.refreshing.lock().await;
        loop {
            let mut snap = (*self.snapshot()).clone();
            let rows = self.inner.store.since(snap.revision, REFRESH_BATCH).await?;
            if rows.is_empty() {
                return Ok(());
            }
            let mut changes = Vec::with_capacity(rows.len());
            for v in rows {
                snap.revision = snap.revision.max(v.revision);
                changes.push(Change {
                    policy: v.name.clone(),
                    tenant: v.tenant.clone(),
                    version: v.version,
                    revision: v.revision,
                    deleted: v.deleted,
                });
                let key = (v.scope(), v.name.clone());
                if v.deleted {
                    snap.current.remove(&key);
                } else {
                    snap.current.insert(key, v);
                }
            }
            *self
                .inner
                .snapshot
                .write()
                .unwrap_or_else(PoisonError::into_inner) = Arc::new(snap);
            lock(&self.inner.compiled).clear();
            for c in changes {
                tracing::info!(policy = %c.policy, tenant = ?c.tenant, version = c.version, revision = c.revision, "policy changed");
                // No subscriber is not an error.
                let _ = self.inner.feed.send(c);
            }
        }
    }

    /// Stores a new version of `name` (the spec is validated by the caller) and applies it.
    pub async fn put(
        &self,
        scope: &Scope,
        name: &str,
        spec: &Spec,
        by: &str,
    ) -> Result<PolicyVersion, StoreError> {
        let written = {
            let _w = self.inner.writing.lock().await;
            self.inner.store.append(scope, name, Some(spec), by).await?
        };
        self.refresh().await?;
        Ok(written)
    }

    /// Deletes `name` (a version marking the deletion); `None` if it does not exist.
    pub async fn delete(
        &self,
        scope: &Scope,
        name: &str,
        by: &str,
    ) -> Result<Option<PolicyVersion>, StoreError> {
        let written = {
            let _w = self.inner.writing.lock().await;
            self.refresh().await?;
            if self.current(scope, name).is_none() {
                return Ok(None);
            }
            self.inner.store.append(scope, name, None, by).await?
        };
        self.refresh().await?;
        Ok(Some(written))
    }

    /// The current version of a policy.
    pub fn current(&self, scope: &Scope, name: &str) -> Option<PolicyVersion> {
        self.snapshot()
            .current
            .get(&(scope.clone(), name.to_owned()))
            .cloned()
    }

    /// Every current policy, globals first, then by tenant and name.
    pub fn list(&self) -> Vec<PolicyVersion> {
        self.snapshot().current.values().cloned().collect()
    }

    /// Every version of a policy, oldest first.
    pub async fn history(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Vec<PolicyVersion>, StoreError> {
        self.inner.store.history(scope, name).await
    }

    /// Decides `verb` by `subject` on `object` with the effective policy of the object's
    /// tenant (`target.tenant`).
    pub fn verify(&self, subject: &Credentials, object: &Target, verb: &str) -> Verdict {
        let tenant = object.get("target.tenant").map_or("", String::as_str);
        let snap = self.snapshot();
        let policy = self.compiled(
            &snap,
            &format!("effective\n{tenant}"),
            |c| {
                let subs = self
                    .inner
                    .effective
                    .iter()
                    .map(|r| c.reference(r, 1))
                    .collect();
                Policy::new(format!("{tenant}/(effective)"), Enforcer::OpAnd(subs))
                    .unwrap_or_else(|_| Policy::deny_all(format!("{tenant}/(effective)")))
            },
            tenant,
        );
        let req = Request {
            subject,
            object,
            verb,
        };
        verdict(&snap, &policy, &req)
    }

    /// Decides `verb` by `subject` on `object` with the global policy `name` (the HSS
    /// provisioning API asks `provision`); a missing policy denies.
    pub fn verify_global(
        &self,
        name: &str,
        subject: &Credentials,
        object: &Target,
        verb: &str,
    ) -> Verdict {
        let snap = self.snapshot();
        let policy = self.global(&snap, name);
        let req = Request {
            subject,
            object,
            verb,
        };
        verdict(&snap, &policy, &req)
    }

    /// The compiled global policy `name` (deny-all when it does not exist).
    fn global(&self, snap: &Snapshot, name: &str) -> Arc<Policy> {
        self.compiled(
            snap,
            &format!("global\n{name}"),
            |c| c.reference(&Reference::Global(name.to_owned()), 0),
            "",
        )
    }

    /// Decides a management `verb` with the global policy `name` (`enable`,
    /// `self-protect`).
    pub fn authorize(
        &self,
        name: &str,
        subject: &Credentials,
        target: &Target,
        verb: &str,
    ) -> Effect {
        let snap = self.snapshot();
        let policy = self.global(&snap, name);
        policy.decide(&Request {
            subject,
            object: target,
            verb,
        })
    }

    fn compiled(
        &self,
        snap: &Snapshot,
        key: &str,
        build: impl FnOnce(&mut Compiler<'_>) -> Policy,
        tenant: &str,
    ) -> Arc<Policy> {
        if let Some(p) = lock(&self.inner.compiled).get(key) {
            return p.clone();
        }
        let policy = Arc::new(build(&mut Compiler {
            snap,
            tenant,
            stack: Vec::new(),
        }));
        let mut cache = lock(&self.inner.compiled);
        // Only keep it if no change came in meanwhile (the cache was cleared then).
        if self.snapshot().revision == snap.revision {
            if cache.len() >= MAX_COMPILED {
                cache.clear();
            }
            cache.insert(key.to_owned(), policy.clone());
        }
        policy
    }
}

/// Builds [`Policy`] trees from a snapshot, for one tenant.
struct Compiler<'a> {
    snap: &'a Snapshot,
    tenant: &'a str,
    stack: Vec<(Scope, String)>,
}

impl Compiler<'_> {
    fn reference(&mut self, r: &Reference, depth: usize) -> Policy {
        let key = match r {
            Reference::Global(n) => (Scope::Global, n.clone()),
            Reference::Tenant(n) => (Scope::Customer(self.tenant.to_owned()), n.clone()),
        };
        let qname = key.0.qualify(&key.1);
        if self.stack.contains(&key) {
            tracing::warn!(policy = %qname, "reference cycle: the policy denies");
            return Policy::deny_all(qname);
        }
        let Some(spec) = self.snap.current.get(&key).and_then(|v| v.spec.clone()) else {
            return Policy::deny_all(qname);
        };
        self.stack.push(key);
        let p = self.spec(qname, &spec, depth);
        self.stack.pop();
        p
    }

    fn spec(&mut self, name: String, spec: &Spec, depth: usize) -> Policy {
        let parsed = match spec.parse_at(depth) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(policy = %name, error = %e, "policy does not compile: it denies");
                return Policy::deny_all(name);
            }
        };
        let enforcer = match parsed {
            Parsed::Rules(r) => Enforcer::Default(r),
            Parsed::Cedar(c) => Enforcer::Custom(c),
            Parsed::Constant if spec.enforcer == EnforcerKind::AllPass => Enforcer::AllPass,
            Parsed::Constant => Enforcer::AllForbid,
            Parsed::Members(members) => {
                let subs = members
                    .iter()
                    .enumerate()
                    .map(|(i, m)| match m {
                        Member::Ref(r) => self.reference(r, depth + 1),
                        Member::Inline(s) => self.spec(format!("{name}#{i}"), s, depth + 1),
                    })
                    .collect();
                if spec.enforcer == EnforcerKind::OpOr {
                    Enforcer::OpOr(subs)
                } else {
                    Enforcer::OpAnd(subs)
                }
            }
        };
        Policy::new(name.clone(), enforcer).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "policy does not compile: it denies");
            Policy::deny_all(name)
        })
    }
}

/// The verdict of `policy` on `req`, naming the stored policy that settled it.
fn verdict(snap: &Snapshot, policy: &Policy, req: &Request<'_>) -> Verdict {
    let (effect, by) = policy.decide_why(req);
    let stored = by.name().split('#').next().unwrap_or_default();
    let version = stored
        .split_once('/')
        .map(|(owner, name)| {
            let scope = if owner == "global" {
                Scope::Global
            } else {
                Scope::Customer(owner.to_owned())
            };
            snap.current
                .get(&(scope, name.to_owned()))
                .map_or(0, |v| v.version)
        })
        .unwrap_or(0);
    Verdict {
        effect: match effect {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        },
        policy: stored.to_owned(),
        version,
        revision: snap.revision,
    }
}
