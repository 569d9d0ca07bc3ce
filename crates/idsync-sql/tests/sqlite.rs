//! SqlTarget and SqlStateStore on SQLite files.
#![expect(
    clippy::expect_used,
    clippy::panic,
    clippy::unwrap_used,
    reason = "test code: a failure fails the test"
)]

mod common;

fn url(dir: &tempfile::TempDir, name: &str) -> String {
    format!("sqlite://{}?mode=rwc", dir.path().join(name).display())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_target_passes_the_behaviour_suite() {
    let dir = tempfile::tempdir().unwrap();
    common::behaviour(&url(&dir, "app.db")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_target_passes_on_in_memory_sqlite() {
    common::behaviour("sqlite::memory:").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn custom_tables_pass_the_behaviour_suite() {
    let dir = tempfile::tempdir().unwrap();
    common::behaviour_custom(&url(&dir, "app.db")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_configuration_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    common::bad_config(&url(&dir, "app.db")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn state_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    common::state_round_trip(&url(&dir, "state.db")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn history_reads_back_the_last_runs() {
    let dir = tempfile::tempdir().unwrap();
    common::history(&url(&dir, "state.db")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn leases_never_overlap() {
    let dir = tempfile::tempdir().unwrap();
    common::two_workers_never_overlap(&url(&dir, "state.db"), 200).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fenced_writes_stop_at_a_take_over() {
    let dir = tempfile::tempdir().unwrap();
    common::fenced_writes_stop_at_a_take_over(&url(&dir, "state.db")).await;
}

#[tokio::test]
async fn a_bad_url_is_a_config_error() {
    let e = idsync_sql::SqlStateStore::connect("mysql://x").await.unwrap_err();
    assert_eq!(e.kind(), idsync_core::ErrorKind::Config);
    assert_eq!(e.field(), Some("url"));
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_creates_link_once() {
    let dir = tempfile::tempdir().unwrap();
    common::concurrent_creates_link_once(&url(&dir, "app.db")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn overlapping_user_and_group_row_ids_converge() {
    let dir = tempfile::tempdir().unwrap();
    common::overlapping_row_ids_converge(&url(&dir, "app.db")).await;
}

/// The commits in a SQLite database's write-ahead log: its frames that end
/// a transaction (a non-zero "database size after commit") and carry the
/// log's current salts.
fn wal_commits(db: &std::path::Path) -> usize {
    let wal = std::fs::read(format!("{}-wal", db.display())).unwrap_or_default();
    if wal.len() < 32 {
        return 0;
    }
    let word = |at: usize| u32::from_be_bytes(wal[at..at + 4].try_into().unwrap());
    let page = word(8) as usize;
    let salts = &wal[16..24];
    (32..wal.len())
        .step_by(24 + page)
        .take_while(|at| at + 24 + page <= wal.len())
        .filter(|&at| &wal[at + 8..at + 16] == salts && word(at + 4) != 0)
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_of_500_creates_commits_once() {
    let dir = tempfile::tempdir().unwrap();
    let t = idsync_sql::SqlTarget::connect(&url(&dir, "app.db"), Default::default())
        .await
        .unwrap();
    let path = dir.path().join("app.db");
    let before = wal_commits(&path);
    assert!(before > 0, "the schema was committed to the log");
    common::a_batch_of_creates(&t, idsync_core::ProfileId::new_random()).await;
    assert_eq!(wal_commits(&path), before + 1, "one transaction for the batch");
}

#[tokio::test(flavor = "multi_thread")]
async fn creates_in_a_batch_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    common::creates_in_a_batch_are_idempotent(&url(&dir, "app.db")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_bad_row_fails_alone_and_the_others_commit() {
    let dir = tempfile::tempdir().unwrap();
    let url = url(&dir, "app.db");
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query(&common::strict_users_ddl(idsync_sql::Dialect::Sqlite))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    common::one_bad_row_fails_alone(&url, false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn member_changes_in_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    common::members_in_a_batch(&url(&dir, "app.db")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_engine_run_of_1000_users_converges() {
    let dir = tempfile::tempdir().unwrap();
    common::an_engine_run_of_1000_users_converges(&url(&dir, "app.db")).await;
}

/// A column that changes the values written (INTEGER affinity turns "007"
/// into 7): the rows a multi-row INSERT returns cannot be matched to the
/// creates by their values, so the batch inserts them one by one, in the
/// same transaction, and every link still names its own row.
#[tokio::test(flavor = "multi_thread")]
async fn rows_whose_values_the_database_changes_link_to_the_right_row() {
    use idsync_core::Target;
    let logs = idsync_testkit::logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let url = url(&dir, "app.db");
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("CREATE TABLE typed_users (id INTEGER PRIMARY KEY, user_name TEXT, employee INTEGER)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let config: idsync_sql::SqlTargetConfig = serde_json::from_value(serde_json::json!({
        "users": {"table": "typed_users", "columns": {"userName": "user_name", "employee": "employee"}}
    }))
    .unwrap();
    let t = idsync_sql::SqlTarget::connect(&url, config).await.unwrap();
    let path = dir.path().join("app.db");
    let before = wal_commits(&path);
    let profile = idsync_core::ProfileId::new_random();
    let ops: Vec<idsync_core::TargetOp> = (0..50)
        .map(|n| idsync_core::TargetOp::Create {
            kind: idsync_core::ObjectKind::User,
            link: idsync_core::Link {
                profile,
                external: idsync_core::ExternalId(format!("t-{n}")),
            },
            fields: [("userName", format!("user{n}")), ("employee", format!("00{n}"))]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        })
        .collect();
    for r in t.apply_batch(&ops).await {
        r.unwrap();
    }
    assert_eq!(wal_commits(&path), before + 1, "one transaction for the batch");
    assert!(logs.text().contains("inserting them one by one"), "{}", logs.text());
    let accounts = common::linked(&t, profile).await;
    assert_eq!(accounts.len(), 50);
    for n in 0..50 {
        let a = &accounts[&format!("t-{n}")];
        assert_eq!(a.fields.get("userName"), Some(&format!("user{n}")));
        assert_eq!(a.fields.get("employee"), Some(&n.to_string()));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lookups_in_bulk() {
    let dir = tempfile::tempdir().unwrap();
    common::lookups_in_bulk(&url(&dir, "app.db")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_batches_link_once() {
    let dir = tempfile::tempdir().unwrap();
    common::concurrent_batches_link_once(&url(&dir, "app.db")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_claim_due_profiles() {
    let dir = tempfile::tempdir().unwrap();
    common::scheduling(&url(&dir, "state.db")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn object_history_finds_objects_by_id_and_name() {
    let dir = tempfile::tempdir().unwrap();
    common::object_history(&url(&dir, "state.db")).await;
}
