//! The reference model of metering and billing: the contract's rules (openapi.yaml: tiers, record-generation,
//! generation jobs and their reservations, storage, the webhook, and the README's choices where the
//! contract is silent) stated on their own terms, in memory. It shares only the tier table's constants with the code it checks (`Tier::spec`: limits,
//! qualities, period kinds); periods, entitlements, counters, fences and the 5% rule are written here
//! again, plainly, so that a divergence between the two is a failing test.

use chrono::{DateTime, Datelike, Duration, Months, TimeZone, Utc};
use son1k_domain::tiers::{Quality, Tier};
use std::collections::{BTreeMap, BTreeSet};

/// How long a paid Stripe tier outlives a period end whose renewal was not heard of.
pub const GRACE: Duration = Duration::days(3);

/// A usage period: its kind and bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub month: bool,
}

/// The refusal code of a spent period: monthly or daily.
fn limit_code(span: Span) -> &'static str {
    if span.month {
        "monthly_limit_reached"
    } else {
        "daily_limit_reached"
    }
}

pub fn utc_day(now: DateTime<Utc>) -> Span {
    let start = Utc
        .with_ymd_and_hms(now.year(), now.month(), now.day(), 0, 0, 0)
        .single()
        .expect("a day");
    Span {
        start,
        end: start + Duration::days(1),
        month: false,
    }
}

pub fn utc_month(now: DateTime<Utc>) -> Span {
    let start = Utc
        .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .expect("a month");
    Span {
        start,
        end: start
            .checked_add_months(Months::new(1))
            .expect("next month"),
        month: true,
    }
}

/// `anchor` moved by `k` months, the day clamped to the month's length (Stripe: Jan 31 → Feb 28 → Mar 31).
pub fn anchor_month(anchor: DateTime<Utc>, k: i64) -> DateTime<Utc> {
    let months = Months::new(u32::try_from(k.unsigned_abs()).expect("few months"));
    if k >= 0 {
        anchor.checked_add_months(months).expect("in range")
    } else {
        anchor.checked_sub_months(months).expect("in range")
    }
}

/// The billing month of the cycle anchored at `anchor` that holds `now`, and its index.
pub fn billing_month(anchor: DateTime<Utc>, now: DateTime<Utc>) -> (i64, Span) {
    let guess = i64::from(now.year() * 12 + now.month0() as i32)
        - i64::from(anchor.year() * 12 + anchor.month0() as i32);
    (guess - 2..=guess + 2)
        .map(|k| {
            (
                k,
                Span {
                    start: anchor_month(anchor, k),
                    end: anchor_month(anchor, k + 1),
                    month: true,
                },
            )
        })
        .find(|(_, span)| span.start <= now && now < span.end)
        .expect("one billing month holds now")
}

/// Where the stored tier came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Default,
    Admin,
    Stripe,
}

/// A subscription as last applied from Stripe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sub {
    pub id: String,
    pub status: &'static str,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub anchor: DateTime<Utc>,
    pub cancel_at_period_end: bool,
}

/// `active`, `trialing` and `past_due` keep the paid tier.
pub fn keeps_tier(status: &str) -> bool {
    matches!(status, "active" | "trialing" | "past_due")
}

/// One user as the contract sees it.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub exists: bool,
    pub tier: Tier,
    pub source: Source,
    pub sub: Option<Sub>,
    /// (created, lifecycle rank, event id) of the last applied subscription event.
    pub fence: Option<(i64, u8, String)>,
    /// Generations spent per period, by the period's kind (month?) and start: a period is named by
    /// where it starts.
    pub used: BTreeMap<(bool, DateTime<Utc>), u32>,
    /// Generations recorded on a paid tier, ever.
    pub paid_total: u64,
    /// Bytes of stored audio.
    pub storage: u64,
    /// Lyrics drafts and Pixel messages per UTC day: (pixel?, day start) → count.
    pub assisted: BTreeMap<(bool, DateTime<Utc>), u32>,
    /// The user's billing cycle anchor (what Stripe events carry).
    pub anchor: DateTime<Utc>,
    /// The usage alerts fired, in order (the default settings: 80 % and 100 %, with the pace).
    pub alerts: Vec<Alert>,
    /// Thresholds fired.
    pub fired: BTreeSet<Fired>,
    /// Periods whose pace alert was sent.
    pub paced: BTreeSet<(bool, DateTime<Utc>)>,
    /// Credit blocks by block id.
    pub blocks: BTreeMap<String, Block>,
}

