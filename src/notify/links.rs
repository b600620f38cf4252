//! Single-use signed approval links.
//!
//! A token is `base64url(request id ‖ expiry ‖ nonce) . base64url(HMAC-SHA256)`,
//! keyed by a key derived from the configured web secret. The signature and
//! the expiry are checked here, without the database; that a token was issued
//! and is used only once is the store's part (`approval_links` keeps a
//! SHA-256 of each token and the time it was used).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// The key that signs approval links, and the site's address for them.
#[derive(Clone)]
pub struct LinkSigner {
    key: Vec<u8>,
    /// The web site's public address, without a trailing slash.
    pub base_url: String,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkSigner")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// Why a link is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("malformed or forged link")]
    Invalid,
    #[error("expired link")]
    Expired,
}

/// What a valid token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkClaims {
    pub approval_request: Uuid,
    pub expires_at: DateTime<Utc>,
}

impl LinkSigner {
    /// Derives the link key from the web secret, so links and cookies never
    /// share a key.
    pub fn new(secret: &[u8], base_url: &str) -> Option<LinkSigner> {
        let mut mac = HmacSha256::new_from_slice(secret).ok()?;
        mac.update(b"resa approval links v1");
        Some(LinkSigner {
            key: mac.finalize().into_bytes().to_vec(),
            base_url: base_url.trim_end_matches('/').to_owned(),
        })
    }

    fn mac(&self) -> Option<HmacSha256> {
        HmacSha256::new_from_slice(&self.key).ok()
    }

    /// A new token for an approval request, valid until `expires_at`.
    pub fn mint(&self, approval_request: Uuid, expires_at: DateTime<Utc>) -> Option<String> {
        let nonce: [u8; 16] = rand::random();
        let mut payload = Vec::with_capacity(40);
        payload.extend_from_slice(approval_request.as_bytes());
        payload.extend_from_slice(&expires_at.timestamp().to_be_bytes());
        payload.extend_from_slice(&nonce);
        let mut mac = self.mac()?;
        mac.update(&payload);
        let sig = mac.finalize().into_bytes();
        Some(format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(sig)
        ))
    }

    /// The address of a token's landing page.
    pub fn url(&self, token: &str) -> String {
        format!("{}/approve/{token}", self.base_url)
    }

    /// Checks a token's signature (in constant time) and expiry.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<LinkClaims, LinkError> {
        let (payload, sig) = token.split_once('.').ok_or(LinkError::Invalid)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| LinkError::Invalid)?;
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| LinkError::Invalid)?;
        if payload.len() != 40 {
            return Err(LinkError::Invalid);
        }
        let mut mac = self.mac().ok_or(LinkError::Invalid)?;
        mac.update(&payload);
        mac.verify_slice(&sig).map_err(|_| LinkError::Invalid)?;
        let id = Uuid::from_slice(&payload[..16]).map_err(|_| LinkError::Invalid)?;
        let mut secs = [0u8; 8];
        secs.copy_from_slice(&payload[16..24]);
        let expires_at = DateTime::from_timestamp(i64::from_be_bytes(secs), 0).ok_or(LinkError::Invalid)?;
        if now >= expires_at {
            return Err(LinkError::Expired);
        }
        Ok(LinkClaims {
            approval_request: id,
            expires_at,
        })
    }
}

/// What the database keeps of a token.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).single().expect("valid")
    }

    #[test]
    fn a_token_verifies_until_it_expires_and_a_changed_one_never() {
        let s = LinkSigner::new(b"0123456789abcdef0123456789abcdef", "https://resa.example/").expect("key");
        let id = Uuid::from_u128(42);
        let t = s.mint(id, now() + Duration::hours(48)).expect("token");
        assert_eq!(s.verify(&t, now()).map(|c| c.approval_request), Ok(id));
        assert_eq!(s.verify(&t, now() + Duration::hours(48)), Err(LinkError::Expired));
        // Another request id with the same signature.
        let (payload, sig) = t.split_once('.').expect("dot");
        let mut bytes = URL_SAFE_NO_PAD.decode(payload).expect("b64");
        bytes[15] ^= 1;
        let forged = format!("{}.{sig}", URL_SAFE_NO_PAD.encode(&bytes));
        assert_eq!(s.verify(&forged, now()), Err(LinkError::Invalid));
        // Another key.
        let other = LinkSigner::new(b"another secret of enough length!", "https://resa.example").expect("key");
        assert_eq!(other.verify(&t, now()), Err(LinkError::Invalid));
        assert_eq!(s.verify("garbage", now()), Err(LinkError::Invalid));
        assert_eq!(s.url("abc"), "https://resa.example/approve/abc");
    }
}
