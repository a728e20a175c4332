//! Loading a module (once per process), finding the token, logging in, and the session pool.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::MechanismType;
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use warrant_jose::Algorithm;
use warrant_jose::crypto::{HmacKey, constant_time_eq, random_array};
use zeroize::Zeroizing;

use crate::HsmError;

/// How long a signer waits for a free session before giving up with
/// [`HsmError::PoolTimeout`].
pub const DEFAULT_CHECKOUT_TIMEOUT: Duration = Duration::from_secs(10);

/// A loaded and initialised PKCS#11 library. PKCS#11 allows one `C_Initialize` per process, so
/// each library path is loaded once and shared by every [`HsmModule`] opened on it.
struct Loaded {
    ctx: Pkcs11,
    /// Per slot: a keyed hash of the PIN that logged the token in. PKCS#11 login state belongs
    /// to the application, not the session, so a second `C_Login` answers "already logged in"
    /// without checking the PIN; this tag is what keeps a second open with a wrong PIN from
    /// riding on the first one's login.
    logins: Mutex<HashMap<u64, [u8; 32]>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while these locks are held; a poisoned lock still holds consistent data.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn load(library: &Path) -> Result<Arc<Loaded>, HsmError> {
    static REGISTRY: OnceLock<Mutex<HashMap<PathBuf, Arc<Loaded>>>> = OnceLock::new();
    let key = std::fs::canonicalize(library).unwrap_or_else(|_| library.to_path_buf());
    let mut registry = lock(REGISTRY.get_or_init(Default::default));
    if let Some(loaded) = registry.get(&key) {
        return Ok(loaded.clone());
    }
    let load_err = |reason: String| HsmError::ModuleLoad {
        library: library.display().to_string(),
        reason,
    };
    if !library.is_absolute() {
        return Err(load_err("the library path must be absolute".into()));
    }
    let ctx = Pkcs11::new(&key).map_err(|e| load_err(e.to_string()))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // Someone else in this process (another library using the same module) got there first.
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(load_err(e.to_string())),
    }
    let loaded = Arc::new(Loaded {
        ctx,
        logins: Mutex::new(HashMap::new()),
    });
    registry.insert(key, loaded.clone());
    Ok(loaded)
}

/// A keyed hash of the PIN, with a random per-process key: comparable, not reversible offline.
fn pin_tag(pin: &str) -> Result<[u8; 32], HsmError> {
    static KEY: OnceLock<HmacKey> = OnceLock::new();
    let key = match KEY.get() {
        Some(k) => k,
        None => {
            let bytes = Zeroizing::new(random_array::<32>().map_err(|_| HsmError::Pkcs11 {
                operation: "login",
                reason: "no randomness".into(),
            })?);
            KEY.get_or_init(|| HmacKey::new(bytes.as_ref()))
        }
    };
    Ok(key.sign(pin.as_bytes()))
}

/// Errors after which a session is not worth keeping: it is replaced by a fresh one.
fn breaks_session(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::DeviceRemoved
                | RvError::DeviceError
                | RvError::TokenNotPresent
                | RvError::UserNotLoggedIn,
            _
        )
    )
}

struct PoolState {
    idle: Vec<Session>,
    /// Sessions in existence, idle or lent.
    open: usize,
}

pub(crate) struct Inner {
    loaded: Arc<Loaded>,
    library: PathBuf,
    slot: Slot,
    label: String,
    /// Kept to log in replacement sessions after the token logged us out.
    pin: Zeroizing<String>,
    size: usize,
    timeout: Duration,
    pool: Mutex<PoolState>,
    freed: Condvar,
}

/// An open token: the module, the slot, the login and a pool of sessions. Cheap to clone.
#[derive(Clone)]
pub struct HsmModule {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for HsmModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HsmModule")
            .field("library", &self.inner.library)
            .field("token", &self.inner.label)
            .field("slot", &self.inner.slot.id())
            .field("sessions", &self.inner.size)
            .finish_non_exhaustive()
    }
}

impl HsmModule {
    /// Loads `library` (an absolute path; loaded once per process), finds the token labelled
    /// `token_label`, logs in as the user with `pin` and opens `pool_size` sessions (at least
    /// one). Fails closed: any of these steps failing is an error, never a degraded module.
    pub fn open(
        library: impl AsRef<Path>,
        token_label: &str,
        pin: Zeroizing<String>,
        pool_size: usize,
    ) -> Result<Self, HsmError> {
        let library = library.as_ref();
        let loaded = load(library)?;
        let slots = loaded
            .ctx
            .get_slots_with_initialized_token()
            .map_err(|e| HsmError::pkcs11("listing slots", e))?;
        let slot = slots
            .into_iter()
            .find(|s| {
                loaded
                    .ctx
                    .get_token_info(*s)
                    .is_ok_and(|t| t.label().trim_end() == token_label)
            })
            .ok_or_else(|| HsmError::TokenNotFound {
                library: library.display().to_string(),
                label: token_label.to_owned(),
            })?;
        let size = pool_size.max(1);
        let inner = Arc::new(Inner {
            loaded,
            library: library.to_path_buf(),
            slot,
            label: token_label.to_owned(),
            pin,
            size,
            timeout: DEFAULT_CHECKOUT_TIMEOUT,
            pool: Mutex::new(PoolState {
                idle: Vec::with_capacity(size),
                open: 0,
            }),
            freed: Condvar::new(),
        });
        let mut sessions = Vec::with_capacity(size);
        for _ in 0..size {
            sessions.push(inner.new_session(false)?);
        }
        {
            let mut pool = lock(&inner.pool);
            pool.open = sessions.len();
            pool.idle = sessions;
        }
        tracing::debug!(library = %library.display(), token = token_label, slot = slot.id(), sessions = size, "PKCS#11 token opened");
        Ok(Self { inner })
    }

