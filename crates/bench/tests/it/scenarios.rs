//! Small, bounded runs of the scenarios: they produce real figures from a
//! real worker (not a fixed result) and fail loudly when they cannot.

use cyrus_bench::scenarios::intake;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_commits_every_signed_delivery() {
    let figures = intake::run(intake::IntakeOptions {
        deliveries: 60,
        concurrency: 8,
        store_url: None,
    })
    .await
    .expect("scenario runs");
    let show = format!("{figures:#?}");
    let committed = figures.iter().find(|f| f.name == "committed").expect(&show);
    assert!(committed.value.is_some_and(|v| v > 0.0), "{show}");
    let rejected = figures
        .iter()
        .find(|f| f.name == "not accepted")
        .expect(&show);
    assert_eq!(rejected.value, Some(0.0), "{show}");
}
