//! Access tokens: HS256 JWTs naming an agent and their role, valid for minutes.
//!
//! Decoding accepts HS256 only (so `alg: none` and algorithm confusion are refused), requires
//! `exp`, `sub`, `iss`, `typ` and `iat`, and allows five seconds of clock skew: a token is
//! refused five seconds after its `exp`, and while its `iat` (or `nbf`, when it has one) is more
//! than five seconds ahead of this server's clock.
//!
//! A panel sends the same token with every request for its whole lifetime, so the claims of
//! tokens that passed are kept by their exact text ([`VERIFIED_KEPT`] at most; when full, a
//! `quick_cache` cache drops a token not presented again rather than one in use). A kept token
//! is still refused once it expires; any other text, a tampered one included, is checked in
//! full.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::AgentId;
use domain::agent::Role;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use quick_cache::sync::Cache;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

const ISSUER: &str = "ledgerdesk";
const ACCESS: &str = "access";
const EXPIRED: &str = "the access token has expired";
const NOT_YET_VALID: &str = "the access token is not valid yet";
const LEEWAY_SECONDS: u64 = 5;
/// Most verified tokens whose claims are kept.
const VERIFIED_KEPT: usize = 4_096;

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The agent's id.
    pub sub: Uuid,
    /// Their role.
    pub role: Role,
    /// Issuer: always `ledgerdesk`.
    pub iss: String,
    /// Token type: always `access`.
    pub typ: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// The refresh-token family (login) this token belongs to.
    pub sid: Uuid,
    /// The agent's session epoch when issued: a token from an older epoch is refused.
    pub ver: i32,
    /// A restricted sign-in: the agent must enrol a second factor and may do nothing else
    /// (the team requires one of their role and they have none).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub enrol: bool,
}

impl AccessClaims {
    /// The claims of an access token for `agent` in `role`, of sign-in `session` in session
    /// epoch `epoch`, valid from `now` until `expires`.
    pub fn new(
        agent: AgentId,
        role: Role,
        session: Uuid,
        epoch: i32,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Self {
        AccessClaims {
            sub: agent.as_uuid(),
            role,
            iss: ISSUER.to_owned(),
            typ: ACCESS.to_owned(),
            iat: now.timestamp(),
            exp: expires.timestamp(),
            sid: session,
            ver: epoch,
            enrol: false,
        }
    }

    /// The same, for a restricted sign-in (see [`AccessClaims::enrol`]) when `restricted`.
    #[must_use]
    pub fn restricted(self, restricted: bool) -> Self {
        AccessClaims {
            enrol: restricted,
            ..self
        }
    }
}

/// What a device token says: this device signed in as `sub` with the right password (and
/// second factor) before. It is no credential by itself; sign-in throttling uses it to tell
/// the account's own devices from everyone else (see `AuthService::login`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceClaims {
    /// The agent's id.
    pub sub: Uuid,
    /// Issuer: always `ledgerdesk`.
    pub iss: String,
    /// Token type: always `device`.
    pub typ: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// The device's id, kept across sign-ins from it.
    pub did: Uuid,
}

const DEVICE: &str = "device";

/// The signing key, in both directions. `Debug` never shows it.
#[derive(Clone)]
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Token text → its claims, for tokens whose signature and claims passed.
    verified: Arc<Cache<Box<str>, AccessClaims>>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keys([redacted])")
    }
}