    pub fn library(&self) -> &Path {
        &self.inner.library
    }

    pub fn token_label(&self) -> &str {
        &self.inner.label
    }

    /// The PKCS#11 slot id the token was found in (for logs; slot ids can change across
    /// restarts, which is why configuration names the token label).
    pub fn slot_id(&self) -> u64 {
        self.inner.slot.id()
    }

    pub fn pool_size(&self) -> usize {
        self.inner.size
    }

    /// Whether the token offers the signing mechanism `alg` needs.
    pub fn supports(&self, alg: Algorithm) -> Result<bool, HsmError> {
        let wanted = match alg {
            Algorithm::Es256 => MechanismType::ECDSA,
            Algorithm::EdDsa => MechanismType::EDDSA,
            Algorithm::Rs256 => MechanismType::SHA256_RSA_PKCS,
            Algorithm::Ps256 => MechanismType::SHA256_RSA_PKCS_PSS,
            _ => return Ok(false),
        };
        let list = self
            .inner
            .loaded
            .ctx
            .get_mechanism_list(self.inner.slot)
            .map_err(|e| HsmError::pkcs11("listing mechanisms", e))?;
        Ok(list.contains(&wanted))
    }

    /// Runs `op` on a session borrowed from the pool; waits up to the checkout timeout for one
    /// to become free. The outer error is the pool's, the inner one the operation's.
    pub(crate) fn with_session<T>(
        &self,
        op: impl FnOnce(&Session) -> Result<T, CkError>,
    ) -> Result<Result<T, CkError>, HsmError> {
        let mut lease = Lease {
            inner: &self.inner,
            session: Some(self.inner.checkout()?),
            broken: true,
        };
        let result = match &lease.session {
            Some(session) => op(session),
            None => {
                return Err(HsmError::pkcs11(
                    "borrowing a session",
                    CkError::InvalidValue,
                ));
            }
        };
        lease.broken = result.as_ref().err().is_some_and(breaks_session);
        Ok(result)
    }

    /// A read-write session outside the pool, for creating objects; closed when dropped.
    pub(crate) fn rw_session(&self) -> Result<Session, HsmError> {
        self.inner.new_session(true)
    }
}

/// A borrowed session, returned to the pool when dropped — also if the operation panicked, in
/// which case it counts as broken and is replaced.
struct Lease<'a> {
    inner: &'a Inner,
    session: Option<Session>,
    broken: bool,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            self.inner.give_back(session, self.broken);
        }
    }
}

impl Inner {
    fn new_session(&self, read_write: bool) -> Result<Session, HsmError> {
        let ctx = &self.loaded.ctx;
        let session = if read_write {
            ctx.open_rw_session(self.slot)
        } else {
            ctx.open_ro_session(self.slot)
        }
        .map_err(|e| HsmError::pkcs11("opening a session", e))?;
        self.login(&session)?;
        Ok(session)
    }

    fn login(&self, session: &Session) -> Result<(), HsmError> {
        let failed = |reason: String| HsmError::LoginFailed {
            label: self.label.clone(),
            reason,
        };
        let tag = pin_tag(&self.pin)?;
        let pin = AuthPin::from(self.pin.as_str());
        match session.login(UserType::User, Some(&pin)) {
            Ok(()) => {
                lock(&self.loaded.logins).insert(self.slot.id(), tag);
                Ok(())
            }
            Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {
                match lock(&self.loaded.logins).get(&self.slot.id()) {
                    Some(known) if constant_time_eq(known, &tag) => Ok(()),
                    _ => Err(failed(
                        "the token is already logged in by this process with another PIN".into(),
                    )),
                }
            }
            // The return code (CKR_PIN_INCORRECT, CKR_PIN_LOCKED, …) names the cause; the PIN
            // never reaches the message.
            Err(e) => Err(failed(e.to_string())),
        }
    }

    fn checkout(&self) -> Result<Session, HsmError> {
        let deadline = Instant::now() + self.timeout;
        let mut pool = lock(&self.pool);
        loop {
            if let Some(session) = pool.idle.pop() {
                return Ok(session);
            }
            if pool.open < self.size {
                // A session was dropped as broken: open its replacement outside the lock.
                pool.open += 1;
                drop(pool);
                return self.new_session(false).inspect_err(|_| {
                    lock(&self.pool).open -= 1;
                    self.freed.notify_one();
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(HsmError::PoolTimeout {
                    waited_ms: self.timeout.as_millis(),
                    size: self.size,
                });
            }
            pool = self
                .freed
                .wait_timeout(pool, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn give_back(&self, session: Session, broken: bool) {
        let mut pool = lock(&self.pool);
        if broken {
            tracing::warn!(token = %self.label, "dropping a broken PKCS#11 session");
            pool.open -= 1;
            drop(pool);
            drop(session);
        } else {
            pool.idle.push(session);
            drop(pool);
        }
        self.freed.notify_one();
    }
}
