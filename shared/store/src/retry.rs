//! The pause between attempts that lost a race to another transaction: full jitter under a ceiling
//! of 5 ms doubling to 80 ms. Every retry loop is bounded by a number of attempts, never by time.

use std::time::Duration;

pub async fn pause(attempt: u32) {
    let ceiling = 5u64 << attempt.min(4);
    tokio::time::sleep(Duration::from_millis(fastrand::u64(0..=ceiling))).await;
}