/// A credit block: granted by an admin or bought as a pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub grant: bool,
    pub generations: u32,
    pub remaining: u32,
    /// Epoch seconds from which it no longer pays.
    pub until: i64,
    /// Epoch milliseconds it was added.
    pub added: i64,
}

impl Block {
    pub fn pays(&self, now: DateTime<Utc>) -> bool {
        self.remaining > 0 && now.timestamp() < self.until
    }
}

/// A threshold that fired: (quota, period (month?, start), limit, threshold).
pub type Fired = (&'static str, (bool, DateTime<Utc>), u64, u8);

/// A usage alert as the list shows it. A pace alert's `used` is left out: which unit of a parallel
/// burst sends it depends on which commits first (it is sent once either way).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Alert {
    pub kind: &'static str,
    pub quota: &'static str,
    pub thresholds: Vec<u64>,
    pub used: Option<u64>,
    pub limit: u64,
    pub period_start: DateTime<Utc>,
}

/// The thresholds every model user has (the defaults).
const THRESHOLDS: [u8; 2] = [80, 100];

impl User {
    /// A committed change of `quota` in `period` from `before` to `after` against `limit`: the
    /// thresholds it crosses that did not fire before, as one alert.
    pub fn cross(
        &mut self,
        quota: &'static str,
        period: (bool, DateTime<Utc>),
        limit: u64,
        (before, after): (u64, u64),
    ) {
        let fresh: Vec<u64> = son1k_domain::alerts::crossed(&THRESHOLDS, limit, before, after)
            .into_iter()
            .filter(|t| self.fired.insert((quota, period, limit, *t)))
            .map(u64::from)
            .collect();
        if !fresh.is_empty() {
            self.alerts.push(Alert {
                kind: "threshold",
                quota,
                thresholds: fresh,
                used: Some(after),
                limit,
                period_start: period.1,
            });
        }
    }

    /// Sends the period's pace alert unless it was sent.
    pub fn pace(&mut self, span: Span, limit: u64) {
        if self.paced.insert((span.month, span.start)) {
            self.alerts.push(Alert {
                kind: "pace",
                quota: "generations",
                thresholds: Vec::new(),
                used: None,
                limit,
                period_start: span.start,
            });
        }
    }
}

/// Whether `used` generations of `span` at `now` are a fast pace (`domain::alerts::pace`).
pub fn fast_pace(span: Span, limit: u64, used: u64, now: DateTime<Utc>) -> bool {
    let period = son1k_domain::period::Period {
        kind: if span.month {
            son1k_domain::tiers::PeriodKind::Month
        } else {
            son1k_domain::tiers::PeriodKind::Day
        },
        start: span.start,
        end: span.end,
    };
    let settings = son1k_domain::alerts::AlertSettings::default();
    son1k_domain::alerts::pace(&settings, &period, "", limit, used, now).is_some()
}

impl User {
    pub fn new(id: String, anchor: DateTime<Utc>) -> Self {
        Self {
            id,
            exists: false,
            tier: Tier::Free,
            source: Source::Default,
            sub: None,
            fence: None,
            used: BTreeMap::new(),
            paid_total: 0,
            storage: 0,
            assisted: BTreeMap::new(),
            alerts: Vec::new(),
            fired: BTreeSet::new(),
            paced: BTreeSet::new(),
            blocks: BTreeMap::new(),
            anchor,
        }
    }

    /// The block that pays next: granted before bought, the soonest expiry, the oldest, the id.
    pub fn next_block(&self, now: DateTime<Utc>) -> Option<String> {
        self.blocks
            .iter()
            .filter(|(_, b)| b.pays(now))
            .min_by_key(|(id, b)| (!b.grant, b.until, b.added, (*id).clone()))
            .map(|(id, _)| id.clone())
    }

