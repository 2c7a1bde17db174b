//! Opaque secrets handed to clients (refresh tokens, API tokens, one-time passwords): 256 bits
//! from the OS, hex-encoded, stored only as a sha256 digest.

use sha2::{Digest, Sha256};

/// Prefix of integrator API tokens, so a leaked one is recognisable in a secret scanner.
pub const API_TOKEN_PREFIX: &str = "ldk_";

/// 32 random bytes from the operating system, hex-encoded (64 characters).
///
/// # Panics
/// When the operating system has no randomness to give, which leaves nothing safe to do.
pub fn random_secret() -> String {
    let mut bytes = [0_u8; 32];
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
    hex::encode(bytes)
}

/// A new integrator API token.
pub fn new_api_token() -> String {
    format!("{API_TOKEN_PREFIX}{}", random_secret())
}

/// The digest a token is stored and looked up by.
pub fn digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}
