//! The route table of the HTTP API: which function serves which method and path, and which routes
//! are public. The local API routes by it; the fallback function tells 404 from 405 by it; tests
//! check `template.yaml` against it.

/// One route: `path` is an API Gateway route template (`{name}` matches one path segment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    /// The function crate (and binary) that serves it.
    pub function: &'static str,
    /// Public routes need no token; every other route does.
    pub public: bool,
}

pub const ROUTES: &[Route] = &[
    Route {
        method: "GET",
        path: "/health",
        function: "health",
        public: true,
    },
    Route {
        method: "GET",
        path: "/api/tiers",
        function: "tiers-list",
        public: true,
    },
    Route {
        method: "GET",
        path: "/api/tiers/limits/{user_id}",
        function: "tiers-limits",
        public: false,
    },
    Route {
        method: "POST",
        path: "/api/tiers/record-generation",
        function: "record-generation",
        public: false,
    },
    Route {
        method: "POST",
        path: "/api/tiers/checkout",
        function: "checkout",
        public: false,
    },
    Route {
        method: "POST",
        path: "/api/tiers/portal",
        function: "portal",
        public: false,
    },
    // Authenticated by Stripe's signature, which the function checks itself.
    Route {
        method: "POST",
        path: "/api/tiers/webhook",
        function: "stripe-webhook",
        public: true,
    },
    Route {
        method: "GET",
        path: "/api/community/pool",
        function: "pool-list",
        public: true,
    },
    Route {
        method: "POST",
        path: "/api/community/pool/claim",
        function: "pool-claim",
        public: false,
    },
    Route {
        method: "POST",
        path: "/api/community/pool/{id}/play",
        function: "pool-play",
        public: false,
    },
    Route {
        method: "POST",
        path: "/api/community/pool/like/{id}",
        function: "pool-like",
        public: false,
    },
    Route {
        method: "DELETE",
        path: "/api/community/pool/like/{id}",
        function: "pool-like",
        public: false,
    },
    Route {
        method: "POST",
        path: "/api/community/contribute",
        function: "pool-contribute",
        public: false,
    },
    Route {
        method: "GET",
        path: "/api/community/ranking",
        function: "ranking",
        public: true,
    },
    Route {
        method: "POST",
        path: "/api/generations/{generation_id}/upload-url",
        function: "upload-url",
        public: false,
    },
    Route {
        method: "GET",
        path: "/api/generations/{generation_id}/audio",
        function: "audio-get",
        public: false,
    },
    Route {
        method: "PUT",
        path: "/api/admin/users/{user_id}/tier",
        function: "admin-tier",
        public: false,
    },
    Route {
        method: "PUT",
        path: "/api/admin/users/{user_id}/hold",
        function: "admin-tier",
        public: false,
    },
    Route {
        method: "DELETE",
        path: "/api/me",
        function: "account",
        public: false,
    },
    Route {
        method: "POST",
        path: "/api/me/exports",
        function: "account",
        public: false,
    },
    Route {
        method: "GET",
        path: "/api/me/exports/{export_id}",
        function: "account",
        public: false,
    },
    // The receipt of a deletion, by its id: the deleted account's tokens no longer work.
    Route {
        method: "GET",
        path: "/api/me/deletion",
        function: "account",
        public: true,
    },
    Route {
        method: "GET",
        path: "/api/admin/audit",
        function: "admin-audit",
        public: false,
    },
    Route {
        method: "GET",
        path: "/api/admin/audit/verify",
        function: "admin-audit",
        public: false,
    },
    Route {
        method: "GET",
        path: "/api/analytics/summary",
        function: "analytics-summary",
        public: false,
    },
    Route {
        method: "POST",
        path: "/api/generations",
        function: "generation-submit",
        public: false,
    },
    Route {
        method: "GET",
        path: "/api/generations/{generation_id}",
        function: "generation-status",
        public: false,
    },
    Route {
        method: "POST",
        path: "/api/lyrics",
        function: "lyrics-create",
        public: false,
    },
    Route {
        method: "GET",
        path: "/api/lyrics",
        function: "lyrics-list",
        public: false,
    },
    Route {
        method: "GET",
        path: "/api/lyrics/{lyrics_id}",
        function: "lyrics-get",
        public: false,
    },
    Route {
        method: "PUT",
        path: "/api/lyrics/{lyrics_id}",
        function: "lyrics-update",
        public: false,
    },
    Route {
        method: "GET",
        path: "/api/tiers/preview",
        function: "tiers-preview",
        public: false,
    },
    Route {
        method: "GET",
        path: "/api/me/alerts",
        function: "alerts-list",
        public: false,
    },
    Route {
        method: "GET",
        path: "/api/me/alerts/settings",
        function: "alert-settings",
        public: false,
    },
    Route {
        method: "PUT",
        path: "/api/me/alerts/settings",
        function: "alert-settings",
        public: false,
    },
    Route {
        method: "POST",
        path: "/api/me/alerts/webhook-secret",
        function: "alert-settings",
        public: false,
    },
    Route {
        method: "POST",
        path: "/api/pixel/chat",
        function: "pixel-chat",
        public: false,
    },
    Route {
        method: "POST",
        path: "/api/voices",
        function: "voices",
        public: false,
    },
    Route {
        method: "GET",
        path: "/api/voices",
        function: "voices",
        public: false,
    },
    Route {
        method: "GET",
        path: "/api/voices/{voice_id}",
        function: "voices",
        public: false,
    },
    Route {
        method: "POST",
        path: "/api/voices/{voice_id}/submit",
        function: "voices",
        public: false,
    },
    Route {
        method: "DELETE",
        path: "/api/voices/{voice_id}",
        function: "voice-delete",
        public: false,
    },
    Route {
        method: "GET",
        path: "/api/credits",
        function: "credits",
        public: false,
    },
    Route {
        method: "GET",
        path: "/api/credits/ledger",
        function: "credits",
        public: false,
    },
    Route {
        method: "GET",
        path: "/api/credits/packs",
        function: "tiers-list",
        public: true,
    },
    Route {
        method: "POST",
        path: "/api/credits/checkout",
        function: "checkout",
        public: false,
    },
    Route {
        method: "POST",
        path: "/api/admin/users/{user_id}/credits",
        function: "credits",
        public: false,
    },
];

