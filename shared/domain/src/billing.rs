//! Stripe webhook events, read tolerantly, and the pure decision of what a subscription event changes
//! on a user. Only the fields we use are read (Stripe adds fields between API versions); the tier comes
//! from the price id through the configured price table, never from metadata.

use super::analytics::Event;
use super::entitlement::{Subscription, SubscriptionStatus, TierSource};
use super::tiers::Tier;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// Which Stripe price sells which tier: monthly (`STRIPE_PRICE_CREATOR|PRO|STUDIO`) and yearly
/// (`STRIPE_PRICE_<TIER>_ANNUAL`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PriceTable {
    pub creator: Option<String>,
    pub pro: Option<String>,
    pub studio: Option<String>,
    pub creator_annual: Option<String>,
    pub pro_annual: Option<String>,
    pub studio_annual: Option<String>,
}

/// How often a subscription is billed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    #[default]
    Month,
    Year,
}

impl PriceTable {
    /// The monthly price that sells `tier`; `None` for FREE or an unconfigured price.
    pub fn price_of(&self, tier: Tier) -> Option<&str> {
        self.price_for(tier, Interval::Month)
    }

    /// The price that sells `tier` billed every `interval`.
    pub fn price_for(&self, tier: Tier, interval: Interval) -> Option<&str> {
        match (tier, interval) {
            (Tier::Free, _) => None,
            (Tier::Creator, Interval::Month) => self.creator.as_deref(),
            (Tier::Pro, Interval::Month) => self.pro.as_deref(),
            (Tier::Studio, Interval::Month) => self.studio.as_deref(),
            (Tier::Creator, Interval::Year) => self.creator_annual.as_deref(),
            (Tier::Pro, Interval::Year) => self.pro_annual.as_deref(),
            (Tier::Studio, Interval::Year) => self.studio_annual.as_deref(),
        }
    }

    /// The tier a price sells, monthly or yearly; `None` for a price we do not sell.
    pub fn tier_of(&self, price_id: &str) -> Option<Tier> {
        [Tier::Creator, Tier::Pro, Tier::Studio]
            .into_iter()
            .find(|tier| {
                [Interval::Month, Interval::Year]
                    .into_iter()
                    .any(|interval| self.price_for(*tier, interval) == Some(price_id))
            })
    }
}

/// How many trial days a first checkout of each tier offers (`STRIPE_TRIAL_DAYS_<TIER>`; none when
/// unset).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrialDays {
    pub creator: Option<u32>,
    pub pro: Option<u32>,
    pub studio: Option<u32>,
}

impl TrialDays {
    pub fn of(&self, tier: Tier) -> Option<u32> {
        match tier {
            Tier::Free => None,
            Tier::Creator => self.creator,
            Tier::Pro => self.pro,
            Tier::Studio => self.studio,
        }
    }
}

/// A verified webhook event: the envelope fields we use and the raw object.
#[derive(Debug, Clone, PartialEq)]
pub struct StripeEvent {
    pub id: String,
    pub kind: String,
    pub created: DateTime<Utc>,
    pub object: Value,
}

/// Why a verified body is not a usable event: the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct EventError {
    pub field: &'static str,
    pub problem: &'static str,
}

fn bad(field: &'static str, problem: &'static str) -> EventError {
    EventError { field, problem }
}

