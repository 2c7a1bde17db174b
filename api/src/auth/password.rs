//! Password hashing: argon2id with the crate's default (OWASP-recommended) parameters, in PHC
//! string form, so parameters can change later without invalidating stored hashes.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted (hashing cost grows with length; nobody types more).
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Why a new password is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeakPassword {
    /// Too short.
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    /// Too long.
    #[error("the password must have at most {MAX_PASSWORD_CHARS} characters")]
    TooLong,
}

/// Checks a new password's length.
///
/// # Errors
/// [`WeakPassword`] when it is too short or too long.
pub fn check_strength(password: &str) -> Result<(), WeakPassword> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        Err(WeakPassword::TooShort)
    } else if chars > MAX_PASSWORD_CHARS {
        Err(WeakPassword::TooLong)
    } else {
        Ok(())
    }
}

/// Hashes a password with a fresh random salt. CPU-heavy (tens of milliseconds): call it from
/// `spawn_blocking`.
///
/// # Panics
/// When the OS has no randomness or argon2 rejects its own defaults, neither of which leaves
/// anything safe to do.
pub fn hash(password: &str) -> String {
    let mut salt = [0_u8; 16];
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut salt).expect("the operating system's random number generator failed");
    #[allow(clippy::expect_used)]
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt length");
    #[allow(clippy::expect_used)]
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 accepts its default parameters")
        .to_string()
}

/// Whether `password` matches a stored PHC hash. CPU-heavy: call it from `spawn_blocking`.
pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A stored hash of no password, verified against when the email is unknown, so a login for
/// an unknown account takes as long as one for a known account.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash(&super::tokens::random_secret()))
}
