//! The model test: random sequences of generations (single and in parallel bursts), limits, admin
//! grants, Stripe subscription events (duplicated, out of order) and clock moves drive the real
//! handlers over the local stack, and every answer must equal the reference model's
//! (`son1k_tests::model`). proptest shrinks a failure to a short sequence and keeps it in
//! `tests/it/model.proptest-regressions` (committed), which is replayed first on every run.
//!
//! `make test` runs 64 sequences (`PROPTEST_CASES` to change); `make soak` runs many, with the seed
//! printed (`PROPTEST_RNG_SEED` replays it).

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use futures::future::join_all;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};
use serde_json::{json, Value};
use son1k::domain::tiers::{Quality, Tier};
use son1k_tests::model::{anchor_month, billing_month, Event, Limits, Model, Recorded, User};
use son1k_tests::stripe::{SubEvent, PRICE_CREATOR, PRICE_PRO, PRICE_STUDIO};
use son1k_tests::{at, As, TestApp, TestResponse};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// What the sequences exercised, printed at the end: outcomes by kind.
static TALLY: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());

fn tally(what: impl Into<String>) {
    *TALLY.lock().expect("tally").entry(what.into()).or_insert(0) += 1;
}

const USERS: usize = 3;
const MAX_STEPS: usize = 40;

#[derive(Debug, Clone, Copy)]
enum IdPick {
    New,
    /// One of the user's own earlier ids (a retry).
    Own(usize),
    /// An id another user recorded.
    Others(usize),
}

#[derive(Debug, Clone, Copy)]
enum Move {
    Secs(i64),
    /// To the next UTC midnight, plus `delta` seconds.
    Midnight(i64),
    /// To the end of the user's current period, plus `delta` seconds.
    PeriodEnd(usize, i64),
    /// To the end of the user's subscription period plus the 3-day grace, plus `delta` seconds.
    GraceEnd(usize, i64),
    NextMonth,
    Days(i64),
}

#[derive(Debug, Clone)]
enum Op {
    Record {
        user: usize,
        id: IdPick,
        quality: Quality,
    },
    Burst {
        user: usize,
        n: usize,
        quality: Quality,
    },
    Limits {
        user: usize,
        quality: Option<Quality>,
    },
    Grant {
        user: usize,
        tier: Tier,
    },
    Webhook {
        user: usize,
        /// 1 created, 2 updated, 3 deleted.
        rank: u8,
        status: &'static str,
        /// `None`: a price we do not sell.
        tier: Option<Tier>,
        /// Billing month relative to the one holding now.
        month: i64,
        cancel_at_period_end: bool,
        /// How long before now the event was created.
        age_secs: i64,
        no_period: bool,
        other_subscription: bool,
        period_on_subscription: bool,
    },
    /// Sends an earlier event again (a duplicate, and out of order once newer ones were sent).
    Redeliver(usize),
    Clock(Move),
    /// The scheduled housekeeping: it must change no answer.
    Reset,
}

fn quality() -> impl Strategy<Value = Quality> {
    prop_oneof![
        3 => Just(Quality::Standard),
        1 => Just(Quality::High),
        1 => Just(Quality::Ultra),
    ]
}

fn tier() -> impl Strategy<Value = Tier> {
    prop_oneof![
        Just(Tier::Free),
        Just(Tier::Creator),
        Just(Tier::Pro),
        Just(Tier::Studio)
    ]
}

fn status() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        4 => Just("active"),
        1 => Just("trialing"),
        2 => Just("past_due"),
        1 => Just("canceled"),
        2 => Just("unpaid"),
        1 => Just("incomplete"),
        1 => Just("incomplete_expired"),
        1 => Just("paused"),
    ]
}