/// What the route table says about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteMatch {
    /// The route, and its path parameters in template order.
    Found(&'static Route, Vec<(String, String)>),
    /// The path exists, not with this method; the methods it has.
    WrongMethod(Vec<&'static str>),
    NotFound,
}

/// Matches a request path (without query) against the route table.
pub fn match_route(method: &str, path: &str) -> RouteMatch {
    let mut allowed = Vec::new();
    for route in ROUTES {
        if let Some(params) = match_path(route.path, path) {
            if route.method.eq_ignore_ascii_case(method) {
                return RouteMatch::Found(route, params);
            }
            allowed.push(route.method);
        }
    }
    if allowed.is_empty() {
        RouteMatch::NotFound
    } else {
        RouteMatch::WrongMethod(allowed)
    }
}

/// `Some(params)` when `path` fits `template`.
pub fn match_path(template: &str, path: &str) -> Option<Vec<(String, String)>> {
    let mut want = template.split('/');
    let mut got = path.split('/');
    let mut params = Vec::new();
    loop {
        match (want.next(), got.next()) {
            (None, None) => return Some(params),
            (Some(w), Some(g)) => {
                if let Some(name) = w.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
                    if g.is_empty() {
                        return None;
                    }
                    params.push((name.to_owned(), g.to_owned()));
                } else if w != g {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_bind_one_segment_per_parameter() {
        assert_eq!(
            match_path("/api/tiers/limits/{user_id}", "/api/tiers/limits/me"),
            Some(vec![("user_id".into(), "me".into())])
        );
        assert_eq!(
            match_path("/api/tiers/limits/{user_id}", "/api/tiers/limits/"),
            None
        );
        assert_eq!(
            match_path("/api/tiers/limits/{user_id}", "/api/tiers/limits/a/b"),
            None
        );
        assert_eq!(match_path("/api/tiers", "/api/tiers/"), None);
    }

    #[test]
    fn known_path_with_another_method_is_wrong_method() {
        assert_eq!(
            match_route("DELETE", "/api/tiers"),
            RouteMatch::WrongMethod(vec!["GET"])
        );
        assert_eq!(match_route("GET", "/api/nothing"), RouteMatch::NotFound);
        assert!(
            matches!(match_route("GET", "/health"), RouteMatch::Found(r, _) if r.function == "health")
        );
    }
}
