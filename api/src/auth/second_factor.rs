//! The second sign-in factor: TOTP codes (RFC 6238: SHA-1, six digits, 30-second steps, the
//! parameters every authenticator app understands) and one-time recovery codes.
//!
//! A code is accepted for the current time step and the one before and after it (a phone's
//! clock a little off, a code typed as it changed), never older; the caller refuses a step at
//! or before the last one accepted, so a code works once. Recovery codes carry 50 random bits
//! each and are stored as argon2id hashes; their cost is lighter than a password's because
//! nothing short of 2^50 guesses finds one, whatever the hash costs.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm as Argon2Algorithm, Argon2, Params, Version};
use totp_rs::{Algorithm, Secret, TOTP};

/// Seconds per time step.
pub const STEP_SECONDS: u64 = 30;
/// Digits per code.
pub const DIGITS: usize = 6;
/// Recovery codes issued per enrolment.
pub const RECOVERY_CODES: usize = 10;
/// The issuer authenticator apps show next to the account.
const ISSUER: &str = "Ledgerdesk";
/// Bytes of a TOTP secret (160 bits, as RFC 4226 recommends).
pub const SECRET_BYTES: usize = 20;
/// Letters of recovery codes: lower-case, no 0/o or 1/l to misread.
const RECOVERY_ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";

/// A fresh random TOTP secret.
///
/// # Panics
/// When the operating system has no randomness to give, which leaves nothing safe to do.
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0_u8; SECRET_BYTES];
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut secret).expect("the operating system's random number generator failed");
    secret
}

fn totp(secret: &[u8], account: &str) -> Option<TOTP> {
    TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        1,
        STEP_SECONDS,
        secret.to_vec(),
        Some(ISSUER.to_owned()),
        account.to_owned(),
    )
    .ok()
}

/// The secret in base32, as people type it into an app.
pub fn secret_base32(secret: &[u8]) -> String {
    match Secret::Raw(secret.to_vec()).to_encoded() {
        Secret::Encoded(text) => text,
        Secret::Raw(_) => String::new(),
    }
}

/// The `otpauth://totp/…` URI a panel shows as a QR code. `None` when `account` cannot be
/// part of one (an email with a colon).
pub fn otpauth_uri(secret: &[u8], account: &str) -> Option<String> {
    totp(secret, account).map(|totp| totp.get_url())
}

/// The time step a `code` belongs to at `now` (seconds since the epoch): the current step, or
/// the one before or after it. `None` when it is none of them.
pub fn matching_step(secret: &[u8], code: &str, now: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = totp(secret, "account")?;
    let current = now / STEP_SECONDS;
    let mut found = None;
    // Every candidate is compared, in constant time, whichever matches.
    for step in [current.saturating_sub(1), current, current + 1] {
        let expected = totp.generate(step * STEP_SECONDS);
        if subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), code.as_bytes()).into() {
            found = Some(step);
        }
    }
    found
}

/// Ten new recovery codes, `xxxxx-xxxxx` each.
///
/// # Panics
/// When the operating system has no randomness to give.
pub fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0_u8; 10];
            #[allow(clippy::expect_used)]
            getrandom::fill(&mut bytes)
                .expect("the operating system's random number generator failed");
            let letters: String = bytes
                .iter()
                .map(|b| char::from(RECOVERY_ALPHABET[usize::from(b % 32)]))
                .collect();
            format!("{}-{}", &letters[..5], &letters[5..])
        })
        .collect()
}

/// A recovery code as typed (any case, spaces or dashes anywhere), in its stored form.
pub fn normalize_recovery_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn recovery_hasher() -> Argon2<'static> {
    // 4 MiB, two passes: see the module comment for why less than a password's.
    let params = Params::new(4 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Argon2Algorithm::Argon2id, Version::V0x13, params)
}

/// The stored hash of a recovery code. CPU-heavy: call from `spawn_blocking`.
///
/// # Panics
/// When the OS has no randomness.
pub fn hash_recovery_code(code: &str) -> String {
    let mut salt = [0_u8; 16];
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut salt).expect("the operating system's random number generator failed");
    #[allow(clippy::expect_used)]
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt length");
    #[allow(clippy::expect_used)]
    recovery_hasher()
        .hash_password(normalize_recovery_code(code).as_bytes(), &salt)
        .expect("argon2 accepts these parameters")
        .to_string()
}

/// The index of the stored hash `code` matches, if any. CPU-heavy: call from
/// `spawn_blocking`.
pub fn find_recovery_code(code: &str, stored: &[String]) -> Option<usize> {
    let code = normalize_recovery_code(code);
    if code.len() != 10 {
        return None;
    }
    stored.iter().position(|hash| {
        PasswordHash::new(hash).is_ok_and(|parsed| {
            recovery_hasher()
                .verify_password(code.as_bytes(), &parsed)
                .is_ok()
        })
    })
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly on purpose")]
mod tests {
    use super::*;

    #[test]
    fn a_code_of_the_previous_step_is_accepted_and_an_older_one_refused() {
        let secret = new_secret();
        let totp = totp(&secret, "ann@example.com").unwrap();
        let now = 1_800_000_015;
        let step = now / STEP_SECONDS;
        let code_at = |step: u64| totp.generate(step * STEP_SECONDS);
        assert_eq!(matching_step(&secret, &code_at(step), now), Some(step));
        assert_eq!(
            matching_step(&secret, &code_at(step - 1), now),
            Some(step - 1)
        );
        assert_eq!(
            matching_step(&secret, &code_at(step + 1), now),
            Some(step + 1)
        );
        // Codes of other steps may repeat by chance (one in a million); these were checked.
        if ![step - 1, step, step + 1]
            .iter()
            .any(|s| code_at(*s) == code_at(step - 2))
        {
            assert_eq!(matching_step(&secret, &code_at(step - 2), now), None);
        }
        assert_eq!(matching_step(&secret, "12345", now), None);
        assert_eq!(matching_step(&secret, "abcdef", now), None);
    }

    #[test]
    fn the_otpauth_uri_names_the_issuer_and_account_and_carries_the_secret() {
        let secret = new_secret();
        let uri = otpauth_uri(&secret, "ann@example.com").unwrap();
        assert!(
            uri.starts_with("otpauth://totp/Ledgerdesk:ann%40example.com?"),
            "{uri}"
        );
        assert!(
            uri.contains(&format!("secret={}", secret_base32(&secret))),
            "{uri}"
        );
        assert!(uri.contains("issuer=Ledgerdesk"), "{uri}");
    }

    #[test]
    fn recovery_codes_are_distinct_and_match_their_hash_however_typed() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let unique: std::collections::BTreeSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), RECOVERY_CODES);
        let hashes: Vec<String> = codes[..3].iter().map(|c| hash_recovery_code(c)).collect();
        assert_eq!(find_recovery_code(&codes[1], &hashes), Some(1));
        let typed = format!(" {} ", codes[2].to_uppercase().replace('-', " "));
        assert_eq!(find_recovery_code(&typed, &hashes), Some(2));
        assert_eq!(find_recovery_code(&codes[5], &hashes), None);
        assert_eq!(find_recovery_code("", &hashes), None);
    }
}
