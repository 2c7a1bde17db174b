//! The database set-up: readiness follows the migrations.

use app::database::{self, MIGRATOR, NotReady};
use sqlx::PgPool;

#[sqlx::test(migrator = "app::database::MIGRATOR")]
async fn readiness_reports_a_migrated_database(pool: PgPool) {
    assert_eq!(database::readiness(&pool).await, Ok(()));
}

#[sqlx::test(migrations = false)]
async fn readiness_reports_pending_migrations(pool: PgPool) {
    assert_eq!(
        database::readiness(&pool).await,
        Err(NotReady::DatabaseUnreachable),
        "no migration table yet"
    );
    database::migrate(&pool).await.unwrap();
    sqlx::query(
        "delete from _sqlx_migrations where version = (select max(version) from _sqlx_migrations)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let known = MIGRATOR.iter().count();
    assert_eq!(
        database::readiness(&pool).await,
        Err(NotReady::MigrationsPending {
            applied: known - 1,
            known
        })
    );
}
