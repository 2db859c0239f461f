//! Identifiers parsed at the boundary: once built, an id is known to be well formed.

use super::DomainError;
use serde::{Deserialize, Serialize};

/// `^[A-Za-z0-9_-]{1,64}$`: fits Cognito subs (UUIDs), local ids and client-chosen ids, and is safe
/// inside DynamoDB keys and S3 object keys.
fn check(field: &'static str, raw: &str) -> Result<(), DomainError> {
    if raw.is_empty() || raw.len() > 64 {
        return Err(DomainError::new(field, "must be 1 to 64 characters"));
    }
    if !raw
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(DomainError::new(
            field,
            "may contain only letters, digits, '_' and '-'",
        ));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, DomainError> {
                check($field, raw)?;
                Ok(Self(raw.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = DomainError;
            fn try_from(raw: String) -> Result<Self, DomainError> {
                check($field, &raw)?;
                Ok(Self(raw))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A user: the `sub` claim of the caller's token.
    UserId,
    "user_id"
);
id_type!(
    /// A generation, chosen by the client; it is also the idempotency key of record-generation.
    GenerationId,
    "generation_id"
);
id_type!(
    /// A lyrics draft: a ULID made by the server, so newer drafts sort after older ones.
    LyricsId,
    "lyrics_id"
);
id_type!(
    /// A conversation with Pixel: a ULID made by the server.
    ConversationId,
    "conversation_id"
);
id_type!(
    /// A cloned voice: a ULID made by the server.
    VoiceId,
    "voice_id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_cognito_subs_and_local_ids() {
        for ok in [
            "test_user_1",
            "4f0c1a2b-9e8d-4c7b-a6f5-0123456789ab",
            "a",
            &"x".repeat(64),
        ] {
            assert_eq!(
                UserId::parse(ok).map(|id| id.to_string()),
                Ok(ok.to_owned())
            );
        }
    }

    #[test]
    fn rejects_empty_long_and_unsafe_ids_naming_the_field() {
        for bad in ["", &"x".repeat(65), "a b", "USER#x", "../etc", "é", "a/b"] {
            let err = GenerationId::parse(bad).err();
            assert_eq!(
                err.map(|e| e.field),
                Some("generation_id"),
                "{bad:?} must be rejected"
            );
        }
    }

    #[test]
    fn bad_ids_cannot_be_deserialised() {
        assert!(serde_json::from_str::<UserId>("\"a b\"").is_err());
        assert!(serde_json::from_str::<UserId>("\"ok-id\"").is_ok());
    }
}