    /// The credits that can still pay.
    pub fn balance(&self, now: DateTime<Utc>) -> u32 {
        self.blocks
            .values()
            .filter(|b| b.pays(now))
            .map(|b| b.remaining)
            .sum()
    }

    /// The tier in force at `now` and the period whose count it spends.
    pub fn entitlement(&self, now: DateTime<Utc>) -> (Tier, Span) {
        let free = (Tier::Free, utc_day(now));
        if !self.tier.is_paid() {
            return free;
        }
        let sub = match (&self.source, &self.sub) {
            (Source::Stripe, Some(sub)) => sub,
            _ => return (self.tier, utc_month(now)),
        };
        if !keeps_tier(sub.status) {
            return free;
        }
        if sub.start <= now && now < sub.end {
            // A yearly period: its months, counted from its start.
            if sub.end > anchor_month(sub.start, 1) + Duration::days(1) {
                let (_, month) = billing_month(sub.start, now);
                let span = Span {
                    start: month.start.max(sub.start),
                    end: month.end.min(sub.end),
                    month: true,
                };
                return (self.tier, span);
            }
            let span = Span {
                start: sub.start,
                end: sub.end,
                month: true,
            };
            return (self.tier, span);
        }
        if now >= sub.end && (sub.cancel_at_period_end || now >= sub.end + GRACE) {
            return free;
        }
        (self.tier, billing_month(sub.anchor, now).1)
    }

    pub fn used_in(&self, span: Span) -> u32 {
        self.used
            .get(&(span.month, span.start))
            .copied()
            .unwrap_or(0)
    }
}

/// How long a job's reservation holds its unit.
pub const RESERVATION: Duration = Duration::minutes(15);

/// A generation job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub owner: usize,
    /// The period its unit counts in: (month?, start).
    pub period: (bool, DateTime<Utc>),
    /// Its unit counts until then (unless it finished).
    pub until: DateTime<Utc>,
    pub paid: bool,
    /// The reservation made it a 20th paid generation: its success goes to the pool.
    pub contributes: bool,
    pub seconds: u64,
    /// `None` while queued; then `("succeeded", None)` or `("failed", Some(error))`.
    pub end: Option<(&'static str, Option<&'static str>)>,
    /// What its reservation crossed, sent when it succeeds: (limit, used with it, its span if the
    /// pace was fast and unsent then).
    pub alert: (u64, u64, Option<Span>),
    /// The credit block that pays it, when the allowance was spent.
    pub credit: Option<String>,
}

impl Job {
    /// Holds its unit at `now`: not finished, reservation not over.
    pub fn holds(&self, now: DateTime<Utc>) -> bool {
        self.end.is_none() && now.timestamp() < self.until.timestamp()
    }

    /// Its unit is in the paid history at `now`: a period's unit while it holds; a credit's until
    /// its job ends (only the job's end releases a credit).
    pub fn holds_paid(&self, now: DateTime<Utc>) -> bool {
        self.paid && (self.holds(now) || (self.credit.is_some() && self.end.is_none()))
    }

    /// Its status and error as `GET /api/generations/{id}` says at `now`.
    pub fn status(&self, now: DateTime<Utc>) -> (&'static str, Option<&'static str>) {
        match self.end {
            Some(end) => end,
            None if !self.holds(now) => ("failed", Some("timed_out")),
            None => ("queued", None),
        }
    }
}

/// The bytes of the WAV audio the provider stub makes for `seconds` (16-bit mono at 16 kHz).
pub fn wav_len(seconds: u64) -> u64 {
    44 + seconds * 16_000 * 2
}

/// What `POST /api/generations` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// 202 `queued` with these numbers.
    Queued {
        used: u32,
        remaining: u32,
        reset_at: DateTime<Utc>,
    },
    /// 200: the caller's job of this id, with its status.
    Existing(&'static str),
    Taken,
    QualityRefused,
    LimitReached {
        code: &'static str,
        limit: u32,
        used: u32,
        reset_at: DateTime<Utc>,
    },
    /// 413: the job's audio may not fit the owner's free storage; nothing reserved.
    StorageFull {
        limit_bytes: u64,
        used_bytes: u64,
    },
}

