//! `Opsiq`, the service facade every adapter holds: the store, the catalog, and the typed
//! read/write helpers the domain modules build their services on.

use foldhash::HashMap;
use std::cell::RefCell;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::audit::AuditEntry;
use crate::catalog::Catalog;
use crate::idempotency::Held;
use crate::keys::{KEY_TOUCH_INTERVAL_MS, Principal};
use crate::ratelimit::{RateLimits, RateState};
use crate::store::sqlite::{SqliteConfig, SqliteStore};
use crate::store::{Reads, Store, Writes};
use crate::types::{Id, RequestId, Timestamp};
use crate::{Error, Result};

/// The OpsIQ service: cheap to clone, safe to share between threads.
#[derive(Clone)]
pub struct Opsiq {
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    rate_limits: Arc<RateLimits>,
    /// When each key's `last_used_at` was last written by this process.
    touched: Arc<Mutex<HashMap<Id, Instant>>>,
    /// Keys verified by this process (see [`KeyCache`]).
    key_cache: Arc<KeyCache>,
}

/// What a key's secret verified to: the key's principal, or that it was revoked.
#[derive(Debug, Clone)]
pub(crate) enum Verified {
    Active(Arc<Principal>),
    Revoked,
}

/// Keys verified by this process, by secret hash, kept while the store's key generation (see
/// [`crate::store::KeyReads::key_generation`]) stays where it was when they were read: any
/// change to any key, by any process, empties it. Hashes that match no key are not kept, so
/// guessed secrets cannot fill it.
#[derive(Default)]
pub(crate) struct KeyCache {
    held: Mutex<(i64, HashMap<[u8; 32], Verified>)>,
}

/// Keys kept at most; past it the cache starts again empty.
const MAX_CACHED_KEYS: usize = 4096;

impl KeyCache {
    /// The key of the secret's SHA-256 `digest` as verified at `generation`, if it was.
    pub(crate) fn get(&self, generation: i64, digest: &[u8; 32]) -> Option<Verified> {
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if held.0 != generation {
            return None;
        }
        held.1.get(digest).cloned()
    }

    /// Keeps what `digest` verified to at `generation` (a newer generation drops every key
    /// kept).
    pub(crate) fn keep(&self, generation: i64, digest: [u8; 32], verified: &Verified) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if held.0 != generation {
            if generation < held.0 {
                // Read in an older snapshot than what is kept: keep nothing of it.
                return;
            }
            *held = (generation, HashMap::default());
        }
        if held.1.len() >= MAX_CACHED_KEYS {
            held.1.clear();
        }
        held.1.insert(digest, verified.clone());
    }
}

impl Opsiq {
    /// A service over any store, with the built-in catalog.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Opsiq {
            store,
            catalog: Arc::new(Catalog::builtin()),
            rate_limits: Arc::new(RateLimits::default()),
            touched: Arc::default(),
            key_cache: Arc::default(),
        }
    }

    /// Whether a key's `last_used_at` is due to be written: at most once a minute per key, so
    /// that a busy key does not add a write to every request.
    pub(crate) fn touch_due(&self, key: Id) -> bool {
        let mut touched = self.touched.lock().unwrap_or_else(PoisonError::into_inner);
        match touched.get(&key) {
            Some(at) if at.elapsed() < Duration::from_millis(KEY_TOUCH_INTERVAL_MS as u64) => false,
            _ => {
                touched.insert(key, Instant::now());
                true
            }
        }
    }

    /// Opens (creating and migrating if needed) the SQLite database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, SqliteConfig::default())
    }

    /// Like [`Opsiq::open`], with the store's settings.
    pub fn open_with(path: impl AsRef<Path>, config: SqliteConfig) -> Result<Self> {
        Ok(Opsiq::new(Arc::new(SqliteStore::open(
            path.as_ref(),
            config,
        )?)))
    }

    /// Sets the install's default rate limit (requests a minute per key).
    pub fn with_rate_limit(mut self, per_minute: u32) -> Self {
        self.rate_limits = Arc::new(RateLimits::new(per_minute));
        self
    }

    pub fn rate_limits(&self) -> &RateLimits {
        &self.rate_limits
    }

    pub(crate) fn key_cache(&self) -> &KeyCache {
        &self.key_cache
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// Runs `f` against a consistent read view.
    pub fn read<T>(&self, f: impl FnOnce(&dyn Reads) -> Result<T>) -> Result<T> {
        let mut f = Some(f);
        let mut out = None;
        self.store.read_with(&mut |reads| {
            let f = f
                .take()
                .ok_or_else(|| Error::Internal("read closure ran twice".into()))?;
            out = Some(f(reads)?);
            Ok(())
        })?;
        out.ok_or_else(|| Error::Internal("read closure did not run".into()))
    }

    /// Runs `f` with its reads sharing one consistent view when `one_view` is set (see
    /// [`crate::store::Store::with_one_view`]): for work that only reads, one transaction instead of one per
    /// read.
    pub fn in_one_view<T>(&self, one_view: bool, f: impl FnOnce() -> T) -> T {
        if !one_view {
            return f();
        }
        let (mut f, mut out) = (Some(f), None);
        self.store.with_one_view(&mut || {
            if let Some(f) = f.take() {
                out = Some(f());
            }
        });
        match out {
            Some(out) => out,
            // The store did not run the scope (it cannot fail to): run it as it is.
            None => f.map(|f| f()).expect("a scope not run is still held"),
        }
    }

    /// Runs `f` in a write transaction and returns once it is committed. If `f` fails, none of
    /// its changes are kept. During an API call (see [`Call::enter`]) the call's audit row is
    /// written in the same transaction, once per call, so that no change is committed without it.
    pub fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Writes) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        match CURRENT_CALL
            .with(|current| current.borrow().as_ref().filter(|c| !c.is_done()).cloned())
        {
            Some(pending) => self.write_with_audit(&pending, f, |_| None),
            None => self.commit(f),
        }
    }

    /// Like [`Opsiq::write`] for an API call whose answer is what `f` returns: when the call
    /// holds an idempotency key, that answer is stored in the same transaction as the change,
    /// so even a crash before the response leaves a retry something to replay.
    pub fn write_audited<T: serde::Serialize + Send + 'static>(
        &self,
        call: &Call,
        f: impl FnOnce(&mut dyn Writes) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        if call.is_audited() {
            return self.commit(f);
        }
        let pending = call.pending();
        let (request_id, status) = (pending.template.request_id.clone(), pending.template.status);
        self.write_with_audit(&pending, f, move |out: &T| {
            let data = serde_json::to_value(out).ok()?;
            let envelope =
                serde_json::json!({"success": true, "data": data, "request_id": request_id});
            Some((status, envelope.to_string()))
        })
    }

    fn write_with_audit<T: Send + 'static>(
        &self,
        pending: &PendingAudit,
        f: impl FnOnce(&mut dyn Writes) -> Result<T> + Send + 'static,
        answer: impl FnOnce(&T) -> Option<(u16, String)> + Send + 'static,
    ) -> Result<T> {
        let entry = pending.entry();
        let held = pending.idempotency.clone();
        let out = self.commit(move |w| {
            let out = f(w)?;
            w.insert_audit(&entry)?;
            if let Some(held) = &held {
                w.commit_idempotency(held.key_id, &held.idem_key)?;
                if let Some((status, body)) = answer(&out) {
                    w.answer_idempotency(held.key_id, &held.idem_key, status, &body)?;
                }
            }
            Ok(out)
        })?;
        pending.audited.store(true, Ordering::Release);
        Ok(out)
    }

    fn commit<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Writes) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let boxed = self
            .store
            .write_boxed(Box::new(move |w| f(w).map(|t| Box::new(t) as _)))?;
        boxed
            .downcast::<T>()
            .map(|t| *t)
            .map_err(|_| Error::Internal("write returned an unexpected type".into()))
    }
}

