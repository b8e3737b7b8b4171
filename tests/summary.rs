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
    "lifecycle_funnel",
    "reactivation",
    "replenishment_due",
    "referral_stats",
    "tier_stats",
    "acquisition_economics",
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

/// Views with columns from the lifetime-value fits: a fit stops where the optimizer's
/// tolerance is met, and another summation order of the same inputs moves that point by about
/// 1e-8 relative, so these compare at 1e-6.
const FITTED: &[&str] = &["tier_stats", "acquisition_economics"];

/// Equal, with floats equal up to summation order (1e-9 relative; 1e-6 for [`FITTED`]).
fn assert_same(a: &[Vec<String>], b: &[Vec<String>], what: &str) {
    let tolerance = if FITTED.contains(&what) { 1e-6 } else { 1e-9 };
    assert_eq!(a.len(), b.len(), "{what}: row counts");
    for (ra, rb) in a.iter().zip(b) {
        for (x, y) in ra.iter().zip(rb) {
            if x == y {
                continue;
            }
            let close = match (x.parse::<f64>(), y.parse::<f64>()) {
                (Ok(p), Ok(q)) => (p - q).abs() <= tolerance * p.abs().max(1.0),
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
    // Only new orders (an append): the two customers are recomputed, the rest kept.
    assert_eq!(customers_updated(&data), Some(2));
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

/// The summary's columns, lists as text, sorted by customer.
const BASE_ROWS: &str = "SELECT customer_id, first_purchase_ts, last_purchase_ts, order_count, purchase_days, \
     revenue_usd, mean_interval_days, median_interval_days, next_order_due, region, country, category, \
     is_subscriber, first_day, last_day, second_day, days_usd, first_day_usd, first_region, \
     first_category, array_to_string(gaps, ' '), cardinality(months), \
     r_score, f_score, m_score, revenue_before, revenue_total \
     FROM customer_base ORDER BY customer_id";

/// The summary's month lists, one row per customer and month.
const BASE_MONTHS: &str = "SELECT customer_id, m['month'], m['usd'] \
     FROM (SELECT customer_id, unnest(months) AS m FROM customer_base) ORDER BY 1, 2";

/// The `rebuy.customers_updated` of the summary's latest commit, if it has one.
fn customers_updated(data: &Path) -> Option<u64> {
    let log = data.join("customer_base/_delta_log");
    let latest = std::fs::read_dir(&log)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .max()
        .unwrap();
    let text = std::fs::read_to_string(latest).unwrap();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| {
            v.get("commitInfo")?
                .get("rebuy.customers_updated")?
                .as_u64()
        })
}

#[test]
fn an_ingest_recomputes_only_the_customers_it_touched() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_dir(&manifest_dir().join("data/fixture/warehouse"), &data);
    let q = |sql: &str| query_one(&data, &format!("SET rebuy.as_of = '2026-07-01'; {sql}"));
    // A customer with one purchase (their order gets cancelled), another whose first order moves
    // to a new customer, a third who gets an order in the middle of their history.
    let single = q(
        "SELECT customer_id FROM customer_summary WHERE order_count = 1 ORDER BY customer_id LIMIT 1",
    );
    let single_order = q(&format!(
        "SELECT order_id FROM purchases WHERE customer_id = '{single}'"
    ));
    let mover = q(&format!(
        "SELECT customer_id FROM customer_summary WHERE purchase_days >= 3 AND customer_id <> '{single}' ORDER BY customer_id LIMIT 1"
    ));
    let moved_order = q(&format!(
        "SELECT order_id FROM purchases WHERE customer_id = '{mover}' ORDER BY order_ts, order_id LIMIT 1"
    ));
    let gainer = q(&format!(
        "SELECT customer_id FROM customer_summary WHERE purchase_days >= 2 AND customer_id NOT IN ('{single}', '{mover}') ORDER BY revenue_usd DESC, customer_id LIMIT 1"
    ));
    let orders = format!(
        "{ORDERS_HEADER}{single_order},{single},2026-03-02T10:00:00Z,10.00,USD,NA,US,fmcg,organic,false,cancelled,0,\n\
         {moved_order},c-moved-to,2026-03-03T10:00:00Z,30.00,EUR,EU,DE,beauty,paid,false,completed,0,\n\
         mid-1,{gainer},2026-03-04T10:00:00Z,55.00,USD,NA,US,fmcg,organic,false,completed,0,\n\
         mid-2,c-new-1,2026-06-15T10:00:00Z,25.00,GBP,EU,GB,beauty,paid,false,completed,0,\n"
    );
    let file = write(dir.path(), "changes.csv", &orders);
    let out = rebuy(&data, &["ingest", "orders", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Five customers computed again: the single buyer (now gone), the mover and the customer
    // the order moved to, the gainer, the new customer.
    assert_eq!(customers_updated(&data), Some(5));
    assert!(usable(&data, "2026-07-01"));
    assert_eq!(
        q(&format!(
            "SELECT COUNT(*) FROM customer_base WHERE customer_id = '{single}'"
        )),
        "0"
    );
    assert_eq!(
        q("SELECT purchase_days FROM customer_summary WHERE customer_id = 'c-moved-to'"),
        "1"
    );
    let updated = (query(&data, BASE_ROWS), query(&data, BASE_MONTHS));
    // The views over the updated summary answer as the computation from orders...
    for view in VIEWS {
        assert_same(
            &rows(&data, view, "2026-07-01", true),
            &rows(&data, view, "2026-07-01", false),
            view,
        );
    }
    // ...and the summary is the one a full rewrite makes (rankings included).
    std::fs::remove_dir_all(data.join("customer_base")).unwrap();
    let header = write(dir.path(), "header.csv", ORDERS_HEADER);
    let out = rebuy(&data, &["ingest", "orders", header.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(customers_updated(&data), None);
    assert_same(&updated.0, &query(&data, BASE_ROWS), "customer_base");
    assert_same(
        &updated.1,
        &query(&data, BASE_MONTHS),
        "customer_base months",
    );
}
