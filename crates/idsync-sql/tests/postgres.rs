//! SqlTarget, SqlStateStore and leases on a real, throwaway PostgreSQL.
#![expect(
    clippy::expect_used,
    clippy::panic,
    clippy::unwrap_used,
    reason = "test code: a failure fails the test"
)]

use idsync_testkit::postgres::postgres;

mod common;

#[tokio::test(flavor = "multi_thread")]
async fn the_target_passes_the_behaviour_suite() {
    let Some(pg) = postgres().await else {
        return;
    };
    common::behaviour(&pg.url()).await;
    common::behaviour_custom(&pg.url()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn overlapping_user_and_group_row_ids_converge() {
    let Some(pg) = postgres().await else {
        return;
    };
    common::overlapping_row_ids_converge(&pg.url()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_configuration_names_the_field() {
    let Some(pg) = postgres().await else {
        return;
    };
    common::bad_config(&pg.url()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn state_and_history_round_trip() {
    let Some(pg) = postgres().await else {
        return;
    };
    common::state_round_trip(&pg.url()).await;
    common::history(&pg.url()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_workers_never_hold_the_same_profile() {
    let Some(pg) = postgres().await else {
        return;
    };
    common::two_workers_never_overlap(&pg.url(), 300).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fenced_writes_stop_at_a_take_over() {
    let Some(pg) = postgres().await else {
        return;
    };
    common::fenced_writes_stop_at_a_take_over(&pg.url()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_creates_link_once() {
    let Some(pg) = postgres().await else {
        return;
    };
    common::concurrent_creates_link_once(&pg.url()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_of_500_creates_commits_once() {
    let Some(pg) = postgres().await else {
        return;
    };
    let t = idsync_sql::SqlTarget::connect(&pg.url(), Default::default())
        .await
        .unwrap();
    // Each INSERT statement on the users and links tables logs its table
    // and its (top-level) transaction.
    let pool = sqlx::PgPool::connect(&pg.url()).await.unwrap();
    for ddl in [
        "CREATE TABLE tx_log (tbl TEXT NOT NULL, tx BIGINT NOT NULL)",
        "CREATE FUNCTION log_tx() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN INSERT INTO tx_log VALUES (TG_TABLE_NAME, txid_current()); RETURN NULL; END $$",
        "CREATE TRIGGER users_tx AFTER INSERT ON idsync_users FOR EACH STATEMENT EXECUTE FUNCTION log_tx()",
        "CREATE TRIGGER links_tx AFTER INSERT ON idsync_links FOR EACH STATEMENT EXECUTE FUNCTION log_tx()",
    ] {
        sqlx::query(ddl).execute(&pool).await.unwrap();
    }
    common::a_batch_of_creates(&t, idsync_core::ProfileId::new_random()).await;
    let log: Vec<(String, i64)> = sqlx::query_as("SELECT tbl, tx FROM tx_log ORDER BY tbl")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(log.len(), 2, "one INSERT of the 500 users, one of their links: {log:?}");
    assert_eq!(log[0].1, log[1].1, "in one transaction: {log:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn creates_in_a_batch_are_idempotent() {
    let Some(pg) = postgres().await else {
        return;
    };
    common::creates_in_a_batch_are_idempotent(&pg.url()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_bad_row_fails_alone_and_the_others_commit() {
    let Some(pg) = postgres().await else {
        return;
    };
    let pool = sqlx::PgPool::connect(&pg.url()).await.unwrap();
    sqlx::query(&common::strict_users_ddl(idsync_sql::Dialect::Postgres))
        .execute(&pool)
        .await
        .unwrap();
    common::one_bad_row_fails_alone(&pg.url(), true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn member_changes_in_a_batch() {
    let Some(pg) = postgres().await else {
        return;
    };
    common::members_in_a_batch(&pg.url()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lookups_in_bulk() {
    let Some(pg) = postgres().await else {
        return;
    };
    common::lookups_in_bulk(&pg.url()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_batches_link_once() {
    let Some(pg) = postgres().await else {
        return;
    };
    common::concurrent_batches_link_once(&pg.url()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_claim_due_profiles() {
    let Some(pg) = postgres().await else {
        return;
    };
    common::scheduling(&pg.url()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn object_history_finds_objects_by_id_and_name() {
    let Some(pg) = postgres().await else {
        return;
    };
    common::object_history(&pg.url()).await;
}
