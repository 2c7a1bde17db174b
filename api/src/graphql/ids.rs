//! Global ids for `node(id:)`: `base64url("Type:key")`, opaque to clients.

use async_graphql::ID;

use super::error::{Code, error};

const ENGINE: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The global id of a `kind` object with key `key`.
pub fn global(kind: &str, key: impl std::fmt::Display) -> ID {
    use base64::Engine;
    ID(ENGINE.encode(format!("{kind}:{key}")))
}

/// Splits a global id into its type and key.
///
/// # Errors
/// `VALIDATION` when it is not an id this API handed out.
pub fn parse(id: &ID) -> async_graphql::Result<(String, String)> {
    use base64::Engine;
    let invalid = || error(Code::Validation, "not a valid id");
    let bytes = ENGINE.decode(id.as_bytes()).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (kind, key) = text.split_once(':').ok_or_else(invalid)?;
    Ok((kind.to_owned(), key.to_owned()))
}

/// The uuid key of a global id of `kind`, also accepting a bare uuid.
///
/// # Errors
/// `VALIDATION` for another kind or a malformed id.
pub fn uuid_of(kind: &str, id: &ID) -> async_graphql::Result<uuid::Uuid> {
    if let Ok(uuid) = id.parse::<uuid::Uuid>() {
        return Ok(uuid);
    }
    let (found, key) = parse(id)?;
    if found != kind {
        return Err(error(
            Code::Validation,
            format!("expected a {kind} id, got a {found} id"),
        ));
    }
    key.parse()
        .map_err(|_| error(Code::Validation, format!("not a valid {kind} id")))
}

/// A bare uuid given as `what` (subscription arguments take no global ids).
///
/// # Errors
/// `VALIDATION` when it is not a uuid.
pub fn parse_uuid(id: &ID, what: &str) -> async_graphql::Result<uuid::Uuid> {
    id.parse()
        .map_err(|_| error(Code::Validation, format!("{what} is not a uuid")))
}