impl Keys {
    /// Keys for an HMAC secret (at least 32 bytes; the caller checks).
    pub fn from_secret(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        Keys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            verified: Arc::new(Cache::new(VERIFIED_KEPT)),
        }
    }

    /// Signs an access token for `agent` in `role`, valid until `expires`.
    pub fn issue(
        &self,
        agent: AgentId,
        role: Role,
        session: Uuid,
        epoch: i32,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> String {
        self.sign(&AccessClaims::new(
            agent, role, session, epoch, now, expires,
        ))
    }

    /// Signs a device token for `agent` on device `device`, valid until `expires`.
    pub fn issue_device(
        &self,
        agent: AgentId,
        device: Uuid,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> String {
        self.sign(&DeviceClaims {
            sub: agent.as_uuid(),
            iss: ISSUER.to_owned(),
            typ: DEVICE.to_owned(),
            iat: now.timestamp(),
            exp: expires.timestamp(),
            did: device,
        })
    }

    /// The claims of a device token this key signed and that has not expired.
    pub fn verify_device(&self, token: &str) -> Option<DeviceClaims> {
        jsonwebtoken::decode::<DeviceClaims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|data| data.claims)
            .filter(|claims| claims.typ == DEVICE)
    }

    /// Signs any claims with this key, as an HS256 JWT (tests forge tokens with it).
    pub fn sign(&self, claims: &impl Serialize) -> String {
        // HS256 signing of a serializable value cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .unwrap_or_default()
    }

    /// Checks a token's signature, algorithm, issuer, type and expiry.
    ///
    /// # Errors
    /// A short reason, safe to show the caller.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, &'static str> {
        self.verify_at(token, Utc::now().timestamp())
    }

    /// [`Keys::verify`] at `now` (seconds since the epoch) for a token seen before; a token not
    /// seen before is checked against the clock.
    fn verify_at(&self, token: &str, now: i64) -> Result<AccessClaims, &'static str> {
        if let Some(claims) = self.verified.get(token) {
            return if now > claims.exp.saturating_add(LEEWAY_SECONDS as i64) {
                self.verified.remove(token);
                Err(EXPIRED)
            } else {
                Ok(claims)
            };
        }
        let claims = self.decode(token)?;
        if claims.iat > now.saturating_add(LEEWAY_SECONDS as i64) {
            return Err(NOT_YET_VALID);
        }
        self.verified.insert(token.into(), claims.clone());
        Ok(claims)
    }

    fn decode(&self, token: &str) -> Result<AccessClaims, &'static str> {
        use jsonwebtoken::errors::ErrorKind;
        match jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation) {
            Ok(data) if data.claims.typ == ACCESS => Ok(data.claims),
            Ok(_) => Err("not an access token"),
            Err(error) => Err(match error.kind() {
                ErrorKind::ExpiredSignature => EXPIRED,
                ErrorKind::ImmatureSignature => NOT_YET_VALID,
                ErrorKind::InvalidSignature => "the access token's signature is invalid",
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    "the access token's algorithm is not accepted"
                }
                _ => "the access token is malformed",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::from_secret(b"a test secret of at least thirty-two bytes")
    }

    fn issued(keys: &Keys, valid_for: chrono::TimeDelta) -> (String, i64) {
        let now = Utc::now();
        let expires = now + valid_for;
        let token = keys.issue(
            AgentId::from_uuid(Uuid::now_v7()),
            Role::Agent,
            Uuid::now_v7(),
            1,
            now,
            expires,
        );
        (token, expires.timestamp())
    }

    #[test]
    fn a_kept_token_is_refused_once_it_expires() {
        let keys = keys();
        let (token, exp) = issued(&keys, chrono::TimeDelta::minutes(15));
        assert_eq!(keys.verify(&token).map(|c| c.exp), Ok(exp));
        assert_eq!(keys.verified.len(), 1);
        // Answered from memory while valid, and within the allowed skew.
        let skew = LEEWAY_SECONDS as i64;
        assert_eq!(keys.verify_at(&token, exp + skew).map(|c| c.exp), Ok(exp));
        assert_eq!(keys.verify_at(&token, exp + skew + 1), Err(EXPIRED));
        assert_eq!(keys.verified.len(), 0, "an expired token is forgotten");
    }

    #[test]
    fn a_token_altered_after_a_good_one_was_kept_is_checked_in_full() {
        let keys = keys();
        let (token, _) = issued(&keys, chrono::TimeDelta::minutes(15));
        assert!(keys.verify(&token).is_ok());
        // A character inside the signature, so the text still decodes.
        let at = token.len() - 10;
        let swapped = if &token[at..=at] == "A" { "B" } else { "A" };
        let altered = format!("{}{swapped}{}", &token[..at], &token[at + 1..]);
        assert_eq!(
            keys.verify(&altered),
            Err("the access token's signature is invalid")
        );
        let other = issued(
            &Keys::from_secret(b"another secret of thirty-two bytes!!"),
            chrono::TimeDelta::minutes(15),
        )
        .0;
        assert_eq!(
            keys.verify(&other),
            Err("the access token's signature is invalid")
        );
        assert_eq!(keys.verified.len(), 1, "refused tokens are not kept");
    }

    #[test]
    fn a_token_issued_or_valid_only_in_the_future_is_refused_beyond_the_skew() {
        let keys = keys();
        let now = Utc::now().timestamp();
        let skew = LEEWAY_SECONDS as i64;
        let claims = |iat: i64, nbf: Option<i64>| {
            let mut claims = serde_json::json!({
                "sub": Uuid::now_v7(), "role": "agent", "iss": ISSUER, "typ": ACCESS,
                "iat": iat, "exp": now + 600, "sid": Uuid::now_v7(), "ver": 0,
            });
            if let Some(nbf) = nbf {
                claims["nbf"] = serde_json::json!(nbf);
            }
            keys.sign(&claims)
        };
        assert_eq!(keys.verify(&claims(now + 60, None)), Err(NOT_YET_VALID));
        assert_eq!(
            keys.verify(&claims(now, Some(now + 60))),
            Err(NOT_YET_VALID)
        );
        assert_eq!(keys.verified.len(), 0);
        assert!(keys.verify(&claims(now + skew - 1, None)).is_ok());
        assert!(keys.verify(&claims(now, Some(now + skew - 1))).is_ok());
        assert!(keys.verify(&claims(now - 60, Some(now - 60))).is_ok());
    }

    #[test]
    fn a_device_token_is_no_access_token_and_an_access_token_no_device_token() {
        let keys = keys();
        let agent = AgentId::from_uuid(Uuid::now_v7());
        let now = Utc::now();
        let device =
            keys.issue_device(agent, Uuid::now_v7(), now, now + chrono::TimeDelta::days(1));
        assert_eq!(
            keys.verify_device(&device).map(|c| c.sub),
            Some(agent.as_uuid())
        );
        assert!(keys.verify(&device).is_err());
        let (access, _) = issued(&keys, chrono::TimeDelta::minutes(15));
        assert_eq!(keys.verify_device(&access), None);
        let expired = keys.issue_device(
            agent,
            Uuid::now_v7(),
            now - chrono::TimeDelta::days(2),
            now - chrono::TimeDelta::days(1),
        );
        assert_eq!(keys.verify_device(&expired), None);
        let other = Keys::from_secret(b"another secret of thirty-two bytes!!");
        assert_eq!(other.verify_device(&device), None);
    }

    #[test]
    fn an_expired_token_never_seen_is_refused() {
        let keys = keys();
        let (token, _) = issued(&keys, chrono::TimeDelta::minutes(-5));
        assert_eq!(keys.verify(&token), Err(EXPIRED));
        assert_eq!(keys.verified.len(), 0);
    }
}
