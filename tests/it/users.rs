//! Create-on-first-request under races: parallel first requests make exactly one user.

use son1k_tests::{As, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn twenty_parallel_first_requests_make_one_user() {
    let app = std::sync::Arc::new(TestApp::spawn().await);
    for round in 0..5 {
        let user = format!("racer-{round}");
        let calls = (0..20).map(|i| {
            let app = app.clone();
            let user = user.clone();
            tokio::spawn(async move {
                // Each racer's token carries a different email, so a second create would be visible.
                app.clock.advance(chrono::Duration::milliseconds(i));
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
        let items = app
            .items(&app.state.config.users_table, &format!("USER#{user}"))
            .await;
        assert_eq!(items.len(), 1, "round {round}: one user item");
    }
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
