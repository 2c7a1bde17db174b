//! Who is calling and their sessions, as GraphQL shows them; integrator API tokens.

use std::net::IpAddr;

use async_graphql::{Enum, ID, InputObject, SimpleObject};
use axum::http::{HeaderMap, header};
use chrono::{DateTime, Utc};
use domain::agent::Role;
use domain::settings::TwoFactorPolicy;
use uuid::Uuid;

use crate::auth::Session;
use crate::auth::store::ListedApiToken;

/// The name of the cookie that marks a device which signed in before.
pub const DEVICE_COOKIE: &str = "ledgerdesk_device";

/// What sign-in needs to know of an HTTP request: the client's address (for throttling) and
/// the device cookie, if the browser sent one. Present only on `POST /graphql`.
#[derive(Debug, Clone, Default)]
pub struct ClientAddr {
    /// The client's address: the peer's, or behind a trusted proxy the last address in
    /// `X-Forwarded-For` that is not one of the trusted proxies.
    pub ip: Option<IpAddr>,
    /// The value of the device cookie.
    pub device_cookie: Option<String>,
}

impl ClientAddr {
    /// The client of a request from `peer` with `headers`, trusting `X-Forwarded-For` only
    /// when `peer` is one of `trusted` proxies.
    pub fn of(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> Self {
        ClientAddr {
            ip: client_ip(peer, headers, trusted),
            device_cookie: device_cookie(headers),
        }
    }
}

fn client_ip(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[ipnet::IpNet],
) -> Option<IpAddr> {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let peer = peer?;
    if !is_trusted(&peer) {
        return Some(peer);
    }
    // Each proxy appends the address it received from; walking back from the end, the first
    // address no trusted proxy claims is the client (anything before it the client could
    // have written itself).
    let mut client = peer;
    for value in headers.get_all("x-forwarded-for").iter().rev() {
        let Ok(value) = value.to_str() else {
            return Some(client);
        };
        for hop in value.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) if is_trusted(&ip) => client = ip,
                Ok(ip) => return Some(ip),
                Err(_) => return Some(client),
            }
        }
    }
    Some(client)
}

fn device_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == DEVICE_COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty() && value.len() <= 2048)
}

/// The `Set-Cookie` value that keeps a device token in the browser: `HttpOnly` (no script
/// reads it), `Secure`, `SameSite=Strict`, sent only to `/graphql`.
pub fn device_cookie_header(token: &str, max_age_secs: i64) -> String {
    format!(
        "{DEVICE_COOKIE}={token}; Path=/graphql; Max-Age={max_age_secs}; HttpOnly; Secure; \
         SameSite=Strict"
    )
}

/// A team member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(name = "Role")]
pub enum RoleValue {
    /// Everything, including agents, settings and API tokens.
    Admin,
    /// Tickets (of their categories, or all when they have none), customers, broadcasts.
    Agent,
    /// Reads everything, including history and the event feed; changes nothing.
    Auditor,
}

impl From<Role> for RoleValue {
    fn from(role: Role) -> Self {
        match role {
            Role::Admin => RoleValue::Admin,
            Role::Agent => RoleValue::Agent,
            Role::Auditor => RoleValue::Auditor,
        }
    }
}

