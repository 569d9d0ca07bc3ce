//! SqlTarget and SqlStateStore on SQLite files.

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
    assert_eq!(e.field_name(), Some("url"));
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
