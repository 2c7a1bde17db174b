//! Test databases against the real server `DATABASE_URL` names: created and migrated, and
//! dropped with their value, also when the test that held one panicked.

#![expect(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

use sqlx::{Connection, PgConnection};
use testkit::{DatabaseName, TestDatabase};

/// Whether the server has a database of that name.
async fn exists(name: &str) -> bool {
    let mut admin = PgConnection::connect(&testkit::database::server_url())
        .await
        .unwrap();
    let found: bool =
        sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
            .bind(name)
            .fetch_one(&mut admin)
            .await
            .unwrap();
    admin.close().await.unwrap();
    found
}

#[tokio::test]
async fn a_test_database_is_migrated_and_goes_with_its_value() {
    let database = TestDatabase::fresh("kit").await;
    let name = database.name().to_owned();
    assert!(database.url().ends_with(&name), "{}", database.url());
    let applied: i64 = sqlx::query_scalar("select count(*) from _sqlx_migrations where success")
        .fetch_one(database.pool())
        .await
        .unwrap();
    assert_eq!(
        usize::try_from(applied).unwrap(),
        app::database::MIGRATOR.iter().count()
    );
    assert!(exists(&name).await);
    drop(database);
    assert!(!exists(&name).await, "{name} is still there");
}

#[tokio::test]
async fn a_name_creates_nothing_and_drops_what_was_created_under_it() {
    let reserved = DatabaseName::fresh("kit_reserved");
    let name = reserved.name().to_owned();
    assert!(!exists(&name).await);
    // Someone else (the application under test) creates it.
    let pool = app::database::connect(reserved.url(), 2).await.unwrap();
    assert!(exists(&name).await);
    drop(reserved);
    assert!(!exists(&name).await, "{name} is still there");
    pool.close().await;
}

#[test]
fn the_database_of_a_test_that_panics_is_dropped_too() {
    let (sender, receiver) = std::sync::mpsc::channel();
    let failed = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let database = TestDatabase::fresh("kit_panics").await;
                sender.send(database.name().to_owned()).unwrap();
                panic!("the test fails while it holds {}", database.name());
            });
    })
    .join();
    assert!(failed.is_err(), "the test was to panic");
    let name = receiver.recv().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert!(!runtime.block_on(exists(&name)), "{name} was left behind");
}

#[test]
fn fresh_names_are_distinct_valid_and_short_enough() {
    let long = "a_tag_far_longer_than_any_database_name_may_be_at_all_really";
    let names: Vec<DatabaseName> = (0..3).map(|_| DatabaseName::fresh(long)).collect();
    for name in &names {
        assert!(name.name().len() <= 63, "{}", name.name());
        assert!(
            name.name().starts_with("ledgerdesk_test_a_tag"),
            "{}",
            name.name()
        );
    }
    assert_ne!(names[0].name(), names[1].name());
    assert_ne!(names[1].name(), names[2].name());
    assert_eq!(
        DatabaseName::fresh("Odd-Tag!").name().split('_').nth(2),
        Some("odd")
    );
}

#[test]
#[should_panic(expected = "lowercase ASCII letters")]
fn a_name_that_is_no_plain_identifier_is_refused() {
    let _ = DatabaseName::named("bench; drop database postgres");
}