fn webhook() -> impl Strategy<Value = Op> {
    (
        (0..USERS, 1u8..=3, status()),
        prop_oneof![
            6 => tier().prop_filter_map("paid", |t| t.is_paid().then_some(Some(t))),
            1 => Just(None)
        ],
        (
            prop_oneof![6 => Just(0i64), 1 => Just(-1), 2 => Just(1)],
            any::<bool>(),
        ),
        (
            prop_oneof![Just(0i64), 0i64..5, 0i64..7200],
            prop::bool::weighted(0.05),
            prop::bool::weighted(0.15),
            any::<bool>(),
        ),
    )
        .prop_map(
            |((user, rank, status), tier, (month, cancel), (age, no_period, other, on_sub))| {
                Op::Webhook {
                    user,
                    rank,
                    status: if rank == 3 { "canceled" } else { status },
                    tier,
                    month,
                    cancel_at_period_end: cancel && rank != 3,
                    age_secs: age,
                    no_period,
                    other_subscription: other,
                    period_on_subscription: on_sub,
                }
            },
        )
}

fn clock_move() -> impl Strategy<Value = Move> {
    prop_oneof![
        3 => (1i64..600).prop_map(Move::Secs),
        2 => (-1i64..=1).prop_map(Move::Midnight),
        2 => (0..USERS, -1i64..=1).prop_map(|(u, d)| Move::PeriodEnd(u, d)),
        1 => (0..USERS, -1i64..=1).prop_map(|(u, d)| Move::GraceEnd(u, d)),
        1 => Just(Move::NextMonth),
        1 => (1i64..12).prop_map(Move::Days),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let id = prop_oneof![
        6 => Just(IdPick::New),
        2 => (0usize..8).prop_map(IdPick::Own),
        1 => (0usize..8).prop_map(IdPick::Others),
    ];
    prop_oneof![
        10 => (0..USERS, id, quality()).prop_map(|(user, id, quality)| Op::Record { user, id, quality }),
        2 => (0..USERS, 2usize..9, quality()).prop_map(|(user, n, quality)| Op::Burst { user, n, quality }),
        // Large enough to spend a CREATOR month and to reach a 20th paid generation.
        1 => (0..USERS, 20usize..56).prop_map(|(user, n)| Op::Burst { user, n, quality: Quality::Standard }),
        4 => (0..USERS, prop::option::weighted(0.4, quality())).prop_map(|(user, quality)| Op::Limits { user, quality }),
        3 => (0..USERS, tier()).prop_map(|(user, tier)| Op::Grant { user, tier }),
        6 => webhook(),
        2 => (0usize..16).prop_map(Op::Redeliver),
        5 => clock_move().prop_map(Op::Clock),
        1 => Just(Op::Reset),
    ]
}

/// Where a sequence starts, and how long before it each user's billing cycle was anchored.
fn scenario() -> impl Strategy<Value = (&'static str, Vec<(i64, i64)>, Vec<Op>)> {
    (
        prop_oneof![
            Just("2026-11-26T10:00:00Z"),
            Just("2026-11-30T23:59:58Z"),
            Just("2026-12-31T23:59:59Z"),
            Just("2027-01-31T12:00:00Z"),
            Just("2027-01-30T23:59:59Z"),
            Just("2028-02-28T23:59:59Z"),
            Just("2028-02-29T08:00:00Z"),
        ],
        prop::collection::vec((0i64..45, 0i64..24), USERS),
        prop::collection::vec(op(), 1..=MAX_STEPS),
    )
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn quality_name(q: Quality) -> &'static str {
    match q {
        Quality::Standard => "standard",
        Quality::High => "high",
        Quality::Ultra => "ultra",
    }
}

fn price_of(tier: Option<Tier>) -> &'static str {
    match tier {
        Some(Tier::Creator) => PRICE_CREATOR,
        Some(Tier::Pro) => PRICE_PRO,
        Some(Tier::Studio) => PRICE_STUDIO,
        _ => "price_gold_lifetime",
    }
}

/// One sequence in progress: the app, the model, and what was sent.
struct Run<'a> {
    app: &'a TestApp,
    model: Model,
    case: String,
    next_id: usize,
    /// First answers of recorded generations, by id (replays must repeat them byte for byte).
    bodies: BTreeMap<String, Vec<u8>>,
    own: Vec<Vec<String>>,
    events: Vec<(usize, Value, Event)>,
}

type Step = Result<(), TestCaseError>;

macro_rules! check {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(TestCaseError::fail(format!($($fmt)+)));
        }
    };
}

impl<'a> Run<'a> {
    fn user_id(&self, user: usize) -> String {
        self.model.users[user].id.clone()
    }

