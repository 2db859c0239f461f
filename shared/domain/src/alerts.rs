//! Usage alerts: what a user asked to be told, and how. The settings are checked here; what fires
//! and when is decided with the usage it reports.

use crate::net::is_public;
use crate::DomainError;
use serde::{Deserialize, Serialize};

/// At most this many thresholds.
pub const MAX_THRESHOLDS: usize = 3;

/// How a user hears of an alert, and of what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertSettings {
    /// Percentages of a quota (1..=100), distinct, ascending.
    pub thresholds: Vec<u8>,
    pub channels: Channels,
    /// Whether to hear when the month's pace would spend the allowance early.
    pub pace: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channels {
    pub email: bool,
    /// An https URL on the public internet, or none.
    pub webhook_url: Option<String>,
}

impl Default for AlertSettings {
    /// A user who never set them: 80 % and 100 %, by email, with the pace.
    fn default() -> Self {
        Self {
            thresholds: vec![80, 100],
            channels: Channels {
                email: true,
                webhook_url: None,
            },
            pace: true,
        }
    }
}

/// The settings as a request states them, before they are checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSettingsRequest {
    pub thresholds: Vec<i64>,
    pub channels: ChannelsRequest,
    pub pace: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelsRequest {
    pub email: bool,
    pub webhook_url: Option<String>,
}

impl AlertSettingsRequest {
    /// The settings, or the field at fault: 1 to 3 distinct thresholds in 1..=100 (kept ascending),
    /// and a webhook only to an https URL without credentials whose host is not local or private.
    pub fn check(self) -> Result<AlertSettings, DomainError> {
        let mut thresholds = Vec::with_capacity(self.thresholds.len());
        for t in &self.thresholds {
            match u8::try_from(*t) {
                Ok(t) if (1..=100).contains(&t) => thresholds.push(t),
                _ => return Err(DomainError::new("thresholds", "each must be 1 to 100")),
            }
        }
        thresholds.sort_unstable();
        thresholds.dedup();
        if thresholds.len() != self.thresholds.len() {
            return Err(DomainError::new("thresholds", "must be distinct"));
        }
        if thresholds.is_empty() || thresholds.len() > MAX_THRESHOLDS {
            return Err(DomainError::new(
                "thresholds",
                format!("1 to {MAX_THRESHOLDS} of them"),
            ));
        }
        let webhook_url = match self.channels.webhook_url {
            Some(raw) => Some(webhook_url(&raw)?),
            None => None,
        };
        Ok(AlertSettings {
            thresholds,
            channels: Channels {
                email: self.channels.email,
                webhook_url,
            },
            pace: self.pace,
        })
    }
}

/// The longest webhook URL kept.
const MAX_URL: usize = 2048;

/// `raw` as a webhook target: https, no user or password, a host that is a public address or a name
/// that is not local. A name is resolved again when an alert is delivered, and a private answer
/// refused then.
fn webhook_url(raw: &str) -> Result<String, DomainError> {
    let bad = |why: &str| DomainError::new("channels.webhook_url", why.to_owned());
    if raw.len() > MAX_URL {
        return Err(bad("at most 2048 characters"));
    }
    let url = url::Url::parse(raw).map_err(|_| bad("not a URL"))?;
    if url.scheme() != "https" {
        return Err(bad("must be https"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry a user or password"));
    }
    let public = match url.host() {
        Some(url::Host::Ipv4(ip)) => is_public(ip.into()),
        Some(url::Host::Ipv6(ip)) => is_public(ip.into()),
        Some(url::Host::Domain(name)) => !local_name(name),
        None => false,
    };
    if !public {
        return Err(bad("must name a public host, not a local or private one"));
    }
    Ok(url.to_string())
}

/// Names that are local by definition (RFC 6761, RFC 6762) or only inside a network.
fn local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    !name.contains('.')
        || [
            "localhost",
            "local",
            "internal",
            "lan",
            "home.arpa",
            "intranet",
        ]
        .iter()
        .any(|suffix| name == *suffix || name.ends_with(&format!(".{suffix}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(thresholds: &[i64], webhook: Option<&str>) -> AlertSettingsRequest {
        AlertSettingsRequest {
            thresholds: thresholds.to_vec(),
            channels: ChannelsRequest {
                email: true,
                webhook_url: webhook.map(str::to_owned),
            },
            pace: false,
        }
    }

    #[test]
    fn one_to_three_distinct_thresholds_in_1_to_100_kept_ascending() {
        assert_eq!(
            request(&[100, 50], None).check().unwrap().thresholds,
            [50, 100]
        );
        assert_eq!(request(&[1], None).check().unwrap().thresholds, [1]);
        for bad in [
            &[][..],
            &[0],
            &[101],
            &[-5],
            &[80, 80],
            &[10, 20, 30, 40],
            &[300],
        ] {
            assert_eq!(
                request(bad, None).check().unwrap_err().field,
                "thresholds",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_webhook_is_https_to_a_public_host_without_credentials() {
        let ok = request(&[80], Some("https://hooks.example.com/son1k?x=1"))
            .check()
            .unwrap();
        assert_eq!(
            ok.channels.webhook_url.as_deref(),
            Some("https://hooks.example.com/son1k?x=1")
        );
        assert!(request(&[80], Some("https://93.184.216.34/hook"))
            .check()
            .is_ok());
        for bad in [
            "http://hooks.example.com/",
            "https://user:pw@hooks.example.com/",
            "https://user@hooks.example.com/",
            "https://127.0.0.1/",
            "https://10.1.2.3/",
            "https://192.168.0.10:8443/",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/",
            "https://[fd00::1]/",
            "https://localhost/",
            "https://api.localhost/",
            "https://printer.local/",
            "https://intranet/",
            "https://db.internal/",
            "ftp://hooks.example.com/",
            "not a url",
        ] {
            assert_eq!(
                request(&[80], Some(bad)).check().unwrap_err().field,
                "channels.webhook_url",
                "{bad}"
            );
        }
    }

    #[test]
    fn the_defaults_are_80_and_100_by_email_with_the_pace() {
        let d = AlertSettings::default();
        assert_eq!(d.thresholds, [80, 100]);
        assert!(d.channels.email && d.pace && d.channels.webhook_url.is_none());
    }
}