/// What the limits route answers (the fields compared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub tier: Tier,
    pub period: &'static str,
    pub period_start: DateTime<Utc>,
    pub reset_at: DateTime<Utc>,
    pub limit: u32,
    pub used: u32,
    pub remaining: u32,
    pub remaining_in_period: u32,
    pub credits: u32,
    pub can_generate: bool,
    pub reason: Option<&'static str>,
    pub storage_used: u64,
    pub storage_limit: Option<u64>,
    /// `(status, current_period_end, cancel_at_period_end)` of the stored subscription.
    pub subscription: Option<(&'static str, DateTime<Utc>, bool)>,
}

/// What record-generation answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// 201: `used`, `remaining`, `reset_at`, and the points of a pool contribution.
    Created {
        used: u32,
        remaining: u32,
        reset_at: DateTime<Utc>,
        contribution: Option<u32>,
        /// The block a credit paid it from.
        credit: Option<String>,
    },
    /// 200 with the first answer's bytes.
    Replayed,
    /// 409 `generation_id_taken`.
    Taken,
    /// 403 `quality_not_in_tier`.
    QualityRefused,
    /// 429 `daily_limit_reached` / `monthly_limit_reached` with these fields.
    LimitReached {
        code: &'static str,
        limit: u32,
        used: u32,
        reset_at: DateTime<Utc>,
    },
}

/// Points of a pool contribution.
pub fn points(quality: Quality) -> u32 {
    match quality {
        Quality::Standard => 1,
        Quality::High => 2,
        Quality::Ultra => 3,
    }
}

/// A `customer.subscription.*` event as the model reads it.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    /// 1 created, 2 updated, 3 deleted.
    pub rank: u8,
    pub created: DateTime<Utc>,
    pub subscription: String,
    pub status: &'static str,
    /// The tier its price sells; `None` for a price we do not sell.
    pub tier: Option<Tier>,
    /// `None`: no billing period anywhere in the event.
    pub period: Option<(DateTime<Utc>, DateTime<Utc>)>,
    pub anchor: DateTime<Utc>,
    pub cancel_at_period_end: bool,
}

/// The whole model: users, generation ids and their owners, the clock.
#[derive(Debug, Clone)]
pub struct Model {
    pub now: DateTime<Utc>,
    pub users: Vec<User>,
    /// Generation id → owner index.
    pub generations: BTreeMap<String, usize>,
    /// Generation jobs by id.
    pub jobs: BTreeMap<String, Job>,
    /// The bytes of each recorded generation's stored audio (uploaded through a presigned link).
    pub audio: BTreeMap<String, u64>,
    /// Pool contributions by contribution id: (generation id, listed?). A recorded generation's is
    /// listed once its audio is stored; a job's at once.
    pub contributions: BTreeMap<String, (String, bool)>,
    /// Pool claims: (user, contribution id), and per user and UTC day start how many.
    pub claimed: BTreeSet<(usize, String)>,
    pub claims: BTreeMap<(usize, DateTime<Utc>), u32>,
    pub applied_events: BTreeSet<String>,
    /// Packs refunded before their block was added: added voided.
    pub refunded: BTreeSet<String>,
}

impl Model {
    pub fn new(now: DateTime<Utc>, users: Vec<User>) -> Self {
        Self {
            now,
            users,
            generations: BTreeMap::new(),
            jobs: BTreeMap::new(),
            audio: BTreeMap::new(),
            contributions: BTreeMap::new(),
            claimed: BTreeSet::new(),
            claims: BTreeMap::new(),
            applied_events: BTreeSet::new(),
            refunded: BTreeSet::new(),
        }
    }

    /// The first authenticated request creates the user (FREE).
    fn touch(&mut self, user: usize) {
        self.users[user].exists = true;
    }

    pub fn limits(&mut self, user: usize, quality: Option<Quality>) -> Limits {
        self.touch(user);
        self.view(user, quality)
    }

