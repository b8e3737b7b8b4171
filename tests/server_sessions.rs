//! A `rebuy serve` connection as a session: its settings, its time zone, and the commits it
//! sees while it stays open.

use std::time::Duration;

use crate::common::*;
use crate::server::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_are_per_connection_and_answer_like_postgres() {
    let server = start(TRUST);
    let a = connect(server.port).await;
    let b = connect(server.port).await;
    a.batch_execute("SET rebuy.as_of = '2025-01-01'")
        .await
        .unwrap();
    let as_of_a = simple_rows(&a, "SELECT CAST(as_of() AS VARCHAR)").await;
    assert_eq!(as_of_a[0][0].as_deref(), Some("2025-01-01"));
    let shown = simple_rows(&a, "SHOW rebuy.as_of").await;
    assert_eq!(shown[0][0].as_deref(), Some("2025-01-01"));
    let as_of_b = simple_rows(&b, "SELECT CAST(as_of() AS VARCHAR)").await;
    assert_ne!(as_of_b[0][0].as_deref(), Some("2025-01-01"));
    let version = simple_rows(&a, "SELECT version()").await;
    assert!(
        version[0][0]
            .as_deref()
            .unwrap()
            .starts_with("PostgreSQL 16")
    );
    let who = simple_rows(
        &a,
        "SELECT current_user, current_database(), current_schema()",
    )
    .await;
    assert_eq!(
        who[0],
        vec![
            Some("analyst".into()),
            Some("rebuy".into()),
            Some("public".into())
        ]
    );
    a.batch_execute("SET statement_timeout = '2s'; SET application_name = 'tests'")
        .await
        .unwrap();
    assert_eq!(
        simple_rows(&a, "SHOW statement_timeout").await[0][0].as_deref(),
        Some("2s")
    );
    assert_eq!(
        simple_rows(&a, "SELECT current_setting('application_name')").await[0][0].as_deref(),
        Some("tests")
    );
    a.batch_execute("BEGIN; SELECT 1; COMMIT; ROLLBACK; DISCARD ALL")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_commits_are_seen_without_a_restart() {
    let server = start(TRUST);
    let client = connect(server.port).await;
    let before: i64 = client
        .query_one("SELECT COUNT(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    // A statement prepared before the commit (as pgjdbc and psycopg do after a few runs, and
    // BI tools for their dashboards) answers from the new data too.
    let kept = client
        .prepare("SELECT COUNT(*) FROM orders WHERE customer_id <> $1")
        .await
        .unwrap();
    let kept_before: i64 = client.query_one(&kept, &[&"nobody"]).await.unwrap().get(0);
    assert_eq!(kept_before, before);
    let inputs = tempfile::tempdir().unwrap();
    let file = write(
        inputs.path(),
        "more.csv",
        &format!(
            "{ORDERS_HEADER}srv-new-1,srv-cust-1,2026-06-01T10:00:00Z,10.00,USD,north_america,US,beauty,web,false,paid,0,\n"
        ),
    );
    let out = rebuy(&server.data, &["ingest", "orders", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let after: i64 = client
        .query_one("SELECT COUNT(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(after, before + 1);
    // Twice: the second run takes the plan made again for this snapshot.
    for _ in 0..2 {
        let kept_after: i64 = client
            .query_one(&kept, &[&"srv-cust-1"])
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            kept_after,
            after - count_of(&client, "srv-cust-1").await,
            "a prepared statement still reads the old snapshot"
        );
    }
}

async fn count_of(client: &tokio_postgres::Client, customer: &str) -> i64 {
    client
        .query_one(
            "SELECT COUNT(*) FROM orders WHERE customer_id = $1",
            &[&customer],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_with_time_zone_show_in_the_session_time_zone() {
    let server = start(TRUST);
    let client = connect(server.port).await;
    // 2026-07-01 12:34:56 UTC.
    let sql = "SELECT to_timestamp_seconds(1782909296) AT TIME ZONE 'UTC' AS tstz, \
               TIMESTAMP '2026-07-01 12:34:56' AS ts";
    let shown = |rows: Vec<Vec<Option<String>>>| (rows[0][0].clone(), rows[0][1].clone());
    assert_eq!(
        shown(simple_rows(&client, sql).await),
        (
            Some("2026-07-01 12:34:56+00".into()),
            Some("2026-07-01 12:34:56".into())
        )
    );
    // Names in any case, as PostgreSQL takes them; a plain timestamp is not moved.
    for (zone, expected) in [
        ("Asia/Tokyo", "2026-07-01 21:34:56+09"),
        ("america/new_york", "2026-07-01 08:34:56-04"),
        ("+05:30", "2026-07-01 18:04:56+05:30"),
        ("Asia/Kolkata", "2026-07-01 18:04:56+05:30"),
    ] {
        simple_rows(&client, &format!("SET TimeZone = '{zone}'")).await;
        assert_eq!(
            shown(simple_rows(&client, sql).await),
            (Some(expected.into()), Some("2026-07-01 12:34:56".into())),
            "{zone}"
        );
    }
    // The same instant over the extended protocol, in binary.
    let row = client.query_one(sql, &[]).await.unwrap();
    assert_eq!(
        row.get::<_, chrono::DateTime<chrono::Utc>>("tstz")
            .to_rfc3339(),
        "2026-07-01T12:34:56+00:00"
    );
    // Each statement has its own now(), in both protocols and for a statement prepared once
    // (one connection's statements share a cached snapshot of the engine's state).
    let now = "SELECT CAST(now() AS text)";
    let prepared = client.prepare(now).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(simple_rows(&client, now).await[0][0].clone());
        seen.push(client.query_one(&prepared, &[]).await.unwrap().get(0));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let distinct: std::collections::BTreeSet<_> = seen.iter().collect();
    assert_eq!(distinct.len(), seen.len(), "{seen:?}");
    // Fractions as PostgreSQL prints them.
    let fraction = simple_rows(
        &client,
        "SELECT to_timestamp_micros(1782909296500000) AT TIME ZONE 'UTC'",
    )
    .await;
    assert_eq!(
        fraction[0][0].as_deref(),
        Some("2026-07-01 18:04:56.5+05:30")
    );
    // An unknown zone is refused and the session keeps its zone.
    let e = client
        .batch_execute("SET TimeZone = 'Mars/Olympus'")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "22023", "{e}");
    simple_rows(&client, "SET TIME ZONE 'UTC'").await;
    assert_eq!(
        shown(simple_rows(&client, sql).await).0.as_deref(),
        Some("2026-07-01 12:34:56+00")
    );
}
