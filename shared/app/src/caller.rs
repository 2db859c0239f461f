//! Who a use case acts for: the authenticated user, as the HTTP edge read them from a verified token
//! (`son1k_http::auth`). Only what the use cases need: the id, the profile a first request stores,
//! and whether the user is an admin.

use chrono::{DateTime, Utc};
use son1k_domain::ids::UserId;
use son1k_store::users::UserRecord;

/// The Cognito group whose members are admins.
pub const ADMIN_GROUP: &str = "admin";

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
    /// The user record a first request creates: FREE, with the profile the token's claims give (the
    /// email only when verified: alert mail goes to it).
    pub fn new_user(&self, now: DateTime<Utc>) -> UserRecord {
        UserRecord::new(
            self.id.clone(),
            self.verified_email().map(str::to_owned),
            self.username.clone(),
            now,
        )
    }

    /// The email to give a third party (Stripe): only a verified one, so nobody can have receipts
    /// and account mail sent to an address they do not own.
    pub fn verified_email(&self) -> Option<&str> {
        self.email.as_deref().filter(|_| self.email_verified)
    }

    pub fn is_admin(&self) -> bool {
        self.groups.iter().any(|g| g == ADMIN_GROUP)
    }
}
