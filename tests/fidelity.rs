//! The server answers as `rebuy query` does (one SQL path), and a connection's sessions are
//! freed when new data arrives.

use crate::common::*;
use crate::server::{connect, simple_rows, sqlstate, start};

const TRUST: &str = "auth = \"trust\"\n";

/// Analyst SQL whose rows must be the same through `rebuy query` and over the wire. The
/// server used to wrap scalar subqueries in `max()` and to name columns differently.
const CORPUS: &[&str] = &[
    "SELECT (SELECT order_id FROM orders ORDER BY order_id LIMIT 1)",
    "SELECT c.customer_id, (SELECT count(*) FROM orders o WHERE o.customer_id = c.customer_id) FROM customers c ORDER BY 1 LIMIT 20",
    "SELECT (SELECT median_repurchase_interval_days(order_ts) FROM orders WHERE customer_id = 'c-0000004')",
    "SELECT region, count(*), sum(amount_usd) FROM orders GROUP BY region ORDER BY region",
    "SELECT 1.5 * 2, 10000000000000000.00, 7 / 2, 1 + 1",
    "SELECT customer_id, segment FROM customer_rfm ORDER BY customer_id LIMIT 20",
    "SELECT * FROM repurchase_rate ORDER BY region, category, first_purchase_month LIMIT 20",
    "SELECT count FROM (SELECT count(*) FROM orders) t",
    "SELECT amount, CAST(amount AS DOUBLE PRECISION) AS amount FROM orders ORDER BY order_id LIMIT 5",
    "SELECT (SELECT order_id FROM orders WHERE false) IS NULL",
];

/// `rebuy query --format csv` rows as text, NULL as None.
fn query_rows(data: &std::path::Path, sql: &str) -> Vec<Vec<Option<String>>> {
    let out = rebuy(data, &["query", sql, "--format", "csv"]);
    assert!(out.status.success(), "{sql}: {}", stderr(&out));
    let text = stdout(&out);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    reader
        .records()
        .map(|r| {
            r.unwrap()
                .iter()
                .map(|v| (!v.is_empty()).then(|| v.to_string()))
                .collect()
        })
        .collect()
}