    /// Units `user`'s running jobs hold in `span` at now.
    fn reserved(&self, user: usize, span: Span) -> u32 {
        let held = self
            .jobs
            .values()
            .filter(|j| j.owner == user && j.period == (span.month, span.start))
            .filter(|j| j.credit.is_none() && j.holds(self.now))
            .count();
        u32::try_from(held).expect("few jobs")
    }

    /// The period's count: recorded generations and the units running jobs hold.
    fn used(&self, user: usize, span: Span) -> u32 {
        self.users[user].used_in(span) + self.reserved(user, span)
    }

    /// The paid history a new paid generation extends: recorded ones and running jobs' paid units.
    fn paid_history(&self, user: usize) -> u64 {
        let held = self
            .jobs
            .values()
            .filter(|j| j.owner == user && j.holds_paid(self.now))
            .count();
        self.users[user].paid_total + u64::try_from(held).expect("few jobs")
    }

    fn view(&self, user: usize, quality: Option<Quality>) -> Limits {
        let u = &self.users[user];
        let (tier, span) = u.entitlement(self.now);
        let spec = tier.spec();
        let used = self.used(user, span);
        let credits = u.balance(self.now);
        let quality_ok = quality.is_none_or(|q| spec.qualities.contains(&q));
        let reason = if !quality_ok {
            Some("quality_not_in_tier")
        } else if used >= spec.generations && credits == 0 {
            Some(if span.month {
                "monthly_limit_reached"
            } else {
                "daily_limit_reached"
            })
        } else {
            None
        };
        Limits {
            tier,
            period: if span.month { "month" } else { "day" },
            period_start: span.start,
            reset_at: span.end,
            limit: spec.generations,
            used,
            remaining: spec.generations.saturating_sub(used) + credits,
            remaining_in_period: spec.generations.saturating_sub(used),
            credits,
            can_generate: reason.is_none(),
            reason,
            storage_used: u.storage,
            storage_limit: spec.storage_bytes,
            subscription: u
                .sub
                .as_ref()
                .map(|s| (s.status, s.end, s.cancel_at_period_end)),
        }
    }

    /// `record-generation` of `id` by `user`: an id seen before is a replay (its owner) or taken (anyone
    /// else), whatever the quota says; otherwise quality, then quota, then a recorded generation.
    pub fn record(&mut self, user: usize, id: &str, quality: Quality) -> Recorded {
        self.touch(user);
        if let Some(&owner) = self.generations.get(id) {
            return if owner == user {
                Recorded::Replayed
            } else {
                Recorded::Taken
            };
        }
        let now = self.now;
        let (tier, span) = self.users[user].entitlement(now);
        let spec = tier.spec();
        if !spec.qualities.contains(&quality) {
            return Recorded::QualityRefused;
        }
        let used = self.used(user, span);
        let paid_history = self.paid_history(user);
        let u = &mut self.users[user];
        if used >= spec.generations {
            let Some(block) = u.next_block(now) else {
                return Recorded::LimitReached {
                    code: limit_code(span),
                    limit: spec.generations,
                    used,
                    reset_at: span.end,
                };
            };
            // A credit pays: the period's count stays, nothing crosses.
            u.blocks.get_mut(&block).expect("block").remaining -= 1;
            let mut contribution = None;
            if tier.is_paid() {
                u.paid_total += 1;
                if (paid_history + 1).is_multiple_of(20) {
                    contribution = Some(points(quality));
                }
            }
            let remaining = u.balance(now);
            self.generations.insert(id.to_owned(), user);
            return Recorded::Created {
                used,
                remaining,
                reset_at: span.end,
                contribution,
                credit: Some(block),
            };
        }
        *u.used.entry((span.month, span.start)).or_insert(0) += 1;
        let limit = u64::from(spec.generations);
        let after = u64::from(used) + 1;
        u.cross(
            "generations",
            (span.month, span.start),
            limit,
            (after - 1, after),
        );
        if fast_pace(span, limit, after, now) {
            u.pace(span, limit);
        }
        let mut contribution = None;
        if tier.is_paid() {
            u.paid_total += 1;
            if (paid_history + 1).is_multiple_of(20) {
                contribution = Some(points(quality));
            }
        }
        let remaining = spec.generations - used - 1 + u.balance(now);
        self.generations.insert(id.to_owned(), user);
        Recorded::Created {
            used: used + 1,
            remaining,
            reset_at: span.end,
            contribution,
            credit: None,
        }
    }

