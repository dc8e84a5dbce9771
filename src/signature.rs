//! Webhook signature schemes. Standard Webhooks (the `generic` shop platform) for now:
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, several
//! space-separated signatures allowed, key = base64-decoded secret after `whsec_`, timestamps
//! within five minutes of now. Comparisons are constant-time.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Checks `signature` = base64 of HMAC-SHA256(`key`, `body`): how Shopify
/// (`X-Shopify-Hmac-Sha256`) and WooCommerce (`X-WC-Webhook-Signature`) sign a delivery. The
/// comparison is constant-time.
pub fn body_hmac_matches(key: &[u8], body: &[u8], signature: &str) -> bool {
    let Ok(given) = B64.decode(signature.trim()) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(body);
    let expected = mac.finalize().into_bytes();
    given.len() == expected.len() && bool::from(given.ct_eq(&expected))
}

/// base64 of HMAC-SHA256(`key`, `body`), as a shop platform signs (for tests and tools).
pub fn body_hmac(key: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(body);
    B64.encode(mac.finalize().into_bytes())
}

/// How far a webhook timestamp may be from now, in seconds.
pub const TOLERANCE_SECS: i64 = 5 * 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    #[error("webhook-timestamp is not a Unix time in seconds")]
    BadTimestamp,
    #[error("webhook-timestamp is more than 5 minutes from now: check the sender's clock or resend")]
    OutsideTolerance,
    #[error("no signature in webhook-signature matches: check the signing secret")]
    NoMatch,
}

/// A Standard Webhooks signing secret (`whsec_` + base64 of the key bytes).
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

impl WebhookSecret {
    pub fn parse(s: &str) -> Option<Self> {
        let b64 = s.strip_prefix("whsec_").unwrap_or(s);
        B64.decode(b64).ok().filter(|k| !k.is_empty()).map(Self)
    }

    /// A fresh secret: `whsec_` + base64 of 32 random bytes.
    pub fn generate() -> String {
        let key: [u8; 32] = rand::random();
        format!("whsec_{}", B64.encode(key))
    }

    /// The `v1,<base64>` signature of a message.
    /// `timestamp` is the `webhook-timestamp` header's text, signed as sent.
    pub fn sign(&self, msg_id: &str, timestamp: &str, body: &[u8]) -> String {
        format!("v1,{}", B64.encode(self.mac(msg_id, timestamp, body)))
    }

    fn mac(&self, msg_id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }

    /// Verifies the three Standard Webhooks headers against `body` at time `now` (Unix seconds).
    pub fn verify(
        &self,
        msg_id: Option<&str>,
        timestamp: Option<&str>,
        signatures: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<(), SignatureError> {
        let msg_id = msg_id
            .filter(|s| !s.is_empty())
            .ok_or(SignatureError::MissingHeader("webhook-id"))?;
        let timestamp = timestamp
            .filter(|s| !s.is_empty())
            .ok_or(SignatureError::MissingHeader("webhook-timestamp"))?;
        let signatures = signatures
            .filter(|s| !s.is_empty())
            .ok_or(SignatureError::MissingHeader("webhook-signature"))?;
        let ts: i64 = timestamp.trim().parse().map_err(|_| SignatureError::BadTimestamp)?;
        if (now - ts).abs() > TOLERANCE_SECS {
            return Err(SignatureError::OutsideTolerance);
        }
        // The signed content holds the header's text as sent, not the number re-written.
        let expected = self.mac(msg_id, timestamp, body);
        let matched = signatures
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .filter_map(|b| B64.decode(b).ok())
            .any(|sig| bool::from(sig.ct_eq(&expected)));
        if matched {
            Ok(())
        } else {
            Err(SignatureError::NoMatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The test vector published with the Standard Webhooks specification.
    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TS: i64 = 1_649_367_553;
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const SIG: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    fn secret() -> WebhookSecret {
        WebhookSecret::parse(SECRET).unwrap()
    }

    fn verify(
        id: Option<&str>,
        ts: Option<&str>,
        sig: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<(), SignatureError> {
        secret().verify(id, ts, sig, body, now)
    }

    #[test]
    fn signs_the_published_test_vector() {
        assert_eq!(secret().sign(ID, "1649367553", BODY), SIG);
    }

    #[test]
    fn verifies_the_published_test_vector() {
        assert_eq!(verify(Some(ID), Some("1649367553"), Some(SIG), BODY, TS), Ok(()));
    }

    #[test]
    fn accepts_any_matching_signature_among_several() {
        let header = format!("v1,AAAA v2,xyz {SIG}");
        assert_eq!(
            verify(Some(ID), Some("1649367553"), Some(&header), BODY, TS + 10),
            Ok(())
        );
    }

    #[test]
    fn rejects_a_wrong_secret() {
        let other = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            other.verify(Some(ID), Some("1649367553"), Some(SIG), BODY, TS),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn rejects_one_flipped_body_byte() {
        let mut body = BODY.to_vec();
        body[10] ^= 0x01;
        assert_eq!(
            verify(Some(ID), Some("1649367553"), Some(SIG), &body, TS),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn rejects_a_truncated_signature() {
        let truncated = &SIG[..SIG.len() - 4];
        assert_eq!(
            verify(Some(ID), Some("1649367553"), Some(truncated), BODY, TS),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verify(Some(ID), Some("1649367553"), Some("v1,"), BODY, TS),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn rejects_timestamps_outside_five_minutes() {
        let old = TS + 301;
        assert_eq!(
            verify(Some(ID), Some("1649367553"), Some(SIG), BODY, old),
            Err(SignatureError::OutsideTolerance)
        );
        let ahead = TS - 301;
        assert_eq!(
            verify(Some(ID), Some("1649367553"), Some(SIG), BODY, ahead),
            Err(SignatureError::OutsideTolerance)
        );
        assert_eq!(verify(Some(ID), Some("1649367553"), Some(SIG), BODY, TS + 300), Ok(()));
        assert_eq!(
            verify(Some(ID), Some("yesterday"), Some(SIG), BODY, TS),
            Err(SignatureError::BadTimestamp)
        );
    }

    #[test]
    fn rejects_missing_headers() {
        assert_eq!(
            verify(None, Some("1649367553"), Some(SIG), BODY, TS),
            Err(SignatureError::MissingHeader("webhook-id"))
        );
        assert_eq!(
            verify(Some(ID), None, Some(SIG), BODY, TS),
            Err(SignatureError::MissingHeader("webhook-timestamp"))
        );
        assert_eq!(
            verify(Some(ID), Some("1649367553"), None, BODY, TS),
            Err(SignatureError::MissingHeader("webhook-signature"))
        );
        assert_eq!(
            verify(Some(""), Some("1649367553"), Some(SIG), BODY, TS),
            Err(SignatureError::MissingHeader("webhook-id"))
        );
    }

    #[test]
    fn generated_secrets_hold_32_bytes() {
        let s = WebhookSecret::generate();
        assert!(s.starts_with("whsec_"));
        assert_eq!(WebhookSecret::parse(&s).unwrap().0.len(), 32);
    }
}