/// The same value written two ways: the CLI prints Arrow's text, the wire PostgreSQL's
/// (`true`/`t`, `2026-06-01T10:00:00Z`/`2026-06-01 10:00:00+00`, float digits).
fn same_value(cli: &Option<String>, wire: &Option<String>) -> bool {
    match (cli, wire) {
        (None, None) => true,
        (Some(a), None) | (None, Some(a)) => a.is_empty(),
        (Some(a), Some(b)) => {
            if a == b {
                return true;
            }
            let bool_of = |s: &str| match s {
                "true" | "t" => Some(true),
                "false" | "f" => Some(false),
                _ => None,
            };
            if let (Some(x), Some(y)) = (bool_of(a), bool_of(b)) {
                return x == y;
            }
            if let (Ok(x), Ok(y)) = (a.parse::<f64>(), b.parse::<f64>()) {
                return (x - y).abs() <= 1e-9 * x.abs().max(1.0);
            }
            a.replace('T', " ").trim_end_matches('Z') == b.trim_end_matches("+00")
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analyst_sql_answers_the_same_through_query_and_serve() {
    let server = start(TRUST);
    let client = connect(server.port).await;
    for sql in CORPUS {
        let cli = query_rows(&server.data, sql);
        let wire = simple_rows(&client, sql).await;
        assert_eq!(cli.len(), wire.len(), "{sql}: row counts");
        for (a, b) in cli.iter().zip(&wire) {
            assert!(
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_value(x, y)),
                "{sql}:\n  rebuy query: {a:?}\n  rebuy serve: {b:?}"
            );
        }
    }
    // The same error, with PostgreSQL's code over the wire.
    let sql = "SELECT (SELECT order_id FROM orders)";
    let out = rebuy(&server.data, &["query", sql]);
    assert!(!out.status.success() && stderr(&out).contains("more than one row"));
    let err = client.simple_query(sql).await.unwrap_err();
    assert_eq!(sqlstate(&err), "21000");
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Each ingest makes the server build a new snapshot session, and each connection its own
/// from it. Those used to own themselves (the catalog schema held the session's catalog
/// list; `current_setting` held the session) and were never freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshes_under_a_running_server_keep_memory_flat() {
    let server = start(TRUST);
    let client = connect(server.port).await;
    let inputs = tempfile::tempdir().unwrap();
    let refreshes: usize = std::env::var("REBUY_REFRESHES")
        .ok()
        .and_then(|v| v.parse().ok())
        // 150 by default (~4 minutes in a debug build); the 1,000 with
        // REBUY_REFRESHES=1000.
        .unwrap_or(150);
    let mut samples = Vec::new();
    for i in 0..refreshes {
        let file = write(
            inputs.path(),
            "one.csv",
            &format!(
                "{ORDERS_HEADER}mem-{i},c-0000001,2026-06-01T10:00:00Z,10.00,USD,north_america,US,beauty,web,false,paid,0,\n"
            ),
        );
        let out = rebuy(&server.data, &["ingest", "orders", file.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
        let rows = simple_rows(
            &client,
            "SELECT count(*), current_setting('TimeZone') FROM orders",
        )
        .await;
        assert_eq!(rows[0][0].as_deref(), Some((3001 + i).to_string().as_str()));
        if i % 30 == 29 {
            // Idle a moment, as a server does between bursts: file-reading threads retire and
            // a query's working set is returned; what is left is what the server keeps.
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            samples.push(rss_kib(server.pid()));
        }
    }
    // It was ~8 MB more per refresh (1.5 GB after 150): snapshot sessions that owned
    // themselves, and an unbounded pool of file-reading threads each keeping its memory.
    eprintln!("resident KiB every 30 refreshes, over {refreshes}: {samples:?}");
    let (early, late) = (samples[0], samples[samples.len() - 1]);
    assert!(
        late < early + 48 * 1024,
        "memory kept grew from {early} KiB to {late} KiB over {refreshes} refreshes: {samples:?}"
    );
}

/// Every SQLSTATE the server sends for a statement, each from a statement that causes it,
/// over the simple protocol and again with Parse/Bind/Execute. (Login, connection-count and
/// memory codes — 28000, 28P01, 53200, 53300 — need their own setups: tests/server.rs and
/// tests/security.rs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sqlstate_the_server_sends_comes_from_its_cause() {
    let server = start(TRUST);
    let client = connect(server.port).await;
    let deep = format!("SELECT {}", vec!["1"; 2_000].join("+"));
    let cases: &[(&str, &str)] = &[
        ("SELEC 1", "42601"),
        ("SELECT * FROM no_such_table", "42P01"),
        ("SELECT no_such_column FROM orders", "42703"),
        ("SELECT customer_id FROM orders, customers", "42702"),
        ("SELECT * FROM orders, orders", "42712"),
        ("SELECT CAST(123456.7 AS numeric(5,2))", "22003"),
        ("SELECT no_such_function(1)", "42883"),
        ("SELECT 1/0", "22012"),
        ("SELECT CAST('x' AS INT)", "22P02"),
        ("SELECT rfm_segment(9, 1, 1)", "22023"),
        (
            "SELECT set_config('statement_timeout', 'soon', false)",
            "22023",
        ),
        ("SET statement_timeout = 'soon'", "22023"),
        ("SELECT (SELECT order_id FROM orders)", "21000"),
        ("SELECT $70000", "42P02"),
        (deep.as_str(), "54001"),
        ("SELECT repeat('x', 800000000)", "54000"),
        ("SHOW no_such_setting", "42704"),
        ("SET datafusion.sql_parser.dialect = 'mysql'", "42501"),
        ("DELETE FROM orders", "25006"),
        ("DECLARE c CURSOR FOR SELECT 1", "25P01"),
        ("FETCH 1 FROM no_such_cursor", "34000"),
        ("DECLARE s SCROLL CURSOR WITH HOLD FOR SELECT 1", "0A000"),
    ];
    for (sql, want) in cases {
        let simple = client.simple_query(sql).await.map(|_| ());
        let got = simple.as_ref().err().map(sqlstate);
        assert_eq!(got.as_deref(), Some(*want), "simple protocol: {sql}");
        if !sql.starts_with("SELEC ") {
            let extended = client.query(*sql, &[]).await.map(|_| ());
            let got = extended.as_ref().err().map(sqlstate);
            assert_eq!(got.as_deref(), Some(*want), "extended protocol: {sql}");
        }
    }
    // Cursor states: an existing name (42P03) and a backward fetch (55000).
    client
        .simple_query("DECLARE h CURSOR WITH HOLD FOR SELECT order_id FROM orders")
        .await
        .unwrap();
    let again = client
        .simple_query("DECLARE h CURSOR WITH HOLD FOR SELECT 1")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&again), "42P03");
    let back = client
        .simple_query("FETCH BACKWARD 1 FROM h")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&back), "55000");
    // A statement stopped by its timeout (57014), and the connection goes on.
    client
        .simple_query("SET statement_timeout = '1ms'")
        .await
        .unwrap();
    let slow = client
        // max() over an expression, not count(*): a count over a cross join can be answered
        // from the tables' row counts without running, and then no timeout ever fires.
        .simple_query(
            "SELECT max(a.order_id || b.order_id || c.order_id) \
             FROM orders a CROSS JOIN orders b CROSS JOIN orders c",
        )
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&slow), "57014");
    client
        .simple_query("RESET statement_timeout")
        .await
        .unwrap();
    assert_eq!(
        simple_rows(&client, "SELECT 1").await[0][0].as_deref(),
        Some("1")
    );
}
