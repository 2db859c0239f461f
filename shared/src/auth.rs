//! The caller, read from the claims API Gateway's JWT authorizer has already verified.
//!
//! Claims arrive as strings, serialised the way the HTTP API JWT authorizer does it: an array claim
//! such as `cognito:groups` is one bracketed, space-separated string (`"[admin editors]"`), and a user
//! in no group has no such claim. A JSON array (`["admin"]`) is tolerated too.

use crate::domain::ids::UserId;
use crate::error::ApiError;
use crate::store::users::UserRecord;
use chrono::{DateTime, Utc};
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use std::collections::HashMap;

pub const ADMIN_GROUP: &str = "admin";

/// The authenticated user making the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub id: UserId,
    pub email: Option<String>,
    /// The token's `email_verified` is `true`: only such an email is given to Stripe.
    pub email_verified: bool,
    pub username: Option<String>,
    pub groups: Vec<String>,
}

impl Caller {
    /// The user record a first request creates: FREE, with the profile the token's claims give.
    pub fn new_user(&self, now: DateTime<Utc>) -> UserRecord {
        UserRecord::new(
            self.id.clone(),
            self.email.clone(),
            self.username.clone(),
            now,
        )
    }

    /// Reads the caller from `requestContext.authorizer.jwt.claims`; no verified `sub` is a 401.
    pub fn from_request(req: &Request) -> Result<Self, ApiError> {
        let claims = match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => ctx
                .authorizer
                .as_ref()
                .and_then(|a| a.jwt.as_ref())
                .map(|jwt| &jwt.claims),
            _ => None,
        };
        claims
            .and_then(Self::from_claims)
            .ok_or_else(ApiError::unauthorized)
    }

    /// Builds the caller from authorizer claims; `None` when there is no usable `sub`.
    pub fn from_claims(claims: &HashMap<String, String>) -> Option<Self> {
        let id = UserId::parse(claims.get("sub")?).ok()?;
        let text = |name: &str| {
            claims
                .get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        Some(Self {
            id,
            email: text("email"),
            email_verified: text("email_verified").is_some_and(|v| v == "true"),
            username: text("cognito:username").or_else(|| text("username")),
            groups: claims
                .get("cognito:groups")
                .map(|g| parse_groups(g))
                .unwrap_or_default(),
        })
    }

    /// The email to give a third party (Stripe): only a verified one, so nobody can have receipts
    /// and account mail sent to an address they do not own.
    pub fn verified_email(&self) -> Option<&str> {
        self.email.as_deref().filter(|_| self.email_verified)
    }

    pub fn is_admin(&self) -> bool {
        self.groups.iter().any(|g| g == ADMIN_GROUP)
    }

    /// Parses a `{user_id}` path segment (400 when malformed); `me` is the caller. No permission check.
    pub fn target_id(&self, raw: &str) -> Result<UserId, ApiError> {
        if raw == "me" {
            return Ok(self.id.clone());
        }
        Ok(UserId::parse(raw)?)
    }

    /// Resolves a `{user_id}` path segment: `me` is the caller. Another user's id is allowed only to
    /// admins (403 otherwise). Returns the id the request acts on.
    pub fn resolve_target(&self, raw: &str) -> Result<UserId, ApiError> {
        let target = self.target_id(raw)?;
        if target != self.id && !self.is_admin() {
            return Err(ApiError::forbidden(
                "only admins may act on another user's data",
            ));
        }
        Ok(target)
    }

    /// 403 unless the caller is an admin.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden("this route is for admins only"))
        }
    }
}

/// Parses a groups claim: `[a b]` as API Gateway serialises arrays, `["a","b"]` as JSON, or a bare name.
/// Names are taken whole: Cognito group names hold no whitespace but may hold commas and quotes, so
/// `[x,admin]` is the one group `x,admin`, not `admin`.
pub fn parse_groups(raw: &str) -> Vec<String> {
    let raw = raw.trim();
    if let Ok(list) = serde_json::from_str::<Vec<String>>(raw) {
        return list
            .into_iter()
            .map(|g| g.trim().to_owned())
            .filter(|g| !g.is_empty())
            .collect();
    }
    let inner = raw
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(raw);
    inner.split_whitespace().map(str::to_owned).collect()
}

/// Serialises a list claim the way API Gateway's JWT authorizer hands it to a Lambda: `[a b]`.
pub fn format_list_claim(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn groups_parse_in_the_api_gateway_format_and_as_json() {
        assert_eq!(parse_groups("[admin editors]"), vec!["admin", "editors"]);
        assert_eq!(parse_groups("[admin]"), vec!["admin"]);
        assert_eq!(parse_groups("[]"), Vec::<String>::new());
        assert_eq!(
            parse_groups(r#"["admin","editors"]"#),
            vec!["admin", "editors"]
        );
        assert_eq!(parse_groups("admin"), vec!["admin"]);
        assert_eq!(
            parse_groups(&format_list_claim(&["a".into(), "admin".into()])),
            vec!["a", "admin"]
        );
    }

    #[test]
    fn admin_comes_only_from_the_admin_group() {
        let admin = Caller::from_claims(&claims(&[
            ("sub", "u1"),
            ("cognito:groups", "[editors admin]"),
        ]));
        assert!(admin.is_some_and(|c| c.is_admin()));
        let nobody = Caller::from_claims(&claims(&[("sub", "u1")]));
        assert!(nobody.is_some_and(|c| !c.is_admin()));
        for lookalike in [
            "[administrators]",
            "[x,admin]",
            "[admin,x]",
            "[\"admin\"x]",
            "[Admin]",
            "[admin-x]",
            "x,admin",
        ] {
            let caller =
                Caller::from_claims(&claims(&[("sub", "u1"), ("cognito:groups", lookalike)]));
            assert!(caller.is_some_and(|c| !c.is_admin()), "{lookalike}");
        }
    }

    #[test]
    fn a_missing_or_malformed_sub_is_no_caller() {
        assert_eq!(Caller::from_claims(&claims(&[("email", "a@b.c")])), None);
        assert_eq!(Caller::from_claims(&claims(&[("sub", "USER#x")])), None);
    }

    #[test]
    fn me_resolves_to_the_caller_and_others_need_admin() {
        let user = Caller::from_claims(&claims(&[("sub", "u1")])).unwrap_or_else(|| unreachable!());
        assert_eq!(
            user.resolve_target("me").map(|id| id.to_string()),
            Ok("u1".into())
        );
        assert_eq!(
            user.resolve_target("u1").map(|id| id.to_string()),
            Ok("u1".into())
        );
        assert_eq!(
            user.resolve_target("u2").map_err(|e| e.status().as_u16()),
            Err(403)
        );
        assert_eq!(
            user.resolve_target("bad id")
                .map_err(|e| e.status().as_u16()),
            Err(400)
        );
    }
}