impl StripeEvent {
    /// Reads the envelope of a Stripe event: `id`, `type`, `created` and `data.object` are required.
    pub fn parse(body: &[u8]) -> Result<Self, EventError> {
        let doc: Value =
            serde_json::from_slice(body).map_err(|_| bad("body", "is not a JSON document"))?;
        if !doc.is_object() {
            return Err(bad("body", "must be a JSON object (a Stripe event)"));
        }
        let text = |field: &'static str| {
            doc.get(field)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty() && s.len() <= 255)
                .map(str::to_owned)
                .ok_or(bad(field, "must be a non-empty string"))
        };
        let (id, kind) = (text("id")?, text("type")?);
        let created = doc
            .get("created")
            .and_then(timestamp)
            .ok_or(bad("created", "must be a Unix timestamp"))?;
        let object = doc
            .get("data")
            .and_then(|data| data.get("object"))
            .filter(|object| object.is_object())
            .cloned()
            .ok_or(bad("data.object", "must be an object"))?;
        Ok(Self {
            id,
            kind,
            created,
            object,
        })
    }

    /// What kind of change the event may carry.
    pub fn family(&self) -> EventFamily {
        match self.kind.as_str() {
            "customer.subscription.created" => EventFamily::Subscription(1),
            "customer.subscription.updated"
            | "customer.subscription.paused"
            | "customer.subscription.resumed" => EventFamily::Subscription(2),
            "customer.subscription.deleted" => EventFamily::Subscription(3),
            "checkout.session.completed" => EventFamily::CheckoutCompleted,
            "checkout.session.async_payment_succeeded" => EventFamily::AsyncPaymentSucceeded,
            "charge.refunded" => EventFamily::ChargeRefunded,
            "invoice.paid" | "invoice.payment_failed" => EventFamily::Invoice,
            _ => EventFamily::Other,
        }
    }

    /// The fence of this event: later events sort higher. `created` has one-second resolution, so
    /// inside one second the lifecycle order (created < updated < deleted) decides, then the id: a
    /// deletion in the same second as an update always wins.
    pub fn fence(&self) -> String {
        let rank = match self.family() {
            EventFamily::Subscription(rank) => rank,
            _ => 0,
        };
        format!("{:012}#{rank}#{}", self.created.timestamp().max(0), self.id)
    }
}

/// Whether an event of fence `fence` ties the applied fence: the same second and lifecycle rank,
/// another event. Stripe's `created` has one-second resolution, so the order of two such events
/// (two `customer.subscription.updated` of one second) is unknown: the subscription is read from
/// Stripe to decide (`settled_fence` is the fence of what it says).
pub fn ties(applied: Option<&str>, fence: &str) -> bool {
    let head = |f: &str| {
        f.rsplit_once('#')
            .map(|(head, id)| (head.to_owned(), id.to_owned()))
    };
    match (applied.and_then(head), head(fence)) {
        (Some((a, a_id)), Some((f, f_id))) => a == f && a_id != f_id,
        _ => false,
    }
}

/// The fence of the state read from Stripe to settle a tie at `fence`: after every event of that
/// second and rank (`~` sorts after any event id), before every later second.
pub fn settled_fence(fence: &str) -> String {
    match fence.rsplit_once('#') {
        Some((head, _)) => format!("{head}#~stripe"),
        None => fence.to_owned(),
    }
}

/// The event types we act on; everything else is acknowledged and ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFamily {
    /// `customer.subscription.*`, with its rank inside one second.
    Subscription(u8),
    CheckoutCompleted,
    /// A checkout paid by a delayed method (a bank debit) whose payment has now succeeded.
    AsyncPaymentSucceeded,
    /// A charge refunded, wholly or in part.
    ChargeRefunded,
    Invoice,
    Other,
}

fn timestamp(value: &Value) -> Option<DateTime<Utc>> {
    value
        .as_i64()
        .and_then(|secs| DateTime::from_timestamp(secs, 0))
}

/// A string field, or the `id` of an expanded object in its place (`customer` may be either).
fn id_of(value: Option<&Value>) -> Option<String> {
    let value = value?;
    value
        .as_str()
        .or_else(|| value.get("id").and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn period_of(value: &Value) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let start = value.get("current_period_start").and_then(timestamp)?;
    let end = value.get("current_period_end").and_then(timestamp)?;
    (start < end).then_some((start, end))
}

/// One item of a subscription: its price and, in newer API versions, its billing period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionItem {
    pub price_id: Option<String>,
    pub period: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// The subscription object of a `customer.subscription.*` event, as far as we use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionSnapshot {
    pub id: String,
    pub customer: Option<String>,
    pub status: SubscriptionStatus,
    pub items: Vec<SubscriptionItem>,
    /// `current_period_start/end` on the subscription itself (older API versions).
    pub period: Option<(DateTime<Utc>, DateTime<Utc>)>,
    pub cancel_at_period_end: bool,
    pub billing_cycle_anchor: Option<DateTime<Utc>>,
    /// `metadata.user_id`, set by our checkout: used to find the user, never for the tier.
    pub user_id: Option<String>,
}