    async fn step(&mut self, op: &Op) -> Step {
        match *op {
            Op::Record { user, id, quality } => self.record(user, id, quality).await,
            Op::Burst { user, n, quality } => self.burst(user, n, quality).await,
            Op::Limits { user, quality } => self.limits(user, quality).await,
            Op::Grant { user, tier } => self.grant(user, tier).await,
            Op::Webhook { .. } => self.webhook(op).await,
            Op::Redeliver(k) => self.redeliver(k).await,
            Op::Clock(to) => {
                self.move_clock(to);
                Ok(())
            }
            Op::Reset => {
                let event =
                    lambda_runtime::LambdaEvent::new(json!({"kind": "daily"}), Default::default());
                let report = scheduled_reset::handler(&self.app.state, event).await;
                check!(report.is_ok(), "scheduled-reset failed: {report:?}");
                Ok(())
            }
        }
    }

    fn pick_id(&mut self, user: usize, pick: IdPick) -> String {
        let others: Vec<String> = (0..USERS)
            .filter(|u| *u != user)
            .flat_map(|u| self.own[u].clone())
            .collect();
        let chosen = match pick {
            IdPick::Own(k) if !self.own[user].is_empty() => {
                Some(self.own[user][k % self.own[user].len()].clone())
            }
            IdPick::Others(k) if !others.is_empty() => Some(others[k % others.len()].clone()),
            _ => None,
        };
        chosen.unwrap_or_else(|| {
            self.next_id += 1;
            format!("{}-g{}", self.case, self.next_id)
        })
    }

    async fn post_record(&self, user: usize, id: &str, quality: Quality) -> TestResponse {
        let body = json!({"generation_id": id, "quality": quality_name(quality)});
        self.app.record(&self.user_id(user), body).await
    }

    async fn record(&mut self, user: usize, pick: IdPick, quality: Quality) -> Step {
        let id = self.pick_id(user, pick);
        let expected = self.model.record(user, &id, quality);
        tally(match &expected {
            Recorded::Created {
                contribution: Some(_),
                ..
            } => "record: 201 with a pool contribution",
            Recorded::Created { .. } => "record: 201",
            Recorded::Replayed => "record: 200 replay",
            Recorded::Taken => "record: 409 taken",
            Recorded::QualityRefused => "record: 403 quality",
            Recorded::LimitReached { code, .. } if *code == "daily_limit_reached" => {
                "record: 429 daily"
            }
            Recorded::LimitReached { .. } => "record: 429 monthly",
        });
        let res = self.post_record(user, &id, quality).await;
        self.compare_record(&expected, &res, &id)?;
        if matches!(expected, Recorded::Created { .. }) {
            self.bodies.insert(id.clone(), res.body.clone());
            self.own[user].push(id);
        }
        Ok(())
    }

    fn compare_record(&self, expected: &Recorded, res: &TestResponse, id: &str) -> Step {
        let got = || format!("{} {}", res.status, res.text());
        match expected {
            Recorded::Created {
                used,
                remaining,
                reset_at,
                contribution,
            } => {
                check!(
                    res.status == 201,
                    "{id}: expected 201 {expected:?}, got {}",
                    got()
                );
                let b = res.json();
                let points = b["pool_contribution"]["points"].as_u64();
                check!(
                    b["used"] == *used
                        && b["remaining"] == *remaining
                        && b["reset_at"] == rfc(*reset_at)
                        && points == contribution.map(u64::from),
                    "{id}: expected {expected:?}, got {}",
                    got()
                );
            }
            Recorded::Replayed => {
                check!(
                    res.status == 200 && self.bodies.get(id) == Some(&res.body),
                    "{id}: expected the replay of {:?}, got {}",
                    self.bodies
                        .get(id)
                        .map(|b| String::from_utf8_lossy(b).into_owned()),
                    got()
                );
            }
            Recorded::Taken => check!(
                res.status == 409 && res.json()["code"] == "generation_id_taken",
                "{id}: expected 409, got {}",
                got()
            ),
            Recorded::QualityRefused => check!(
                res.status == 403 && res.json()["code"] == "quality_not_in_tier",
                "{id}: expected 403, got {}",
                got()
            ),
            Recorded::LimitReached {
                code,
                limit,
                used,
                reset_at,
            } => {
                let b = res.json();
                check!(
                    res.status == 429
                        && b["code"] == *code
                        && b["limit"] == *limit
                        && b["used"] == *used
                        && b["reset_at"] == rfc(*reset_at),
                    "{id}: expected {expected:?}, got {}",
                    got()
                );
            }
        }
        Ok(())
    }

