//! Signed media URLs: `<path>?exp=<unix seconds>&by=<caller>&sig=<hex>`, where the signature
//! is HMAC-SHA256 over the media id, the expiry and the caller, with a secret kept in the
//! database and shared by every instance. A browser's `<img>` and `<video>` cannot send an
//! Authorization header, so the API hands these out instead of accepting tokens in query
//! strings; the server still checks, at each request, that the caller named may read the
//! ticket now.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Signs and checks media URLs.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer([redacted])")
    }
}

/// Why a signed URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature does not match: the URL was changed, or signed with another key.
    #[error("the media URL's signature does not match")]
    Tampered,
    /// Past its expiry.
    #[error("the media URL has expired")]
    Expired,
}

impl Signer {
    /// A signer with this key.
    #[must_use]
    pub fn new(key: Vec<u8>) -> Self {
        Signer { key }
    }

    fn mac(&self, media: &str, expires: i64, by: &str) -> HmacSha256 {
        // HMAC takes keys of any length: this cannot fail.
        let mut mac = HmacSha256::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        // Lengths first, so no two different triples give the same bytes.
        for part in [
            media.as_bytes(),
            expires.to_string().as_bytes(),
            by.as_bytes(),
        ] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }

    /// The signature of a URL for `media`, valid until `expires` (unix seconds), for `by`.
    #[must_use]
    pub fn sign(&self, media: &str, expires: i64, by: &str) -> String {
        hex::encode(self.mac(media, expires, by).finalize().into_bytes())
    }

    /// Checks a signature (in constant time), then the expiry against `now`.
    ///
    /// # Errors
    /// [`SignatureError::Tampered`] or [`SignatureError::Expired`].
    pub fn verify(
        &self,
        media: &str,
        expires: i64,
        by: &str,
        signature: &str,
        now: i64,
    ) -> Result<(), SignatureError> {
        let bytes = hex::decode(signature).map_err(|_| SignatureError::Tampered)?;
        self.mac(media, expires, by)
            .verify_slice(&bytes)
            .map_err(|_| SignatureError::Tampered)?;
        if now > expires {
            return Err(SignatureError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_binds_the_media_the_expiry_and_the_caller() {
        let signer = Signer::new(b"k".repeat(32));
        let sig = signer.sign("m1", 100, "a1");
        assert_eq!(signer.verify("m1", 100, "a1", &sig, 50), Ok(()));
        assert_eq!(
            signer.verify("m2", 100, "a1", &sig, 50),
            Err(SignatureError::Tampered)
        );
        assert_eq!(
            signer.verify("m1", 101, "a1", &sig, 50),
            Err(SignatureError::Tampered)
        );
        assert_eq!(
            signer.verify("m1", 100, "a2", &sig, 50),
            Err(SignatureError::Tampered)
        );
        assert_eq!(
            signer.verify("m1", 100, "a1", "zz", 50),
            Err(SignatureError::Tampered)
        );
        assert_eq!(
            signer.verify("m1", 100, "a1", &sig, 101),
            Err(SignatureError::Expired)
        );
        let other = Signer::new(b"x".repeat(32));
        assert_eq!(
            other.verify("m1", 100, "a1", &sig, 50),
            Err(SignatureError::Tampered)
        );
    }
}