impl SubscriptionSnapshot {
    /// Reads a subscription object; `id` and `status` are required.
    pub fn from_object(object: &Value) -> Result<Self, EventError> {
        let id = id_of(object.get("id")).ok_or(bad("data.object.id", "must be a string"))?;
        let status = object
            .get("status")
            .and_then(Value::as_str)
            .map(|s| serde_json::from_value(Value::from(s)).unwrap_or(SubscriptionStatus::Unknown))
            .ok_or(bad("data.object.status", "must be a string"))?;
        let items = object
            .pointer("/items/data")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .map(|item| SubscriptionItem {
                        price_id: id_of(item.get("price")).or_else(|| id_of(item.get("plan"))),
                        period: period_of(item),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            id,
            customer: id_of(object.get("customer")),
            status,
            items,
            period: period_of(object),
            cancel_at_period_end: object
                .get("cancel_at_period_end")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            billing_cycle_anchor: object.get("billing_cycle_anchor").and_then(timestamp),
            user_id: object
                .pointer("/metadata/user_id")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }

    /// The highest tier any item's price sells, with that item's price and period.
    fn priced(&self, prices: &PriceTable) -> Option<(Tier, &SubscriptionItem)> {
        self.items
            .iter()
            .filter_map(|item| {
                let tier = prices.tier_of(item.price_id.as_deref()?)?;
                Some((tier, item))
            })
            .max_by_key(|(tier, _)| *tier)
    }
}

/// The checkout session of a `checkout.session.*` event, as far as we use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutCompleted {
    /// The session's id: a pack bought through it becomes the block of this id.
    pub id: Option<String>,
    /// `client_reference_id`, else `metadata.user_id`.
    pub user_id: Option<String>,
    pub customer: Option<String>,
    /// `mode`: `payment` for a pack, `subscription` for a plan.
    pub mode: Option<String>,
    /// `payment_status`: `paid` once the money is in (`unpaid` while a delayed method settles).
    pub payment_status: Option<String>,
    pub payment_intent: Option<String>,
    /// `metadata.generations`, which our pack checkout wrote: what the user was sold.
    pub generations: Option<u32>,
    /// `metadata.pack`.
    pub pack: Option<String>,
}

impl CheckoutCompleted {
    pub fn from_object(object: &Value) -> Self {
        let text = |pointer: &str| {
            object
                .pointer(pointer)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let user_id = text("/client_reference_id").or_else(|| text("/metadata/user_id"));
        Self {
            id: id_of(object.get("id")),
            user_id,
            customer: id_of(object.get("customer")),
            mode: text("/mode"),
            payment_status: text("/payment_status"),
            payment_intent: id_of(object.get("payment_intent")),
            generations: text("/metadata/generations").and_then(|g| g.parse().ok()),
            pack: text("/metadata/pack"),
        }
    }

    /// Whether it sold a pack of credits (payment mode).
    pub fn is_pack(&self) -> bool {
        self.mode.as_deref() == Some("payment")
    }

    pub fn is_paid(&self) -> bool {
        self.payment_status.as_deref() == Some("paid")
    }
}

/// The charge of a `charge.refunded` event, as far as we use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRefunded {
    pub customer: Option<String>,
    /// The PaymentIntent it was made by: the one a pack's block remembers.
    pub payment_intent: Option<String>,
}

impl ChargeRefunded {
    pub fn from_object(object: &Value) -> Self {
        Self {
            customer: id_of(object.get("customer")),
            payment_intent: id_of(object.get("payment_intent")),
        }
    }
}

/// The billing state of a user that a subscription event is decided against.
#[derive(Debug, Clone, Copy)]
pub struct BillingState<'a> {
    pub tier: Tier,
    pub tier_source: TierSource,
    pub subscription: Option<&'a Subscription>,
    pub sub_fence: Option<&'a str>,
}

/// What a subscription event does to a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Apply(TierChange),
    Ignore(Ignored),
}

/// The new stored state: the tier, who set it, the subscription and the fence of the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierChange {
    pub tier: Tier,
    pub tier_source: TierSource,
    pub subscription: Subscription,
    pub fence: String,
}

