//! Access tokens: HS256 JWTs naming an agent and their role, valid for minutes.
//!
//! Decoding accepts HS256 only (so `alg: none` and algorithm confusion are refused), requires
//! `exp`, `sub`, `iss` and `typ`, and allows five seconds of clock skew.

use std::fmt;

use chrono::{DateTime, Utc};
use domain::AgentId;
use domain::agent::Role;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

const ISSUER: &str = "ledgerdesk";
const ACCESS: &str = "access";
const LEEWAY_SECONDS: u64 = 5;

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
}

/// The signing key, in both directions. `Debug` never shows it.
#[derive(Clone)]
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
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
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        Keys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
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
        let claims = AccessClaims {
            sub: agent.as_uuid(),
            role,
            iss: ISSUER.to_owned(),
            typ: ACCESS.to_owned(),
            iat: now.timestamp(),
            exp: expires.timestamp(),
            sid: session,
            ver: epoch,
        };
        // HS256 signing of a serializable struct cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .unwrap_or_default()
    }

    /// Checks a token's signature, algorithm, issuer, type and expiry.
    ///
    /// # Errors
    /// A short reason, safe to show the caller.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, &'static str> {
        use jsonwebtoken::errors::ErrorKind;
        match jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation) {
            Ok(data) if data.claims.typ == ACCESS => Ok(data.claims),
            Ok(_) => Err("not an access token"),
            Err(error) => Err(match error.kind() {
                ErrorKind::ExpiredSignature => "the access token has expired",
                ErrorKind::InvalidSignature => "the access token's signature is invalid",
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    "the access token's algorithm is not accepted"
                }
                _ => "the access token is malformed",
            }),
        }
    }
}
