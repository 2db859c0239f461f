//! Webhook signatures: Stripe's scheme (`Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
//! "<t>.<body>">`, any of several `v1` values, 300 s tolerance), checked against our clock before
//! anything of the body is used. Verifying needs only the HMAC, not a typed model of every Stripe
//! object: the body is read afterwards, tolerantly, by `domain::billing`. The tests check it against
//! async-stripe's own signer.

use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};

/// How far a signature's timestamp may be from now (Stripe's default tolerance).
const TOLERANCE_SECONDS: i64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no Stripe-Signature header")]
    Missing,
    #[error("the body is not UTF-8, so it is not a Stripe event")]
    NotText,
    #[error("no v1 signature matches the body with our secret")]
    Mismatch,
    #[error("the signature's timestamp is more than 300 s away from now")]
    Stale,
}

/// Checks `header` (the `Stripe-Signature` value) over `body` with `secret` at `now`: some `v1` must
/// be the HMAC of `t.body` (compared in constant time), and `t` within 300 s of now.
pub fn verify(
    body: &[u8],
    header: Option<&str>,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let payload = std::str::from_utf8(body).map_err(|_| SignatureError::NotText)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v1)) => signatures.extend(hex::decode(v1).ok()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Mismatch)?;
    let signed = |signature: &Vec<u8>| {
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
            .map(|mut mac| {
                mac.update(timestamp.to_string().as_bytes());
                mac.update(b".");
                mac.update(payload.as_bytes());
                mac.verify_slice(signature).is_ok()
            })
            .unwrap_or(false)
    };
    if !signatures.iter().any(signed) {
        return Err(SignatureError::Mismatch);
    }
    if (now.timestamp() - timestamp).abs() > TOLERANCE_SECONDS {
        return Err(SignatureError::Stale);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use son1k_domain::clock::at;

    const SECRET: &str = "whsec_test";
    const BODY: &str = r#"{"id":"evt_1","type":"ping","created":1,"data":{"object":{}}}"#;

    /// The header async-stripe's signer makes: our verifier is checked against Stripe's library.
    fn header(t: i64, secret: &str, body: &str) -> String {
        stripe_webhook::Webhook::generate_test_header(body, secret, Some(t))
    }

    #[test]
    fn a_fresh_signature_over_the_body_passes_and_anything_else_fails() {
        let now = at("2026-11-26T12:00:00Z");
        let t = now.timestamp();
        assert_eq!(
            verify(BODY.as_bytes(), Some(&header(t, SECRET, BODY)), SECRET, now),
            Ok(())
        );
        assert_eq!(
            verify(
                BODY.as_bytes(),
                Some(&header(t - 300, SECRET, BODY)),
                SECRET,
                now
            ),
            Ok(())
        );
        for (h, err) in [
            (header(t, "whsec_other", BODY), SignatureError::Mismatch),
            (header(t, SECRET, "{}"), SignatureError::Mismatch),
            (header(t - 301, SECRET, BODY), SignatureError::Stale),
            (header(t + 301, SECRET, BODY), SignatureError::Stale),
            (format!("t={t}"), SignatureError::Mismatch),
            ("garbage".to_owned(), SignatureError::Mismatch),
        ] {
            assert_eq!(
                verify(BODY.as_bytes(), Some(&h), SECRET, now),
                Err(err),
                "{h}"
            );
        }
        assert_eq!(
            verify(BODY.as_bytes(), None, SECRET, now),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(&[0xff, 0xfe], Some(&header(t, SECRET, BODY)), SECRET, now),
            Err(SignatureError::NotText)
        );
    }

    #[test]
    fn any_of_several_v1_values_may_match_during_a_secret_rotation() {
        let now = at("2026-11-26T12:00:00Z");
        let good = header(now.timestamp(), SECRET, BODY);
        let v1 = good.split(",v1=").nth(1).unwrap_or_default();
        let rotated = format!("t={},v1={},v1={v1}", now.timestamp(), "ab".repeat(32));
        assert_eq!(verify(BODY.as_bytes(), Some(&rotated), SECRET, now), Ok(()));
    }
}