    /// `n` new generations at once: exactly the model's number succeed, with its `used` values and
    /// contributions; the rest get the model's refusal. Which ids won is the store's choice.
    async fn burst(&mut self, user: usize, n: usize, quality: Quality) -> Step {
        let ids: Vec<String> = (0..n).map(|_| self.pick_id(user, IdPick::New)).collect();
        let expected: Vec<Recorded> = ids
            .iter()
            .map(|id| self.model.record(user, id, quality))
            .collect();
        let answers = join_all(ids.iter().map(|id| self.post_record(user, id, quality))).await;
        // The model recorded the first ids; the store may have let others through.
        for (id, res) in ids.iter().zip(&answers) {
            self.model.generations.remove(id);
            if res.status == 201 {
                self.model.generations.insert(id.clone(), user);
                self.bodies.insert(id.clone(), res.body.clone());
                self.own[user].push(id.clone());
            }
        }
        let (want, got) = (
            BurstSummary::expected(&expected),
            BurstSummary::observed(&answers)?,
        );
        want.tally(n);
        check!(got == want, "burst of {n}: expected {want:?}, got {got:?}");
        Ok(())
    }

    async fn limits(&mut self, user: usize, quality: Option<Quality>) -> Step {
        let expected = self.model.limits(user, quality);
        tally(format!(
            "limits: {} {}",
            expected.tier.as_str(),
            expected.reason.unwrap_or("can generate")
        ));
        let query = quality.map_or(String::new(), |q| format!("?quality={}", quality_name(q)));
        let res = self
            .app
            .call(
                "GET",
                &format!("/api/tiers/limits/me{query}"),
                As::user(&self.user_id(user)),
                None,
            )
            .await;
        check!(res.status == 200, "limits: {} {}", res.status, res.text());
        compare_limits(&expected, &res.json())
    }

    async fn grant(&mut self, user: usize, tier: Tier) -> Step {
        let expected = self.model.grant(user, tier);
        let res = self
            .app
            .call(
                "PUT",
                &format!("/api/admin/users/{}/tier", self.user_id(user)),
                As::admin("ops"),
                Some(&json!({ "tier": tier }).to_string()),
            )
            .await;
        match expected {
            None => check!(
                res.status == 404,
                "grant to a user never seen: {} {}",
                res.status,
                res.text()
            ),
            Some(limits) => {
                check!(res.status == 200, "grant: {} {}", res.status, res.text());
                compare_limits(&limits, &res.json())?;
            }
        }
        Ok(())
    }

    async fn webhook(&mut self, op: &Op) -> Step {
        let Op::Webhook {
            user,
            rank,
            status,
            tier,
            month,
            cancel_at_period_end,
            age_secs,
            no_period,
            other_subscription,
            period_on_subscription,
        } = *op
        else {
            return Ok(());
        };
        let now = self.model.now;
        let anchor = self.model.users[user].anchor;
        let k = billing_month(anchor, now).0 + month;
        let (start, end) = (anchor_month(anchor, k), anchor_month(anchor, k + 1));
        let user_id = self.user_id(user);
        let subscription = format!("sub{}_{user_id}", if other_subscription { "2" } else { "" });
        let event = Event {
            id: format!("evt_{}", ulid::Ulid::generate()),
            rank,
            created: now - Duration::seconds(age_secs),
            subscription: subscription.clone(),
            status,
            tier,
            period: (!no_period).then_some((start, end)),
            anchor,
            cancel_at_period_end,
        };
        let json = SubEvent {
            id: event.id.clone(),
            kind: [
                "",
                "customer.subscription.created",
                "customer.subscription.updated",
                "customer.subscription.deleted",
            ][usize::from(rank)]
            .into(),
            created: rfc(event.created),
            subscription,
            status: status.into(),
            price: price_of(tier).into(),
            start: rfc(start),
            end: rfc(end),
            no_period,
            period_on_subscription,
            anchor: Some(rfc(anchor)),
            cancel_at_period_end,
            ..SubEvent::new(&user_id)
        }
        .json();
        self.events.push((user, json, event));
        self.deliver(self.events.len() - 1).await
    }