thread_local! {
    /// The API call running on this thread, whose audit row its first write carries.
    static CURRENT_CALL: RefCell<Option<PendingAudit>> = const { RefCell::new(None) };
}

/// A call's audit row, not yet written.
#[derive(Debug, Clone)]
struct PendingAudit {
    template: AuditEntry,
    started: Instant,
    audited: Arc<AtomicBool>,
    /// The idempotency key the call holds, marked committed with the change.
    idempotency: Option<Held>,
}

impl PendingAudit {
    fn is_done(&self) -> bool {
        self.audited.load(Ordering::Acquire)
    }

    fn entry(&self) -> AuditEntry {
        AuditEntry {
            latency_us: (self.started.elapsed().as_micros() as i64).max(1),
            created_at: Timestamp::now(),
            ..self.template.clone()
        }
    }
}

/// While alive, writes on this thread belong to the entered call (see [`Call::enter`]).
pub struct Entered(());

impl Drop for Entered {
    fn drop(&mut self) {
        CURRENT_CALL.with(|current| current.borrow_mut().take());
    }
}

/// One authenticated API call in progress.
#[derive(Debug)]
pub struct Call {
    pub principal: Arc<Principal>,
    pub request_id: RequestId,
    pub action: String,
    pub started: Instant,
    pub success_status: u16,
    /// The key's standing against its rate limit after this request.
    pub rate: Option<RateState>,
    /// The idempotency key this call claimed, if any.
    pub idempotency: Option<Held>,
    audited: Arc<AtomicBool>,
}

impl Call {
    pub fn new(
        principal: impl Into<Arc<Principal>>,
        request_id: RequestId,
        action: &str,
        started: Instant,
        success_status: u16,
    ) -> Self {
        Call {
            principal: principal.into(),
            request_id,
            action: action.to_string(),
            started,
            success_status,
            rate: None,
            idempotency: None,
            audited: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Makes this the thread's current call until the guard drops: every write the action
    /// makes meanwhile carries the call's audit row (once).
    pub fn enter(&self) -> Entered {
        CURRENT_CALL.with(|current| *current.borrow_mut() = Some(self.pending()));
        Entered(())
    }

    fn pending(&self) -> PendingAudit {
        PendingAudit {
            template: self.audit_entry(None),
            started: self.started,
            audited: self.audited.clone(),
            idempotency: self.idempotency.clone(),
        }
    }

    /// Whether the call's audit row was already written with its change.
    pub fn is_audited(&self) -> bool {
        self.audited.load(Ordering::Acquire)
    }

    /// The audit row for this call: a success unless `error` is given.
    pub fn audit_entry(&self, error: Option<&Error>) -> AuditEntry {
        AuditEntry {
            request_id: self.request_id.as_str().to_owned(),
            key_id: Some(self.principal.key_id),
            workspace_id: Some(self.principal.workspace_id),
            action: Some(self.action.clone()),
            outcome: error.map_or_else(|| "ok".to_string(), Error::code),
            status: error.map_or(self.success_status, Error::status),
            latency_us: self.started.elapsed().as_micros() as i64,
            created_at: Timestamp::now(),
        }
    }

    /// The name notes and other authored records carry: the key's name.
    pub fn author(&self) -> String {
        self.principal.key_name.clone()
    }
}