impl From<RoleValue> for Role {
    fn from(role: RoleValue) -> Self {
        match role {
            RoleValue::Admin => Role::Admin,
            RoleValue::Agent => Role::Agent,
            RoleValue::Auditor => Role::Auditor,
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone, SimpleObject)]
pub struct Me {
    /// The agent's id; null for an API token.
    pub agent_id: Option<ID>,
    /// The agent's email.
    pub email: Option<String>,
    /// The agent's display name.
    pub name: Option<String>,
    /// The agent's role.
    pub role: Option<RoleValue>,
    /// The categories whose tickets the agent works (empty: all).
    pub category_ids: Vec<ID>,
    /// True until the agent replaces a one-time password.
    pub must_change_password: bool,
    /// Whether the agent signs in with a second factor (an authenticator app).
    pub second_factor_enrolled: bool,
    /// True on a restricted sign-in: the team requires a second factor of this agent's role
    /// and they have none; only `enrolSecondFactor`, `confirmSecondFactor`, `me`,
    /// `changePassword` and `logout` work until they confirm one.
    pub must_enrol_second_factor: bool,
    /// The API token's id; null for an agent.
    pub api_token_id: Option<ID>,
    /// The API token's scopes.
    pub scopes: Vec<String>,
}

/// A new session.
#[derive(Debug, Clone, SimpleObject)]
pub struct AuthPayload {
    /// Send as `Authorization: Bearer <accessToken>`.
    pub access_token: String,
    /// When it stops working; refresh before.
    pub access_token_expires_at: DateTime<Utc>,
    /// Single-use: `refreshToken` trades it for a new session. Keep it secret.
    pub refresh_token: String,
    /// When it stops working.
    pub refresh_token_expires_at: DateTime<Utc>,
    /// True until the agent replaces a one-time password.
    pub must_change_password: bool,
    /// The agent.
    pub agent_id: ID,
    /// Their role.
    pub role: RoleValue,
    /// True on a restricted sign-in: the team requires a second factor of this role and the
    /// agent has none; only enrolling one (and `me`, `changePassword`, `logout`) works until
    /// `confirmSecondFactor` returns a full session.
    pub must_enrol_second_factor: bool,
    /// Set by `login` and `loginSecondFactor`: proof that this device signed in to this
    /// account. Send it back as `deviceToken` at the next `login` to pass the per-account
    /// throttle while others fail at this account's password. Browsers get the same in an
    /// HttpOnly cookie and need not keep it.
    pub device_token: Option<String>,
}

impl From<Session> for AuthPayload {
    fn from(session: Session) -> Self {
        AuthPayload {
            access_token: session.access_token,
            access_token_expires_at: session.access_expires_at,
            refresh_token: session.refresh_token,
            refresh_token_expires_at: session.refresh_expires_at,
            must_change_password: session.must_change_password,
            agent_id: ID(session.agent_id.to_string()),
            role: session.role.into(),
            must_enrol_second_factor: session.must_enrol_second_factor,
            device_token: session.device_token,
        }
    }
}

/// Input of `login`.
#[derive(Debug, InputObject)]
pub struct LoginInput {
    /// The agent's email.
    #[graphql(validator(max_length = 320))]
    pub email: String,
    /// Their password.
    #[graphql(secret, validator(max_length = 1024))]
    pub password: String,
    /// The `deviceToken` of an earlier sign-in to this account from this device, for clients
    /// that keep no cookies.
    #[graphql(secret, validator(max_length = 2048))]
    pub device_token: Option<String>,
}

/// Input of `loginSecondFactor`: the challenge and exactly one of `code` and `recoveryCode`.
#[derive(Debug, InputObject)]
pub struct LoginSecondFactorInput {
    /// The `challenge` of the `SECOND_FACTOR_REQUIRED` error `login` answered.
    #[graphql(secret, validator(max_length = 256))]
    pub challenge: String,
    /// The six-digit code the authenticator app shows.
    #[graphql(secret, validator(max_length = 16))]
    pub code: Option<String>,
    /// One of the recovery codes (each works once).
    #[graphql(secret, validator(max_length = 64))]
    pub recovery_code: Option<String>,
    /// As in `login`.
    #[graphql(secret, validator(max_length = 2048))]
    pub device_token: Option<String>,
}

/// Input of `enrolSecondFactor`.
#[derive(Debug, InputObject)]
pub struct EnrolSecondFactorInput {
    /// The agent's current password.
    #[graphql(secret, validator(max_length = 1024))]
    pub current_password: String,
}

/// Input of `confirmSecondFactor`.
#[derive(Debug, InputObject)]
pub struct ConfirmSecondFactorInput {
    /// The code the authenticator app shows now.
    #[graphql(secret, validator(max_length = 16))]
    pub code: String,
}

/// Input of `disableSecondFactor`: exactly one of `code` and `recoveryCode`.
#[derive(Debug, InputObject)]
pub struct DisableSecondFactorInput {
    /// The code the authenticator app shows now.
    #[graphql(secret, validator(max_length = 16))]
    pub code: Option<String>,
    /// One of the recovery codes.
    #[graphql(secret, validator(max_length = 64))]
    pub recovery_code: Option<String>,
}

/// Input of `resetSecondFactor`.
#[derive(Debug, InputObject)]
pub struct ResetSecondFactorInput {
    /// The agent who lost their device.
    pub agent_id: ID,
}

/// Input of `setTwoFactorPolicy`.
#[derive(Debug, InputObject)]
pub struct SetTwoFactorPolicyInput {
    /// Who must sign in with a second factor.
    pub policy: TwoFactorPolicyValue,
}

/// Who must sign in with a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(name = "TwoFactorPolicy")]
pub enum TwoFactorPolicyValue {
    /// Nobody must; anyone may enrol.
    Optional,
    /// Admins must.
    Admins,
    /// Everyone must.
    Everyone,
}

impl From<TwoFactorPolicy> for TwoFactorPolicyValue {
    fn from(policy: TwoFactorPolicy) -> Self {
        match policy {
            TwoFactorPolicy::Optional => TwoFactorPolicyValue::Optional,
            TwoFactorPolicy::Admins => TwoFactorPolicyValue::Admins,
            TwoFactorPolicy::Everyone => TwoFactorPolicyValue::Everyone,
        }
    }
}

impl From<TwoFactorPolicyValue> for TwoFactorPolicy {
    fn from(policy: TwoFactorPolicyValue) -> Self {
        match policy {
            TwoFactorPolicyValue::Optional => TwoFactorPolicy::Optional,
            TwoFactorPolicyValue::Admins => TwoFactorPolicy::Admins,
            TwoFactorPolicyValue::Everyone => TwoFactorPolicy::Everyone,
        }
    }
}

/// Result of `enrolSecondFactor`: what the authenticator app needs. Nothing changes at
/// sign-in until `confirmSecondFactor`.
#[derive(Debug, Clone, SimpleObject)]
pub struct EnrolSecondFactorPayload {
    /// The shared secret in base32, to type into the app.
    pub secret: String,
    /// The same as an `otpauth://totp/…` URI, to show as a QR code.
    pub otpauth_uri: String,
}

/// Result of `confirmSecondFactor`.
#[derive(Debug, Clone, SimpleObject)]
pub struct ConfirmSecondFactorPayload {
    /// Ten one-time recovery codes, for when the device is lost. Shown once: only hashes are
    /// kept.
    pub recovery_codes: Vec<String>,
    /// A new session; every other session of the agent has ended.
    pub session: AuthPayload,
}

/// Result of `disableSecondFactor` and `resetSecondFactor`.
#[derive(Debug, Clone, SimpleObject)]
pub struct SecondFactorRemovedPayload {
    /// The agent.
    pub agent_id: ID,
    /// False when there was no second factor to remove.
    pub removed: bool,
}

/// Result of `setTwoFactorPolicy`.
#[derive(Debug, Clone, SimpleObject)]
pub struct TwoFactorPolicyPayload {
    /// The policy now.
    pub policy: TwoFactorPolicyValue,
}

/// Input of `refreshToken`.
#[derive(Debug, InputObject)]
pub struct RefreshTokenInput {
    /// The refresh token of the current session.
    #[graphql(secret, validator(max_length = 256))]
    pub refresh_token: String,
}

/// Input of `logout`.
#[derive(Debug, InputObject)]
pub struct LogoutInput {
    /// The refresh token of the session to end.
    #[graphql(secret, validator(max_length = 256))]
    pub refresh_token: Option<String>,
    /// End every session of this agent, on every device.
    #[graphql(default = false)]
    pub everywhere: bool,
}

/// Input of `changePassword`.
#[derive(Debug, InputObject)]
pub struct ChangePasswordInput {
    /// The current password.
    #[graphql(secret, validator(max_length = 1024))]
    pub current_password: String,
    /// The new one: 12 to 256 characters.
    #[graphql(secret, validator(max_length = 1024))]
    pub new_password: String,
}

/// Result of `logout`.
#[derive(Debug, Clone, SimpleObject)]
pub struct LogoutPayload {
    /// Always true: the session (or every session) has ended.
    pub ok: bool,
}

/// Input of `createApiToken`.
#[derive(Debug, InputObject)]
pub struct CreateApiTokenInput {
    /// What it is for (shown in the token list).
    #[graphql(validator(min_length = 1, max_length = 100))]
    pub name: String,
    /// Its scopes, e.g. `events:read`, `tickets:read`.
    #[graphql(validator(min_items = 1, max_items = 7))]
    pub scopes: Vec<String>,
}

/// Result of `createApiToken`.
#[derive(Debug, SimpleObject)]
pub struct CreateApiTokenPayload {
    /// The token's id.
    pub api_token_id: ID,
    /// Shown once: only a digest is kept.
    pub token: String,
    /// Its scopes.
    pub scopes: Vec<String>,
}

/// Input of `revokeApiToken`.
#[derive(Debug, InputObject)]
pub struct RevokeApiTokenInput {
    /// The token's id.
    pub api_token_id: ID,
}

/// Result of `revokeApiToken`.
#[derive(Debug, SimpleObject)]
pub struct RevokeApiTokenPayload {
    /// The token's id.
    pub api_token_id: ID,
    /// False when it was already revoked.
    pub revoked: bool,
}

/// An integrator API token (never its secret).
#[derive(Debug, SimpleObject)]
#[graphql(complex)]
pub struct ApiToken {
    /// Its id.
    #[graphql(skip)]
    pub id: Uuid,
    /// What it is for.
    pub name: String,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it was last used (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<ListedApiToken> for ApiToken {
    fn from(row: ListedApiToken) -> Self {
        ApiToken {
            id: row.id,
            name: row.name,
            scopes: row.scopes,
            created_at: row.created_at,
            revoked_at: row.revoked_at,
            last_used_at: row.last_used_at,
        }
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly on purpose")]
mod tests {
    use axum::http::{HeaderMap, HeaderValue};

    use super::{ClientAddr, DEVICE_COOKIE};

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn client(peer: &str, pairs: &[(&'static str, &str)], trusted: &[&str]) -> Option<String> {
        let trusted: Vec<ipnet::IpNet> = trusted.iter().map(|net| net.parse().unwrap()).collect();
        ClientAddr::of(Some(peer.parse().unwrap()), &headers(pairs), &trusted)
            .ip
            .map(|ip| ip.to_string())
    }

    #[test]
    fn forwarded_addresses_count_only_from_a_trusted_proxy() {
        let forwarded = [("x-forwarded-for", "203.0.113.9, 198.51.100.4")];
        // No proxy trusted: the header is the client's own say, ignored.
        assert_eq!(
            client("10.0.0.2", &forwarded, &[]).as_deref(),
            Some("10.0.0.2")
        );
        // From a trusted proxy: the last address the proxies did not add.
        assert_eq!(
            client("10.0.0.2", &forwarded, &["10.0.0.0/8"]).as_deref(),
            Some("198.51.100.4")
        );
        // A chain of trusted proxies is walked back; what the client wrote first is skipped.
        let chain = [
            ("x-forwarded-for", "1.2.3.4, 198.51.100.4"),
            ("x-forwarded-for", "10.0.0.7"),
        ];
        assert_eq!(
            client("10.0.0.2", &chain, &["10.0.0.0/8"]).as_deref(),
            Some("198.51.100.4")
        );
        // From an untrusted peer, even a trusted-looking header changes nothing.
        assert_eq!(
            client("192.0.2.1", &forwarded, &["10.0.0.0/8"]).as_deref(),
            Some("192.0.2.1")
        );
        // A malformed hop stops the walk at the last proxy.
        let garbage = [("x-forwarded-for", "nonsense")];
        assert_eq!(
            client("10.0.0.2", &garbage, &["10.0.0.0/8"]).as_deref(),
            Some("10.0.0.2")
        );
    }

    #[test]
    fn the_device_cookie_is_found_among_others() {
        let cookie = format!("a=1; {DEVICE_COOKIE}=abc.def.ghi ; b=2");
        let found = ClientAddr::of(None, &headers(&[("cookie", &cookie)]), &[]);
        assert_eq!(found.device_cookie.as_deref(), Some("abc.def.ghi"));
        let none = ClientAddr::of(None, &headers(&[("cookie", "a=1")]), &[]);
        assert_eq!(none.device_cookie, None);
    }
}
