//! Password hashing with argon2id (OWASP: m = 19 MiB, t = 2, p = 1) on a blocking thread.

use crate::domain::user::Password;
use crate::error::AppError;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};

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
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| HashedPassword(h.to_string()))
            .map_err(super::internal)
    })
    .await
    .map_err(super::internal)?
}

/// Verifies `candidate` against `stored`. With no stored hash (unknown account) a dummy hash is
/// checked anyway, so the response time does not reveal whether the account exists.
pub async fn verify(candidate: String, stored: Option<HashedPassword>) -> Result<bool, AppError> {
    const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2Q1Xqj9b3b6d7v0S7u0kq8Q7m2bXJm3nq8o1m4k8l0E";
    tokio::task::spawn_blocking(move || {
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
    .map_err(super::internal)?
}

/// A hash nobody can log in with: for accounts whose owner must first set a password.
pub fn unusable() -> HashedPassword {
    HashedPassword("!unset".to_owned())
}