/// Why an event changes nothing. Each is acknowledged (200): Stripe must not retry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// A newer event was already applied (or this very one).
    Stale,
    /// No item has a price we sell.
    UnknownPrice,
    /// Neither the subscription nor its priced item carries a billing period.
    NoPeriod,
    /// The subscription already ended (`canceled`, `incomplete_expired` are final in Stripe): a late
    /// event about it cannot bring it back.
    EndedForGood,
    /// Another subscription than the one in force ended; the one in force still keeps the tier.
    NotTheCurrentSubscription,
}

impl Ignored {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stale => "stale",
            Self::UnknownPrice => "unknown_price",
            Self::NoPeriod => "no_period",
            Self::EndedForGood => "ended_for_good",
            Self::NotTheCurrentSubscription => "not_the_current_subscription",
        }
    }
}

fn ended_for_good(status: SubscriptionStatus) -> bool {
    matches!(
        status,
        SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired
    )
}

/// Decides what the subscription in an event whose fence is `fence` does to a user in `state`.
pub fn decide(
    state: &BillingState<'_>,
    fence: &str,
    snapshot: &SubscriptionSnapshot,
    prices: &PriceTable,
) -> Decision {
    if state.sub_fence.is_some_and(|applied| applied >= fence) {
        return Decision::Ignore(Ignored::Stale);
    }
    let Some((tier, item)) = snapshot.priced(prices) else {
        return Decision::Ignore(Ignored::UnknownPrice);
    };
    let Some((start, end)) = snapshot.period.or(item.period) else {
        return Decision::Ignore(Ignored::NoPeriod);
    };
    let keeps = snapshot.status.keeps_paid_tier();
    if let Some(current) = state.subscription {
        if current.id == snapshot.id && ended_for_good(current.status) && keeps {
            return Decision::Ignore(Ignored::EndedForGood);
        }
        if current.id != snapshot.id && current.status.keeps_paid_tier() && !keeps {
            return Decision::Ignore(Ignored::NotTheCurrentSubscription);
        }
    }
    // An ending subscription takes away only a tier Stripe gave: an admin's grant stays.
    let (tier, tier_source) = match (keeps, state.tier_source) {
        (true, _) => (tier, TierSource::Stripe),
        (false, TierSource::Admin) => (state.tier, TierSource::Admin),
        (false, _) => (Tier::Free, TierSource::Stripe),
    };
    Decision::Apply(TierChange {
        tier,
        tier_source,
        subscription: Subscription {
            id: snapshot.id.clone(),
            status: snapshot.status,
            price_id: item.price_id.clone(),
            current_period_start: start,
            current_period_end: end,
            cancel_at_period_end: snapshot.cancel_at_period_end,
            billing_cycle_anchor: snapshot.billing_cycle_anchor,
        },
        fence: fence.to_owned(),
    })
}