    /// `POST /api/generations` of `id` by `user`: a job id seen before answers the caller's job (or is
    /// taken); otherwise quality, then quota (running jobs' units counted), then the unit reserved for
    /// 15 minutes.
    pub fn submit(&mut self, user: usize, id: &str, quality: Quality, seconds: u64) -> Submitted {
        // A job id seen before answers (200 or 409) before the caller is looked at: it makes no user.
        if let Some(job) = self.jobs.get(id) {
            return if job.owner == user {
                Submitted::Existing(job.status(self.now).0)
            } else {
                Submitted::Taken
            };
        }
        if self.generations.contains_key(id) {
            return Submitted::Taken;
        }
        self.touch(user);
        let now = self.now;
        let (tier, span) = self.users[user].entitlement(now);
        let spec = tier.spec();
        if !spec.qualities.contains(&quality) {
            return Submitted::QualityRefused;
        }
        let used = self.used(user, span);
        let credit = if used >= spec.generations {
            let Some(block) = self.users[user].next_block(now) else {
                return Submitted::LimitReached {
                    code: limit_code(span),
                    limit: spec.generations,
                    used,
                    reset_at: span.end,
                };
            };
            Some(block)
        } else {
            None
        };
        // The most its audio may take (Quality's table, WAV) must be free.
        let stored = self.users[user].storage;
        if let Some(limit) = spec.storage_bytes {
            if limit.saturating_sub(stored) < quality.max_audio_bytes(seconds as f64) {
                return Submitted::StorageFull {
                    limit_bytes: limit,
                    used_bytes: stored,
                };
            }
        }
        let paid = tier.is_paid();
        let contributes = paid && (self.paid_history(user) + 1).is_multiple_of(20);
        let limit = u64::from(spec.generations);
        // A credit leaves the period's count where it was.
        let after = u64::from(used) + u64::from(credit.is_none());
        let paced = self.users[user].paced.contains(&(span.month, span.start));
        let pace =
            (credit.is_none() && !paced && fast_pace(span, limit, after, now)).then_some(span);
        if let Some(block) = &credit {
            self.users[user]
                .blocks
                .get_mut(block)
                .expect("block")
                .remaining -= 1;
        }
        let allowance_left = spec
            .generations
            .saturating_sub(used + u32::from(credit.is_none()));
        let remaining = allowance_left + self.users[user].balance(now);
        self.jobs.insert(
            id.to_owned(),
            Job {
                owner: user,
                period: (span.month, span.start),
                until: now + RESERVATION,
                paid,
                contributes,
                seconds,
                end: None,
                alert: (limit, after, pace),
                credit: credit.clone(),
            },
        );
        Submitted::Queued {
            used: after as u32,
            remaining,
            reset_at: span.end,
        }
    }