    async fn redeliver(&mut self, k: usize) -> Step {
        if self.events.is_empty() {
            return Ok(());
        }
        self.deliver(k % self.events.len()).await
    }

    async fn deliver(&mut self, index: usize) -> Step {
        let (user, json, event) = self.events[index].clone();
        let changed = self.model.webhook(user, &event);
        tally(if changed {
            "webhook: applied"
        } else {
            "webhook: changes nothing"
        });
        let res = self.app.webhook(&json).await;
        check!(
            res.status == 200 && res.json() == json!({"received": true}),
            "webhook {}: {} {}",
            event.id,
            res.status,
            res.text()
        );
        Ok(())
    }

    fn move_clock(&mut self, to: Move) {
        let now = self.model.now;
        let next = match to {
            Move::Secs(s) => now + Duration::seconds(s),
            Move::Midnight(d) => son1k_tests::model::utc_day(now).end + Duration::seconds(d),
            Move::PeriodEnd(u, d) => {
                self.model.users[u].entitlement(now).1.end + Duration::seconds(d)
            }
            Move::GraceEnd(u, d) => match &self.model.users[u].sub {
                Some(sub) => sub.end + son1k_tests::model::GRACE + Duration::seconds(d),
                None => now,
            },
            Move::NextMonth => anchor_month(now, 1),
            Move::Days(n) => now + Duration::days(n),
        };
        // Clocks only move forward here; two instances with different clocks are metering_periods'.
        tally(format!(
            "clock: {}",
            format!("{to:?}").split('(').next().unwrap_or("")
        ));
        if next > now {
            self.model.now = next;
            self.app.clock.set(next);
        }
    }

    /// After the sequence: every user who exists answers limits as the model says.
    async fn final_check(&mut self) -> Step {
        for user in 0..USERS {
            if self.model.users[user].exists {
                self.limits(user, None).await?;
            }
        }
        Ok(())
    }
}

/// A burst's answers, reduced to what does not depend on which request won: the `used` of the
/// successes, how many went to the pool, and the refusals.
#[derive(Debug, Default, PartialEq, Eq)]
struct BurstSummary {
    used: Vec<u64>,
    contributions: usize,
    refusals: Vec<String>,
}

impl BurstSummary {
    fn expected(outcomes: &[Recorded]) -> Self {
        let mut summary = Self::default();
        for outcome in outcomes {
            match outcome {
                Recorded::Created {
                    used, contribution, ..
                } => {
                    summary.used.push(u64::from(*used));
                    summary.contributions += usize::from(contribution.is_some());
                }
                Recorded::QualityRefused => summary.refusals.push("quality_not_in_tier".into()),
                Recorded::LimitReached { code, .. } => summary.refusals.push((*code).into()),
                other => summary.refusals.push(format!("{other:?}")),
            }
        }
        summary.sorted()
    }

    fn observed(answers: &[TestResponse]) -> Result<Self, TestCaseError> {
        let mut summary = Self::default();
        for res in answers {
            let body = res.json();
            match res.status {
                201 => {
                    summary.used.push(body["used"].as_u64().unwrap_or(0));
                    summary.contributions += usize::from(body["pool_contribution"].is_object());
                }
                403 | 429 => summary
                    .refusals
                    .push(body["code"].as_str().unwrap_or("?").into()),
                _ => {
                    return Err(TestCaseError::fail(format!(
                        "burst: {} {}",
                        res.status,
                        res.text()
                    )))
                }
            }
        }
        Ok(summary.sorted())
    }

    fn sorted(mut self) -> Self {
        self.used.sort_unstable();
        self.refusals.sort_unstable();
        self
    }

