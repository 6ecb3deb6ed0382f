//! Password hashing with argon2id (OWASP: m = 19 MiB, t = 2, p = 1) on a blocking thread.

use crate::domain::user::Password;
use crate::error::AppError;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Hashes computed at once: one per core. Each takes 19 MiB, so a flood of anonymous sign-ins
/// or sign-ups queues here instead of growing the server by gigabytes (150 parallel sign-ups
/// took it from 190 MB to 2.4 GB).
static HASHING: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    Arc::new(Semaphore::new(cores))
});

/// Hashes running now, and the most that ever ran at once (for tests and diagnostics).
static RUNNING: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// The most argon2 computations this process ever ran at the same time.
pub fn peak_hashes_at_once() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// How long a request waits for a free hasher before it is answered "busy" (503).
const QUEUE_WAIT: Duration = Duration::from_secs(10);

/// Runs argon2 work on a blocking thread once a hasher is free. The permit goes with the work,
/// so a request that gives up meanwhile still frees its hasher only when the work is done.
async fn bounded<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    let permit = tokio::time::timeout(QUEUE_WAIT, HASHING.clone().acquire_owned())
        .await
        .map_err(|_| AppError::Busy {
            retry_after_secs: 5,
        })?
        .map_err(super::internal)?;
    tokio::task::spawn_blocking(move || {
        let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
        PEAK.fetch_max(now, Ordering::SeqCst);
        let out = work();
        RUNNING.fetch_sub(1, Ordering::SeqCst);
        drop(permit);
        out
    })
    .await
    .map_err(super::internal)?
}

/// A PHC-format hash. Deliberately not `Serialize`: it never crosses the wire.
pub struct HashedPassword(String);

impl HashedPassword {
    pub fn from_stored(phc: String) -> Self {
        HashedPassword(phc)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub async fn hash(password: Password) -> Result<HashedPassword, AppError> {
    bounded(move || {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| HashedPassword(h.to_string()))
            .map_err(super::internal)
    })
    .await
}

/// Verifies `candidate` against `stored`. With no stored hash (unknown account) a dummy hash is
/// checked anyway, so the response time does not reveal whether the account exists.
pub async fn verify(candidate: String, stored: Option<HashedPassword>) -> Result<bool, AppError> {
    const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2Q1Xqj9b3b6d7v0S7u0kq8Q7m2bXJm3nq8o1m4k8l0E";
    bounded(move || {
        let known = stored.is_some();
        let phc = stored.map(|h| h.0).unwrap_or_else(|| DUMMY.to_owned());
        let Ok(parsed) = PasswordHash::new(&phc) else {
            return Ok(false);
        };
        let ok = hasher()
            .verify_password(candidate.as_bytes(), &parsed)
            .is_ok();
        Ok(known && ok)
    })
    .await
}

/// A hash nobody can log in with: for accounts whose owner must first set a password.
pub fn unusable() -> HashedPassword {
    HashedPassword("!unset".to_owned())
}
