//! SqlTarget, SqlStateStore and leases on a real, throwaway PostgreSQL.

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
