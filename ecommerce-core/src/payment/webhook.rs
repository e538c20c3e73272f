//! Signed webhooks: [`sign_webhook`] signs a payload as a provider does, and
//! [`WebhookVerifier`] checks the signature header of a callback and decodes its
//! [`PaymentEvent`].

use std::fmt::{self, Debug};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::PaymentEvent;

/// Why a webhook was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// No secret is configured: every webhook is refused (fails closed).
    #[error("webhook secret not configured; refusing all webhooks")]
    NotConfigured,
    /// The signature header is missing or malformed.
    #[error("malformed signature header")]
    MalformedHeader,
    /// The timestamp is outside the tolerance window (a replay, or a skewed clock).
    #[error("webhook timestamp outside the tolerance window")]
    Expired,
    /// The signature does not match.
    #[error("webhook signature mismatch")]
    BadSignature,
    /// The payload is not a payment event.
    #[error("invalid webhook payload: {0}")]
    InvalidPayload(String),
}

type HmacSha256 = Hmac<Sha256>;

/// Signs a payload: returns the header value `t=<unix seconds>,v1=<hex HMAC-SHA256 of
/// "t.payload">`, the format [`WebhookVerifier`] checks.
pub fn sign_webhook(secret: &[u8], timestamp: i64, payload: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// The most `v1=` signatures a webhook header may carry (a provider rotating its secret sends
/// two); a header with more is malformed.
pub const MAX_SIGNATURES: usize = 8;

/// The longest webhook signature header accepted, in bytes.
pub const MAX_SIGNATURE_HEADER: usize = 1024;

/// Verifies webhook signatures: HMAC-SHA256 over `timestamp.payload`, compared in constant
/// time, with a tolerance window against replays. Without a secret it refuses everything.
/// A header carries at most [`MAX_SIGNATURES`] signatures and [`MAX_SIGNATURE_HEADER`] bytes,
/// and the payload is hashed once however many it carries.
#[derive(Clone)]
pub struct WebhookVerifier {
    secret: Option<Vec<u8>>,
    tolerance: Duration,
}

impl Debug for WebhookVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookVerifier")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

impl WebhookVerifier {
    /// A verifier with this secret (an empty or absent secret refuses every webhook) and a
    /// five-minute tolerance.
    pub fn new(secret: Option<Vec<u8>>) -> Self {
        WebhookVerifier {
            secret: secret.filter(|s| !s.is_empty()),
            tolerance: Duration::from_secs(300),
        }
    }

    /// Sets the tolerance window.
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Checks the signature header of a payload received at `now`.
    ///
    /// # Errors
    /// [`WebhookError::NotConfigured`], [`WebhookError::MalformedHeader`],
    /// [`WebhookError::Expired`], [`WebhookError::BadSignature`].
    pub fn verify(
        &self,
        header: &str,
        payload: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), WebhookError> {
        let secret = self.secret.as_deref().ok_or(WebhookError::NotConfigured)?;
        if header.len() > MAX_SIGNATURE_HEADER {
            return Err(WebhookError::MalformedHeader);
        }
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for part in header.split(',') {
            match part.trim().split_once('=') {
                Some(("t", v)) => {
                    timestamp = Some(
                        v.parse::<i64>()
                            .map_err(|_| WebhookError::MalformedHeader)?,
                    )
                }
                Some(("v1", v)) => {
                    if signatures.len() == MAX_SIGNATURES {
                        return Err(WebhookError::MalformedHeader);
                    }
                    signatures.push(hex::decode(v).map_err(|_| WebhookError::MalformedHeader)?)
                }
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(WebhookError::MalformedHeader)?;
        if signatures.is_empty() {
            return Err(WebhookError::MalformedHeader);
        }
        let age = now.timestamp().abs_diff(timestamp);
        if age > self.tolerance.as_secs() {
            return Err(WebhookError::Expired);
        }
        // One MAC over the payload, whatever the number of signatures, each compared to it in
        // constant time.
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(payload);
        let expected = mac.finalize().into_bytes();
        let mut matched = subtle::Choice::from(0);
        for signature in &signatures {
            matched |= expected.as_slice().ct_eq(signature.as_slice());
        }
        if bool::from(matched) {
            return Ok(());
        }
        Err(WebhookError::BadSignature)
    }

    /// Verifies and decodes a JSON [`PaymentEvent`].
    ///
    /// # Errors
    /// As [`WebhookVerifier::verify`], and [`WebhookError::InvalidPayload`].
    pub fn payment_event(
        &self,
        header: &str,
        payload: &[u8],
        now: DateTime<Utc>,
    ) -> Result<PaymentEvent, WebhookError> {
        self.verify(header, payload, now)?;
        serde_json::from_slice(payload).map_err(|e| WebhookError::InvalidPayload(e.to_string()))
    }
}

/// A webhook request as a provider would send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedWebhook {
    /// The value of the signature header.
    pub signature: String,
    /// The JSON body.
    pub payload: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_with_too_many_signatures_is_malformed_and_a_rotated_secret_still_verifies() {
        let secret = b"s3cret".to_vec();
        let verifier = WebhookVerifier::new(Some(secret.clone()));
        let now = Utc::now();
        let payload = br#"{"a":1}"#;
        let wrong = format!("v1={}", "ab".repeat(32));
        let flood = format!(
            "t={},{}",
            now.timestamp(),
            vec![wrong.as_str(); 6_000].join(",")
        );
        assert_eq!(
            verifier.verify(&flood, payload, now),
            Err(WebhookError::MalformedHeader)
        );
        let nine = format!(
            "t={},{}",
            now.timestamp(),
            [wrong.as_str(); MAX_SIGNATURES + 1].join(",")
        );
        assert_eq!(
            verifier.verify(&nine, payload, now),
            Err(WebhookError::MalformedHeader)
        );
        // A provider rotating its secret signs with the old and the new one.
        let old = sign_webhook(b"old secret", now.timestamp(), payload);
        let new = sign_webhook(&secret, now.timestamp(), payload);
        let both = format!("{old},{}", new.split_once(',').unwrap().1);
        assert_eq!(verifier.verify(&both, payload, now), Ok(()));
    }

    #[test]
    fn signed_webhooks_verify_and_tampered_ones_do_not() {
        let secret = b"s3cret".to_vec();
        let verifier = WebhookVerifier::new(Some(secret.clone()));
        let now = Utc::now();
        let payload = br#"{"a":1}"#;
        let header = sign_webhook(&secret, now.timestamp(), payload);
        assert_eq!(verifier.verify(&header, payload, now), Ok(()));
        assert_eq!(
            verifier.verify(&header, br#"{"a":2}"#, now),
            Err(WebhookError::BadSignature)
        );
        let other = sign_webhook(b"other", now.timestamp(), payload);
        assert_eq!(
            verifier.verify(&other, payload, now),
            Err(WebhookError::BadSignature)
        );
        let late = now + chrono::Duration::seconds(301);
        assert_eq!(
            verifier.verify(&header, payload, late),
            Err(WebhookError::Expired)
        );
        assert_eq!(
            verifier.verify("v1=abcd", payload, now),
            Err(WebhookError::MalformedHeader)
        );
        assert_eq!(
            verifier.verify("t=1,v1=zz", payload, now),
            Err(WebhookError::MalformedHeader)
        );
    }

    #[test]
    fn without_a_secret_every_webhook_is_refused() {
        let now = Utc::now();
        let header = sign_webhook(b"", now.timestamp(), b"{}");
        for verifier in [
            WebhookVerifier::new(None),
            WebhookVerifier::new(Some(Vec::new())),
        ] {
            assert_eq!(
                verifier.verify(&header, b"{}", now),
                Err(WebhookError::NotConfigured)
            );
        }
    }
}