    /// The worker runs every queued job once, each provider call answering as `succeed` says: a job
    /// whose reservation is over fails `timed_out`; one whose audio would pass its owner's storage
    /// quota fails `storage_quota_exceeded` with its unit spent (the provider was paid); a refused
    /// call fails `provider_rejected`. A success records the generation in its reservation's period
    /// and stores its audio.
    /// Returns the ids of the jobs it finished.
    pub fn work(&mut self, succeed: bool) -> Vec<String> {
        let now = self.now;
        let queued: Vec<String> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.end.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        for id in &queued {
            let job = self.jobs[id].clone();
            let u = &mut self.users[job.owner];
            let end = if !job.holds(now) {
                ("failed", Some("timed_out"))
            } else if !succeed {
                ("failed", Some("provider_rejected"))
            } else {
                let size = wav_len(job.seconds);
                let limit = u.entitlement(now).0.spec().storage_bytes;
                // A credit's unit is in no period's count.
                let counted = u32::from(job.credit.is_none());
                if limit.is_some_and(|limit| u.storage + size > limit) {
                    *u.used.entry(job.period).or_insert(0) += counted;
                    u.paid_total += u64::from(job.paid);
                    ("failed", Some("storage_quota_exceeded"))
                } else {
                    u.storage += size;
                    *u.used.entry(job.period).or_insert(0) += counted;
                    u.paid_total += u64::from(job.paid);
                    // Its commit writes what its reservation crossed (a credit crosses nothing).
                    if job.credit.is_none() {
                        let (limit, after, pace) = job.alert;
                        u.cross("generations", job.period, limit, (after - 1, after));
                        if let Some(span) = pace {
                            u.pace(span, limit);
                        }
                    }
                    ("succeeded", None)
                }
            };
            // A failed job's credit goes back to its block while the block still pays.
            if let (Some(block), ("failed", Some(error))) = (&job.credit, end) {
                let b = u.blocks.get_mut(block).expect("block");
                if error != "storage_quota_exceeded"
                    && now.timestamp() < b.until
                    && b.remaining < b.generations
                {
                    b.remaining += 1;
                }
            }
            self.jobs.get_mut(id).expect("job").end = Some(end);
        }
        queued
    }

    /// A lyrics draft (`pixel` false) or a Pixel message: `Ok(())` while the UTC day's allowance of the
    /// tier in force lasts, else the refusal's `(code, limit, reset_at)`.
    pub fn assist(
        &mut self,
        user: usize,
        pixel: bool,
    ) -> Result<(), (&'static str, u32, DateTime<Utc>)> {
        self.touch(user);
        let now = self.now;
        let u = &mut self.users[user];
        let spec = u.entitlement(now).0.spec();
        let limit = if pixel {
            spec.pixel_messages_per_day
        } else {
            spec.lyrics_per_day
        };
        let day = utc_day(now);
        let count = u.assisted.entry((pixel, day.start)).or_insert(0);
        if *count >= limit {
            let code = if pixel {
                "pixel_limit_reached"
            } else {
                "lyrics_limit_reached"
            };
            return Err((code, limit, day.end));
        }
        *count += 1;
        let after = u64::from(*count);
        let quota = if pixel { "pixel" } else { "lyrics" };
        u.cross(
            quota,
            (false, day.start),
            u64::from(limit),
            (after - 1, after),
        );
        Ok(())
    }

    /// `upload-url` for `user`'s recorded generation `id` of `size` bytes: `Ok` when it fits what
    /// remains of the tier's storage (the audio it would replace freed first), else the 413's
    /// `(limit_bytes, used_bytes)`; `None` (404) for an id that is not the user's.
    pub fn upload_url(
        &mut self,
        user: usize,
        id: &str,
        size: u64,
    ) -> Option<Result<(), (u64, u64)>> {
        self.touch(user);
        if self.generations.get(id) != Some(&user) {
            return None;
        }
        let u = &self.users[user];
        let limit = u.entitlement(self.now).0.spec().storage_bytes;
        let used = u.storage - self.audio.get(id).copied().unwrap_or(0);
        match limit {
            Some(limit) if used + size > limit => Some(Err((limit, u.storage))),
            _ => Some(Ok(())),
        }
    }

    /// S3 reported the object uploaded for `id`: `true` (stored: it replaces the generation's audio in
    /// the owner's storage) when it is what was presigned and fits, else `false` (deleted).
    pub fn account(&mut self, user: usize, id: &str, size: u64, as_presigned: bool) -> bool {
        let now = self.now;
        let replaced = self.audio.get(id).copied().unwrap_or(0);
        let u = &mut self.users[user];
        let limit = u.entitlement(now).0.spec().storage_bytes;
        let fits = limit.is_none_or(|limit| u.storage - replaced + size <= limit);
        if !as_presigned || !fits {
            return false;
        }
        u.storage = u.storage - replaced + size;
        self.audio.insert(id.to_owned(), size);
        for (generation, listed) in self.contributions.values_mut() {
            if generation == id {
                *listed = true;
            }
        }
        true
    }