/// The analytics event a stored subscription change makes, if any: `subscription_activated` when a
/// subscription starts keeping a paid tier (new, or back from a status that did not keep it),
/// `subscription_canceled` when one reaches `canceled`. Plan switches and renewals make none.
pub fn milestone(previous: Option<&Subscription>, next: &Subscription) -> Option<Event> {
    let same = previous.filter(|p| p.id == next.id);
    let kept = same.is_some_and(|p| p.status.keeps_paid_tier());
    let ended = same.is_some_and(|p| p.status == SubscriptionStatus::Canceled);
    if next.status.keeps_paid_tier() && !kept {
        Some(Event::SubscriptionActivated)
    } else if next.status == SubscriptionStatus::Canceled && !ended {
        Some(Event::SubscriptionCanceled)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prices() -> PriceTable {
        PriceTable {
            creator_annual: Some("price_creator_yearly".into()),
            creator: Some("price_creator".into()),
            pro: Some("price_pro".into()),
            studio: Some("price_studio".into()),
            ..PriceTable::default()
        }
    }

    fn event(kind: &str, created: i64, object: Value) -> StripeEvent {
        let body = json!({"id": format!("evt_{created}"), "type": kind, "created": created,
            "data": {"object": object}});
        StripeEvent::parse(body.to_string().as_bytes()).unwrap()
    }

    fn sub(status: &str, price: &str) -> Value {
        json!({"id": "sub_1", "object": "subscription", "customer": "cus_1", "status": status,
            "current_period_start": 1_764_000_000, "current_period_end": 1_766_592_000,
            "items": {"data": [{"price": {"id": price}}]}, "metadata": {"user_id": "u1"}})
    }

    fn free() -> BillingState<'static> {
        BillingState {
            tier: Tier::Free,
            tier_source: TierSource::Default,
            subscription: None,
            sub_fence: None,
        }
    }

    fn decide_on(state: &BillingState<'_>, e: &StripeEvent) -> Decision {
        let snapshot = SubscriptionSnapshot::from_object(&e.object).unwrap();
        decide(state, &e.fence(), &snapshot, &prices())
    }

    /// The change `kind` at `created` with `object` makes on `state`; panics when it makes none.
    fn applied(state: &BillingState<'_>, kind: &str, created: i64, object: Value) -> TierChange {
        match decide_on(state, &event(kind, created, object)) {
            Decision::Apply(change) => change,
            ignored => panic!("{kind} not applied: {ignored:?}"),
        }
    }

    fn stored(id: &str, status: SubscriptionStatus) -> Subscription {
        Subscription {
            id: id.into(),
            status,
            price_id: Some("price_pro".into()),
            current_period_start: DateTime::from_timestamp(1_764_000_000, 0).unwrap(),
            current_period_end: DateTime::from_timestamp(1_766_592_000, 0).unwrap(),
            cancel_at_period_end: false,
            billing_cycle_anchor: None,
        }
    }

    #[test]
    fn milestones_are_activations_and_cancellations_not_plan_changes() {
        use SubscriptionStatus::*;
        let activated = Some(Event::SubscriptionActivated);
        let canceled = Some(Event::SubscriptionCanceled);
        for (previous, next, made) in [
            (None, stored("sub_1", Active), activated),
            (None, stored("sub_1", Trialing), activated),
            (None, stored("sub_1", Incomplete), None),
            (
                Some(stored("sub_1", Incomplete)),
                stored("sub_1", Active),
                activated,
            ),
            (
                Some(stored("sub_1", Unpaid)),
                stored("sub_1", Active),
                activated,
            ),
            (Some(stored("sub_1", Active)), stored("sub_1", Active), None),
            (
                Some(stored("sub_1", Active)),
                stored("sub_1", PastDue),
                None,
            ),
            (Some(stored("sub_1", Active)), stored("sub_1", Unpaid), None),
            (
                Some(stored("sub_1", Canceled)),
                stored("sub_2", Active),
                activated,
            ),
            (
                Some(stored("sub_1", Active)),
                stored("sub_1", Canceled),
                canceled,
            ),
            (
                Some(stored("sub_1", Unpaid)),
                stored("sub_1", Canceled),
                canceled,
            ),
            (
                Some(stored("sub_1", Canceled)),
                stored("sub_1", Canceled),
                None,
            ),
        ] {
            assert_eq!(
                milestone(previous.as_ref(), &next),
                made,
                "{previous:?} -> {:?}",
                next.status
            );
        }
    }

    #[test]
    fn the_envelope_needs_id_type_created_and_an_object() {
        for (body, field) in [
            ("not json", "body"),
            ("[1]", "body"),
            (r#"{"type":"x","created":1,"data":{"object":{}}}"#, "id"),
            (r#"{"id":"e","created":1,"data":{"object":{}}}"#, "type"),
            (
                r#"{"id":"e","type":"x","created":"1","data":{"object":{}}}"#,
                "created",
            ),
            (
                r#"{"id":"e","type":"x","created":1,"data":{}}"#,
                "data.object",
            ),
        ] {
            assert_eq!(
                StripeEvent::parse(body.as_bytes()).unwrap_err().field,
                field,
                "{body}"
            );
        }
        let e = StripeEvent::parse(
            br#"{"id":"evt_1","type":"x","created":5,"data":{"object":{}},"new":true}"#,
        )
        .unwrap();
        assert_eq!((e.id.as_str(), e.created.timestamp()), ("evt_1", 5));
    }

    #[test]
    fn the_tier_comes_from_the_price_never_from_metadata() {
        let mut object = sub("active", "price_creator");
        object["metadata"]["tier"] = json!("STUDIO");
        let change = applied(&free(), "customer.subscription.created", 10, object);
        assert_eq!(
            (change.tier, change.tier_source),
            (Tier::Creator, TierSource::Stripe)
        );
        assert_eq!(
            decide_on(
                &free(),
                &event(
                    "customer.subscription.created",
                    10,
                    sub("active", "price_gold")
                )
            ),
            Decision::Ignore(Ignored::UnknownPrice)
        );
    }

    #[test]
    fn the_period_is_read_from_the_items_when_the_subscription_has_none() {
        let object = json!({"id": "sub_1", "status": "active", "items": {"data": [
            {"price": {"id": "price_addon"}, "current_period_start": 1, "current_period_end": 2},
            {"price": {"id": "price_pro"}, "current_period_start": 1_764_000_000,
             "current_period_end": 1_766_592_000}]}});
        let change = applied(&free(), "customer.subscription.updated", 10, object);
        assert_eq!(change.tier, Tier::Pro);
        assert_eq!(
            change.subscription.current_period_start.timestamp(),
            1_764_000_000
        );
        let no_period = json!({"id": "sub_1", "status": "active",
            "items": {"data": [{"price": {"id": "price_pro"}}]}});
        assert_eq!(
            decide_on(
                &free(),
                &event("customer.subscription.updated", 10, no_period)
            ),
            Decision::Ignore(Ignored::NoPeriod)
        );
    }

    #[test]
    fn fences_order_by_time_then_lifecycle_then_id() {
        let updated = event(
            "customer.subscription.updated",
            100,
            sub("active", "price_pro"),
        );
        let deleted = event(
            "customer.subscription.deleted",
            100,
            sub("canceled", "price_pro"),
        );
        let created = event(
            "customer.subscription.created",
            100,
            sub("active", "price_pro"),
        );
        let later = event(
            "customer.subscription.created",
            101,
            sub("active", "price_pro"),
        );
        assert!(created.fence() < updated.fence() && updated.fence() < deleted.fence());
        assert!(deleted.fence() < later.fence());
        let fence = deleted.fence();
        let state = BillingState {
            sub_fence: Some(&fence),
            ..free()
        };
        assert_eq!(
            decide_on(&state, &updated),
            Decision::Ignore(Ignored::Stale)
        );
        assert_eq!(
            decide_on(&state, &deleted),
            Decision::Ignore(Ignored::Stale)
        );
    }

    #[test]
    fn two_events_of_one_second_and_rank_tie_and_stripes_answer_settles_them_in_order() {
        let first = event(
            "customer.subscription.updated",
            100,
            sub("active", "price_pro"),
        );
        let mut second = first.clone();
        second.id = "evt_other".into();
        let deleted = event(
            "customer.subscription.deleted",
            100,
            sub("canceled", "price_pro"),
        );
        let later = event(
            "customer.subscription.updated",
            101,
            sub("active", "price_pro"),
        );
        assert!(ties(Some(&first.fence()), &second.fence()));
        assert!(ties(Some(&second.fence()), &first.fence()));
        assert!(
            !ties(Some(&first.fence()), &first.fence()),
            "the same event"
        );
        assert!(
            !ties(Some(&first.fence()), &deleted.fence()),
            "another rank"
        );
        assert!(
            !ties(Some(&first.fence()), &later.fence()),
            "another second"
        );
        assert!(!ties(None, &first.fence()));
        let settled = settled_fence(&second.fence());
        assert!(settled > first.fence() && settled > second.fence());
        assert!(settled < deleted.fence() && settled < later.fence());
        assert!(
            ties(Some(&settled), &first.fence()),
            "a third event of that second"
        );
    }

    #[test]
    fn statuses_decide_whether_the_paid_tier_is_kept() {
        for (status, tier) in [
            ("active", Tier::Pro),
            ("trialing", Tier::Pro),
            ("past_due", Tier::Pro),
            ("canceled", Tier::Free),
            ("unpaid", Tier::Free),
            ("incomplete_expired", Tier::Free),
            ("incomplete", Tier::Free),
            ("something_new", Tier::Free),
        ] {
            let change = applied(
                &free(),
                "customer.subscription.updated",
                10,
                sub(status, "price_pro"),
            );
            assert_eq!(change.tier, tier, "{status}");
        }
    }

    #[test]
    fn an_ended_subscription_is_not_resurrected_and_another_ending_does_not_downgrade() {
        let deleted = "customer.subscription.deleted";
        let ended = applied(&free(), deleted, 10, sub("canceled", "price_pro"));
        let state = BillingState {
            subscription: Some(&ended.subscription),
            sub_fence: Some("000000000001#3#evt_old"),
            ..free()
        };
        let late = event(
            "customer.subscription.updated",
            20,
            sub("active", "price_pro"),
        );
        assert_eq!(
            decide_on(&state, &late),
            Decision::Ignore(Ignored::EndedForGood)
        );

        let active = applied(
            &free(),
            "customer.subscription.created",
            10,
            sub("active", "price_pro"),
        );
        let state = BillingState {
            tier: Tier::Pro,
            tier_source: TierSource::Stripe,
            subscription: Some(&active.subscription),
            sub_fence: Some("000000000001#1#evt_old"),
        };
        let mut other = sub("canceled", "price_creator");
        other["id"] = json!("sub_2");
        assert_eq!(
            decide_on(&state, &event(deleted, 20, other)),
            Decision::Ignore(Ignored::NotTheCurrentSubscription)
        );
    }

    #[test]
    fn an_ending_subscription_leaves_an_admin_grant() {
        let state = BillingState {
            tier: Tier::Studio,
            tier_source: TierSource::Admin,
            ..free()
        };
        let change = applied(
            &state,
            "customer.subscription.deleted",
            10,
            sub("canceled", "price_pro"),
        );
        assert_eq!(
            (change.tier, change.tier_source),
            (Tier::Studio, TierSource::Admin)
        );
    }

    #[test]
    fn checkout_sessions_name_the_user_by_reference_then_metadata() {
        let c = CheckoutCompleted::from_object(&json!({"client_reference_id": "u1",
            "metadata": {"user_id": "u2"}, "customer": {"id": "cus_9"}}));
        assert_eq!(
            (c.user_id.as_deref(), c.customer.as_deref()),
            (Some("u1"), Some("cus_9"))
        );
        let c = CheckoutCompleted::from_object(&json!({"metadata": {"user_id": "u2"}}));
        assert_eq!((c.user_id.as_deref(), c.customer), (Some("u2"), None));
    }

    #[test]
    fn annual_prices_sell_the_same_tier_and_pack_sessions_are_read_whole() {
        let prices = prices();
        assert_eq!(prices.tier_of("price_creator_yearly"), Some(Tier::Creator));
        assert_eq!(
            prices.price_for(Tier::Creator, Interval::Year),
            Some("price_creator_yearly")
        );
        assert_eq!(prices.price_for(Tier::Pro, Interval::Year), None);
        let c = CheckoutCompleted::from_object(&json!({"id": "cs_1", "mode": "payment",
            "payment_status": "paid", "payment_intent": "pi_1", "customer": "cus_1",
            "metadata": {"user_id": "u1", "pack": "pack_10", "generations": "10"}}));
        assert!(c.is_pack() && c.is_paid());
        assert_eq!(
            (
                c.id.as_deref(),
                c.payment_intent.as_deref(),
                c.generations,
                c.pack.as_deref()
            ),
            (Some("cs_1"), Some("pi_1"), Some(10), Some("pack_10"))
        );
        let unpaid =
            CheckoutCompleted::from_object(&json!({"mode": "payment", "payment_status": "unpaid"}));
        assert!(unpaid.is_pack() && !unpaid.is_paid());
        let r = ChargeRefunded::from_object(
            &json!({"customer": "cus_1", "payment_intent": {"id": "pi_1"}}),
        );
        assert_eq!(r.payment_intent.as_deref(), Some("pi_1"));
    }
}
