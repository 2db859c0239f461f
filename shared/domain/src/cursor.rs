//! Opaque pagination cursors: the store's position, signed with HMAC-SHA256 and bound to the query
//! it continues (sort and filter), so a tampered cursor or one from another query is refused.

use super::DomainError;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

fn mac(secret: &str, scope: &str, payload: &[u8]) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(scope.as_bytes());
    mac.update(b"\n");
    mac.update(payload);
    Some(mac)
}

/// `hex(payload).hex(mac)` for `payload` within `scope`.
pub fn seal(secret: &str, scope: &str, payload: &[u8]) -> String {
    let tag = mac(secret, scope, payload)
        .map(|m| hex::encode(m.finalize().into_bytes()))
        .unwrap_or_default();
    format!("{}.{tag}", hex::encode(payload))
}

/// The payload of a cursor sealed for `scope`; a 400 naming `cursor` for anything else.
pub fn open(secret: &str, scope: &str, cursor: &str) -> Result<Vec<u8>, DomainError> {
    let refuse = || DomainError::new("cursor", "is not a cursor this listing gave out");
    let (payload, tag) = cursor.split_once('.').ok_or_else(refuse)?;
    let payload = hex::decode(payload).map_err(|_| refuse())?;
    let tag = hex::decode(tag).map_err(|_| refuse())?;
    mac(secret, scope, &payload)
        .ok_or_else(refuse)?
        .verify_slice(&tag)
        .map_err(|_| refuse())?;
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_opens_only_unchanged_and_in_its_own_scope() {
        let cursor = seal("k", "recent|", b"{\"x\":1}");
        assert_eq!(
            open("k", "recent|", &cursor).as_deref(),
            Ok(&b"{\"x\":1}"[..])
        );
        assert!(open("k", "popular|", &cursor).is_err(), "another query");
        assert!(open("other", "recent|", &cursor).is_err(), "another key");
        let tampered = cursor.replacen('7', "8", 1);
        assert!(open("k", "recent|", &tampered).is_err());
        for junk in ["", ".", "zz.zz", "abc"] {
            assert_eq!(open("k", "recent|", junk).unwrap_err().field, "cursor");
        }
    }
}
