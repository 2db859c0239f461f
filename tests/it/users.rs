//! Create-on-first-request under races: parallel first requests make exactly one user.

use son1k_app::ports::Users;
use son1k_tests::{As, TestApp};

/// Twenty first requests of one new user at once: several of them find no user and try to create
/// it, exactly one create lands (a second one would overwrite the first user's item and whatever it
/// already spent), and every racer is answered from that one user.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn twenty_parallel_first_requests_make_one_user() {
    let outcomes = son1k_tests::faults::Outcomes::new();
    let mut app = TestApp::spawn().await;
    app.intercept(outcomes.clone());
    let app = std::sync::Arc::new(app);
    let mut raced = 0;
    for round in 0..5 {
        let user = format!("racer-{round}");
        let calls = (0..20).map(|_| {
            let app = app.clone();
            let user = user.clone();
            tokio::spawn(async move {
                app.call("GET", "/api/tiers/limits/me", As::user(&user), None)
                    .await
            })
        });
        let responses = futures::future::join_all(calls).await;
        assert!(
            responses
                .iter()
                .all(|r| r.as_ref().is_ok_and(|r| r.status == 200)),
            "every racer gets 200"
        );
        let creates: Vec<u16> = outcomes
            .take()
            .into_iter()
            .filter(|(operation, _)| operation == "PutItem")
            .map(|(_, status)| status)
            .collect();
        assert_eq!(
            creates.iter().filter(|s| **s == 200).count(),
            1,
            "round {round}: exactly one create landed of {creates:?}"
        );
        raced += usize::from(creates.len() > 1);
    }
    // Without two creates at once in some round the test would prove nothing.
    assert!(
        raced > 0,
        "no round had two racers creating the user at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn racing_creates_all_return_the_one_stored_record() {
    let app = std::sync::Arc::new(TestApp::spawn().await);
    let calls = (0..20).map(|i| {
        let app = app.clone();
        tokio::spawn(async move {
            let mut record = app.new_user("same");
            record.username = Some(format!("racer {i}"));
            app.state.users().create(record).await.expect("create")
        })
    });
    let results: Vec<_> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.expect("join"))
        .collect();
    assert_eq!(
        results.iter().filter(|(_, created)| *created).count(),
        1,
        "exactly one create wins"
    );
    let winner = results
        .iter()
        .find(|(_, created)| *created)
        .map(|(r, _)| r.clone())
        .expect("a winner");
    assert!(
        results.iter().all(|(r, _)| *r == winner),
        "losers see the winner's record"
    );
    let stored = app
        .state
        .users()
        .get(&winner.user_id)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(stored, winner);
}
