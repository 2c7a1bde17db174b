//! One owner per database: a lock held on one connection keeps every other session out until
//! that connection closes.

use app::ownership::{self, LockClass, LockKey};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection};

#[sqlx::test(migrations = false)]
async fn one_connection_owns_a_key_until_it_closes(_: PgPoolOptions, connect: PgConnectOptions) {
    let key = LockKey::new(LockClass::PROJECTION, "tickets");
    let mut first = PgConnection::connect_with(&connect).await.unwrap();
    let mut second = PgConnection::connect_with(&connect).await.unwrap();

    assert!(ownership::try_lock(&mut first, key).await.unwrap());
    assert!(
        ownership::try_lock(&mut first, key).await.unwrap(),
        "the owner asking again still owns it"
    );
    assert!(!ownership::try_lock(&mut second, key).await.unwrap());
    assert!(
        ownership::try_lock(
            &mut second,
            LockKey::new(LockClass::PROJECTION, "customers")
        )
        .await
        .unwrap(),
        "another name is another lock"
    );
    assert!(
        ownership::try_lock(&mut second, LockKey::new(LockClass::DELIVERY, "tickets"))
            .await
            .unwrap(),
        "another class is another lock"
    );

    ownership::release(first).await;
    assert!(ownership::try_lock(&mut second, key).await.unwrap());
}