    fn tally(&self, n: usize) {
        tally(match self.used.len() {
            0 => "burst: none granted",
            k if k == n => "burst: all granted",
            _ => "burst: some granted",
        });
        if self.contributions > 0 {
            tally("burst: with pool contributions");
        }
        if self.refusals.iter().any(|r| r == "monthly_limit_reached") {
            tally("burst: 429 monthly");
        }
    }
}

fn compare_limits(expected: &Limits, got: &Value) -> Step {
    let want = json!({
        "tier": expected.tier.as_str(),
        "period": expected.period,
        "period_start": rfc(expected.period_start),
        "reset_at": rfc(expected.reset_at),
        "limit": expected.limit,
        "used": expected.used,
        "remaining": expected.remaining,
        "can_generate": expected.can_generate,
        "reason": expected.reason,
    });
    let seen: serde_json::Map<String, Value> = want
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| (k.clone(), got[k].clone()))
        .collect();
    check!(
        Value::Object(seen.clone()) == want,
        "limits: expected {want}, got {}",
        Value::Object(seen)
    );
    Ok(())
}

/// Sequences that share one set of tables; then they are dropped and fresh ones made, so that the
/// scheduled reset's scans stay short however long a soak runs.
const SEQUENCES_PER_TABLES: u32 = 25;

struct Harness {
    rt: tokio::runtime::Runtime,
    app: TestApp,
    used: u32,
}

thread_local! {
    /// One runtime and one set of tables for up to `SEQUENCES_PER_TABLES` sequences of this thread;
    /// each sequence has users of its own.
    static HARNESS: RefCell<Option<Harness>> = const { RefCell::new(None) };
}

fn run_sequence(start: &str, anchors: &[(i64, i64)], ops: &[Op]) -> Step {
    HARNESS.with(|cell| {
        let mut slot = cell.borrow_mut();
        let harness = slot.get_or_insert_with(|| {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            let app = rt.block_on(TestApp::spawn());
            Harness { rt, app, used: 0 }
        });
        if harness.used == SEQUENCES_PER_TABLES {
            harness.rt.block_on(harness.app.drop_tables());
            harness.app = harness.rt.block_on(TestApp::spawn());
            harness.used = 0;
        }
        harness.used += 1;
        let (rt, app) = (&harness.rt, &harness.app);
        rt.block_on(async {
            let now = at(start);
            app.clock.set(now);
            let case = ulid::Ulid::generate().to_string().to_lowercase();
            let users = anchors
                .iter()
                .enumerate()
                .map(|(i, (days, hours))| {
                    User::new(
                        format!("m{case}u{i}"),
                        now - Duration::days(*days) - Duration::hours(*hours),
                    )
                })
                .collect();
            let mut run = Run {
                app,
                model: Model::new(now, users),
                case,
                next_id: 0,
                bodies: BTreeMap::new(),
                own: vec![Vec::new(); USERS],
                events: Vec::new(),
            };
            for (i, op) in ops.iter().enumerate() {
                run.step(op).await.map_err(|e| {
                    TestCaseError::fail(format!("step {i} {op:?} at {}: {e}", rfc(run.model.now)))
                })?;
            }
            run.final_check().await.map_err(|e| {
                TestCaseError::fail(format!(
                    "after the last step, at {}: {e}",
                    rfc(run.model.now)
                ))
            })
        })
    })
}

#[test]
fn metering_and_billing_follow_the_model() {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(64);
    let config = Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/it/model.proptest-regressions"
        )))),
        source_file: Some(file!()),
        ..Config::default()
    };
    eprintln!(
        "model test: {cases} sequences of up to {MAX_STEPS} steps, seed {:?}",
        config.rng_seed
    );
    let mut runner = TestRunner::new(config);
    let started = std::time::Instant::now();
    let result = runner.run(&scenario(), |(start, anchors, ops)| {
        tally("sequences");
        for _ in &ops {
            tally("steps");
        }
        run_sequence(start, &anchors, &ops)
    });
    eprintln!("model test: {:.1} s", started.elapsed().as_secs_f64());
    for (what, n) in TALLY.lock().expect("tally").iter() {
        eprintln!("  {n:>7}  {what}");
    }
    if let Err(err) = result {
        panic!("{err}");
    }
}
