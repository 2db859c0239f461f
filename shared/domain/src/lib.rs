//! Son1kVers3's business rules and types, pure: no I/O, no clock of their own, no logging. Every
//! rule here is tested at any instant; the crates above (store, app, http) depend on this one, never
//! the other way.

pub mod account;
pub mod alerts;
pub mod analytics;
pub mod assist;
pub mod audit;
pub mod billing;
pub mod clock;
pub mod credits;
pub mod cursor;
pub mod entitlement;
pub mod generation;
pub mod ids;
pub mod jobs;
pub mod limits;
pub mod lyrics;
pub mod metering;
pub mod net;
pub mod period;
pub mod pixel;
pub mod pool;
pub mod providers;
pub mod rate;
pub mod storage;
pub mod tiers;
pub mod voices;

/// A value from outside that does not fit the domain. `field` names what was wrong for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct DomainError {
    pub field: &'static str,
    pub reason: String,
}

impl DomainError {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// Whether `c` is white space as the contract's text patterns count it (`"pattern": "\\S"`, "not
/// only spaces"): ECMAScript's `\s`. Rust's `char::is_whitespace` differs (it counts U+0085 and not
/// U+FEFF), so trimming with it would turn a text the contract accepts into an empty one.
pub fn is_contract_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

/// `text` without the contract's white space at either end.
pub fn trim_text(text: &str) -> &str {
    text.trim_matches(is_contract_space)
}

#[cfg(test)]
mod text_tests {
    use super::trim_text;

    #[test]
    fn text_is_trimmed_of_what_the_contract_calls_white_space_only() {
        assert_eq!(trim_text(" \t\u{a0}rain\u{3000}\u{feff}\n"), "rain");
        // Not white space to the contract's `\S` (a C1 control): the text is not empty.
        assert_eq!(trim_text("\u{85}"), "\u{85}");
        assert_eq!(trim_text("\u{2028} \u{2029}"), "");
    }
}
