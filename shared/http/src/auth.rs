//! The caller, read from the claims API Gateway's JWT authorizer has already verified.
//!
//! Claims arrive as strings, serialised the way the HTTP API JWT authorizer does it: an array claim
//! such as `cognito:groups` is one bracketed, space-separated string (`"[admin editors]"`), and a user
//! in no group has no such claim. A JSON array (`["admin"]`) is tolerated too.

use crate::error::ApiError;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
pub use son1k_app::caller::Caller;
use son1k_domain::ids::UserId;
use std::collections::HashMap;

/// Reads the caller from `requestContext.authorizer.jwt.claims`; no verified `sub` is a 401.
pub fn caller(req: &Request) -> Result<Caller, ApiError> {
    let claims = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .map(|jwt| &jwt.claims),
        _ => None,
    };
    claims
        .and_then(from_claims)
        .ok_or_else(ApiError::unauthorized)
}

/// Builds the caller from authorizer claims; `None` when there is no usable `sub`.
pub fn from_claims(claims: &HashMap<String, String>) -> Option<Caller> {
    let id = UserId::parse(claims.get("sub")?).ok()?;
    let text = |name: &str| {
        claims
            .get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    Some(Caller {
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

/// Parses a `{user_id}` path segment (400 when malformed); `me` is the caller. No permission check.
pub fn target_id(caller: &Caller, raw: &str) -> Result<UserId, ApiError> {
    if raw == "me" {
        return Ok(caller.id.clone());
    }
    Ok(UserId::parse(raw)?)
}

/// Resolves a `{user_id}` path segment: `me` is the caller. Another user's id is allowed only to
/// admins (403 otherwise). Returns the id the request acts on.
pub fn resolve_target(caller: &Caller, raw: &str) -> Result<UserId, ApiError> {
    let target = target_id(caller, raw)?;
    if target != caller.id && !caller.is_admin() {
        return Err(ApiError::forbidden(
            "only admins may act on another user's data",
        ));
    }
    Ok(target)
}

/// 403 unless the caller is an admin.
pub fn require_admin(caller: &Caller) -> Result<(), ApiError> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden("this route is for admins only"))
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
        let admin = from_claims(&claims(&[
            ("sub", "u1"),
            ("cognito:groups", "[editors admin]"),
        ]));
        assert!(admin.is_some_and(|c| c.is_admin()));
        let nobody = from_claims(&claims(&[("sub", "u1")]));
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
            let caller = from_claims(&claims(&[("sub", "u1"), ("cognito:groups", lookalike)]));
            assert!(caller.is_some_and(|c| !c.is_admin()), "{lookalike}");
        }
    }

    #[test]
    fn a_missing_or_malformed_sub_is_no_caller() {
        assert_eq!(from_claims(&claims(&[("email", "a@b.c")])), None);
        assert_eq!(from_claims(&claims(&[("sub", "USER#x")])), None);
    }

    #[test]
    fn me_resolves_to_the_caller_and_others_need_admin() {
        let user = from_claims(&claims(&[("sub", "u1")])).unwrap_or_else(|| unreachable!());
        assert_eq!(
            resolve_target(&user, "me").map(|id| id.to_string()),
            Ok("u1".into())
        );
        assert_eq!(
            resolve_target(&user, "u1").map(|id| id.to_string()),
            Ok("u1".into())
        );
        assert_eq!(
            resolve_target(&user, "u2").map_err(|e| e.status().as_u16()),
            Err(403)
        );
        assert_eq!(
            resolve_target(&user, "bad id").map_err(|e| e.status().as_u16()),
            Err(400)
        );
    }
}
