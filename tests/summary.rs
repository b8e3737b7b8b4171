//! The customer summary kept by ingest (`customer_base`): the per-customer views read it when it
//! stands in exactly, and give the same answers as computing from orders, for today and for a
//! past as-of date, before and after new orders arrive, and when the summary is missing.

use std::path::Path;

use crate::common::*;

const VIEWS: &[&str] = &[
    "customer_summary",
    "customer_rfm",
    "customer_layers",
    "winback_candidates",
    "repurchase_rate",
    "cohort_retention",
    "interval_stats",
];

/// Every row of `view` at `as_of`, sorted, with the summary used or not.
fn rows(data: &Path, view: &str, as_of: &str, use_base: bool) -> Vec<Vec<String>> {
    let mut r = query(
        data,
        &format!(
            "SET rebuy.as_of = '{as_of}'; SET rebuy.use_customer_base = {}; SELECT * FROM {view}",
            u8::from(use_base)
        ),
    );
    r.sort();
    r
}

fn usable(data: &Path, as_of: &str) -> bool {
    query_one(
        data,
        &format!("SET rebuy.as_of = '{as_of}'; SELECT customer_base_usable()"),
    ) == "true"
}

/// Equal, with floats equal up to summation order (1e-9 relative).
fn assert_same(a: &[Vec<String>], b: &[Vec<String>], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: row counts");
    for (ra, rb) in a.iter().zip(b) {
        for (x, y) in ra.iter().zip(rb) {
            if x == y {
                continue;
            }
            let close = match (x.parse::<f64>(), y.parse::<f64>()) {
                (Ok(p), Ok(q)) => (p - q).abs() <= 1e-9 * p.abs().max(1.0),
                _ => false,
            };
            assert!(close, "{what}: {x} vs {y} in {ra:?} / {rb:?}");
        }
    }
}

#[test]
fn the_kept_summary_gives_the_answers_of_the_computation_from_orders() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_dir(&manifest_dir().join("data/fixture/warehouse"), &data);

    // The fixture's last order is on 2026-06-30: the summary stands in from 2026-06-30 on.
    assert!(usable(&data, "2026-07-01"));
    assert!(usable(&data, "2026-06-30"));
    assert!(!usable(&data, "2026-06-29"));
    let mut before = Vec::new();
    for view in VIEWS {
        let fast = rows(&data, view, "2026-07-01", true);
        assert!(!fast.is_empty(), "{view}");
        assert_same(&fast, &rows(&data, view, "2026-07-01", false), view);
        before.push(fast);
    }
    // The plan does not read orders when the summary is used.
    let plan = query(
        &data,
        "SET rebuy.as_of = '2026-07-01'; EXPLAIN SELECT * FROM customer_rfm",
    );
    let plan = format!("{plan:?}");
    assert!(!plan.contains("TableScan: orders"), "{plan}");
    assert!(plan.contains("customer_base"), "{plan}");
    // The lifetime-value inputs read no column of customers: the join to it is left out
    // (customers has one row per customer_id); asking for the member tier keeps it.
    let ltv_inputs =
        "SELECT customer_id, frequency, recency, t, monetary_value FROM customer_summary";
    let plan = format!(
        "{:?}",
        query(
            &data,
            &format!("SET rebuy.as_of = '2026-07-01'; EXPLAIN {ltv_inputs}")
        )
    );
    assert!(!plan.contains("TableScan: customers"), "{plan}");
    let plan = format!(
        "{:?}",
        query(
            &data,
            "SET rebuy.as_of = '2026-07-01'; EXPLAIN SELECT customer_id, member_tier FROM customer_summary"
        )
    );
    assert!(plan.contains("TableScan: customers"), "{plan}");
    let inputs = query(
        &data,
        &format!("SET rebuy.as_of = '2026-07-01'; {ltv_inputs}"),
    );
    let customers = query_one(
        &data,
        "SET rebuy.as_of = '2026-07-01'; SELECT COUNT(DISTINCT customer_id) FROM orders \
         WHERE status = 'completed' AND amount > 0 AND CAST(order_ts AS DATE) <= DATE '2026-07-01'",
    );
    assert_eq!(inputs.len().to_string(), customers);

    // New orders after 2026-06-30: the summary follows them...
    let top = query_one(
        &data,
        "SELECT customer_id FROM customer_summary ORDER BY revenue_usd DESC, customer_id LIMIT 1",
    );
    let orders = format!(
        "{ORDERS_HEADER}late-1,{top},2026-07-05T10:00:00Z,40.00,USD,NA,US,fmcg,organic,false,completed,0,\n\
         late-2,c-new-9,2026-07-06T10:00:00Z,25.00,USD,EU,DE,beauty,paid,false,completed,0,\n"
    );
    let file = write(dir.path(), "late.csv", &orders);
    let out = rebuy(&data, &["ingest", "orders", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(usable(&data, "2026-07-06"));
    assert!(!usable(&data, "2026-07-05"));
    for view in VIEWS {
        assert_same(
            &rows(&data, view, "2026-07-06", true),
            &rows(&data, view, "2026-07-06", false),
            view,
        );
    }
    assert_eq!(
        query_one(
            &data,
            "SET rebuy.as_of = '2026-07-06'; SELECT purchase_days FROM customer_summary WHERE customer_id = 'c-new-9'"
        ),
        "1"
    );
    // ...and a past as-of date still shows the store as it was then.
    for (view, old) in VIEWS.iter().zip(&before) {
        assert_same(&rows(&data, view, "2026-07-01", true), old, view);
    }

    // Without the summary (never made, or lost), the same answers from orders.
    std::fs::remove_dir_all(data.join("customer_base")).unwrap();
    assert!(!usable(&data, "2026-07-06"));
    for (view, old) in VIEWS.iter().zip(&before) {
        assert_same(&rows(&data, view, "2026-07-01", true), old, view);
    }
}
