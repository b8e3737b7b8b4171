//! `rebuy demo`, `rebuy query`, `rebuy tables` as a user runs them.

use crate::common::*;

#[test]
fn demo_is_deterministic_and_realistic() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    for d in [&a, &b] {
        let out = rebuy(d, &["demo", "--orders", "5000", "--seed", "7"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let summary = "SELECT COUNT(*), COUNT(DISTINCT customer_id), ROUND(SUM(amount_usd), 4), SUM(amount), MIN(order_ts), MAX(order_ts) FROM orders";
    assert_eq!(query(&a, summary), query(&b, summary));
    let rows = query(&a, "SELECT COUNT(*) FROM orders");
    assert_eq!(rows[0][0], "5000");
    // Every region, refunds and cancellations, subscriptions, one-time buyers in the majority.
    assert_eq!(
        query_one(&a, "SELECT COUNT(DISTINCT region) FROM orders"),
        "5"
    );
    let refunded: f64 = query_one(
        &a,
        "SELECT AVG(CASE WHEN status = 'refunded' THEN 1.0 ELSE 0.0 END) FROM orders",
    )
    .parse()
    .unwrap();
    assert!((0.015..0.05).contains(&refunded), "{refunded}");
    let subs: u64 = query_one(&a, "SELECT COUNT(*) FROM orders WHERE is_subscription")
        .parse()
        .unwrap();
    assert!(subs > 0);
    let once: f64 = query_one(&a, "SELECT AVG(CASE WHEN n = 1 THEN 1.0 ELSE 0.0 END) FROM (SELECT customer_id, COUNT(*) AS n FROM orders GROUP BY customer_id)").parse().unwrap();
    assert!(once > 0.5, "{once}");
    // Every order has a rate: no order was rejected, and amounts in USD are positive.
    assert_eq!(
        query_one(&a, "SELECT COUNT(*) FROM orders WHERE amount_usd <= 0"),
        "0"
    );
    let other = dir.path().join("c");
    let out = rebuy(&other, &["demo", "--orders", "5000", "--seed", "8"]);
    assert!(out.status.success());
    assert_ne!(query(&a, summary), query(&other, summary));
}

#[test]
fn query_formats_and_errors() {
    let fixture = crate::common::manifest_dir().join("data/fixture/warehouse");
    let tmp = tempfile::tempdir().unwrap();
    // Work on a copy: queries never write, but the fixture stays pristine regardless.
    let data = tmp.path().join("w");
    copy_dir(&fixture, &data);

    let table = rebuy(
        &data,
        &[
            "query",
            "SELECT region, COUNT(*) AS n FROM orders GROUP BY region ORDER BY region",
        ],
    );
    let text = stdout(&table);
    assert!(table.status.success(), "{}", stderr(&table));
    assert!(
        text.contains("| region |") && text.contains("(5 rows)"),
        "{text}"
    );

    let json = rebuy(
        &data,
        &["query", "--format", "json", "SELECT 1 AS a, 'x' AS b"],
    );
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value, serde_json::json!([{"a": 1, "b": "x"}]));

    let sql_file = tmp.path().join("q.sql");
    std::fs::write(&sql_file, "SELECT 1 AS one;\nSELECT 2 AS two;\n").unwrap();
    let out = rebuy(
        &data,
        &["query", "--format", "csv", "-f", sql_file.to_str().unwrap()],
    );
    assert_eq!(stdout(&out), "one\n1\ntwo\n2\n");

    // CSV of a result of many batches (formatted in parallel) comes out whole and in order; an
    // empty result still has its header.
    let out = rebuy(
        &data,
        &[
            "query",
            "--format",
            "csv",
            "SELECT value AS n, CAST(value AS VARCHAR) || 'x' AS s FROM range(100000) ORDER BY n",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("n,s"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 100_000);
    assert!(
        rows.iter()
            .enumerate()
            .all(|(i, l)| *l == format!("{i},{i}x"))
    );
    let out = rebuy(
        &data,
        &[
            "query",
            "--format",
            "csv",
            "SELECT 1 AS a, 2 AS b WHERE false",
        ],
    );
    assert_eq!(stdout(&out), "a,b\n");

    let cases = [
        ("SELECT (1 FROM orders", "Line: 1, Column: 11"),
        ("SELECT * FROM orders WHERE", "line 1, column 27"),
        ("SELECT amountt FROM orders", "line 1, column 8"),
        ("SELECT *\nFROM ordrs", "line 2, column 6"),
        ("SELECT no_such_fn(1)", "no_such_fn"),
    ];
    for (sql, expected) in cases {
        let out = rebuy(&data, &["query", sql]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{sql}");
        assert!(err.contains(expected), "{sql}: {err}");
        assert!(err.starts_with("error:"), "{err}");
    }
}

#[test]
fn partition_pruning_reads_only_matching_months() {
    let fixture = crate::common::manifest_dir().join("data/fixture/warehouse");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("w");
    copy_dir(&fixture, &data);
    let months: u64 = query_one(&data, "SELECT COUNT(DISTINCT order_month) FROM orders")
        .parse()
        .unwrap();
    assert!(months > 12);
    for filter in [
        "order_month = '2025-03'",
        "order_ts >= TIMESTAMP '2025-03-01T00:00:00Z' AND order_ts < TIMESTAMP '2025-04-01T00:00:00Z'",
    ] {
        let out = rebuy(
            &data,
            &[
                "query",
                "--format",
                "csv",
                &format!("EXPLAIN SELECT SUM(amount_usd) FROM orders WHERE {filter}"),
            ],
        );
        let plan = stdout(&out);
        assert!(out.status.success(), "{}", stderr(&out));
        let dirs: std::collections::BTreeSet<&str> = plan
            .match_indices("order_month=")
            .map(|(i, _)| &plan[i..i + 20])
            .collect();
        assert!(!dirs.is_empty(), "plan lists files: {plan}");
        assert!(
            dirs.iter().all(|d| d.starts_with("order_month=2025-03")),
            "{filter}: {dirs:?}\n{plan}"
        );
    }
}

#[test]
fn tables_lists_versions_and_counts() {
    let fixture = crate::common::manifest_dir().join("data/fixture/warehouse");
    let out = rebuy(&fixture, &["tables"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.contains("orders") && text.contains("fx_rates") && text.contains("customers"));
}

pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}