    /// A FREE user claims the pool item `contribution`: `Ok(claims used today)`, or the refusal's
    /// status and code (tier, then the day's 3 claims, then the item, then a second claim of it).
    pub fn claim(&mut self, user: usize, contribution: &str) -> Result<u32, (u16, &'static str)> {
        self.touch(user);
        if self.users[user].entitlement(self.now).0.is_paid() {
            return Err((403, "only_free_tier"));
        }
        let day = utc_day(self.now).start;
        let used = self.claims.get(&(user, day)).copied().unwrap_or(0);
        if used >= 3 {
            return Err((429, "daily_claim_limit_reached"));
        }
        if !self
            .contributions
            .get(contribution)
            .is_some_and(|(_, listed)| *listed)
        {
            return Err((404, "not_found"));
        }
        if !self.claimed.insert((user, contribution.to_owned())) {
            return Err((409, "already_claimed"));
        }
        self.claims.insert((user, day), used + 1);
        Ok(used + 1)
    }

    /// A credit block added to `user` at now (an admin's grant, or a paid pack's); `false` for a
    /// user who never made a request (404, or a webhook for no user of ours).
    pub fn add_block(
        &mut self,
        user: usize,
        id: &str,
        grant: bool,
        generations: u32,
        until: DateTime<Utc>,
    ) -> bool {
        let now = self.now;
        let u = &mut self.users[user];
        if !u.exists || u.blocks.contains_key(id) {
            return false;
        }
        let voided = self.refunded.contains(id);
        u.blocks.insert(
            id.to_owned(),
            Block {
                grant,
                generations,
                remaining: if voided { 0 } else { generations },
                until: if voided {
                    until.timestamp().min(now.timestamp())
                } else {
                    until.timestamp()
                },
                added: now.timestamp_millis(),
            },
        );
        true
    }

    /// A refund of the pack `id`: what remains is voided and the block pays no more.
    pub fn refund(&mut self, user: usize, id: &str) {
        let now = self.now;
        let exists = self.users[user].exists;
        match self.users[user].blocks.get_mut(id) {
            Some(b) => {
                b.remaining = 0;
                b.until = b.until.min(now.timestamp());
            }
            None if exists => {
                self.refunded.insert(id.to_owned());
            }
            None => {}
        }
    }

    /// An admin grant: `None` (404) for a user who never made a request.
    pub fn grant(&mut self, user: usize, tier: Tier) -> Option<Limits> {
        let u = &mut self.users[user];
        if !u.exists {
            return None;
        }
        u.tier = tier;
        u.source = Source::Admin;
        Some(self.view(user, None))
    }

    /// A verified subscription event; always acknowledged. Returns whether it changed the user.
    pub fn webhook(&mut self, user: usize, e: &Event) -> bool {
        let u = &mut self.users[user];
        if !u.exists || self.applied_events.contains(&e.id) {
            return false;
        }
        let fence = (e.created.timestamp(), e.rank, e.id.clone());
        if u.fence.as_ref().is_some_and(|applied| *applied >= fence) {
            return false;
        }
        let (Some(price_tier), Some((start, end))) = (e.tier, e.period) else {
            return false;
        };
        let keeps = keeps_tier(e.status);
        if let Some(current) = &u.sub {
            let ended_for_good = matches!(current.status, "canceled" | "incomplete_expired");
            if current.id == e.subscription && ended_for_good && keeps {
                return false;
            }
            if current.id != e.subscription && keeps_tier(current.status) && !keeps {
                return false;
            }
        }
        (u.tier, u.source) = match (keeps, u.source) {
            (true, _) => (price_tier, Source::Stripe),
            (false, Source::Admin) => (u.tier, Source::Admin),
            (false, _) => (Tier::Free, Source::Stripe),
        };
        u.sub = Some(Sub {
            id: e.subscription.clone(),
            status: e.status,
            start,
            end,
            anchor: e.anchor,
            cancel_at_period_end: e.cancel_at_period_end,
        });
        u.fence = Some(fence);
        self.applied_events.insert(e.id.clone());
        true
    }
}
