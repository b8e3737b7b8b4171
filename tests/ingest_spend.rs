//! `rebuy ingest marketing_spend`: the fourth input table, validated, converted to USD at the
//! day's rate and upserted by (spend_date, channel, region, currency), where a NULL region is
//! a key value like any other.

use crate::common::*;

const HEADER: &str = "spend_date,channel,region,amount,currency\n";

#[test]
fn spend_is_validated_converted_and_upserted_by_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = warehouse_with_fx(dir.path());
    let first = write(
        dir.path(),
        "spend1.csv",
        &format!(
            "{HEADER}2025-01-05,Paid,EU,100.00,EUR\n\
             2025-01-05,paid,,50.00,USD\n\
             2025-01-05,social,NA,20.00,USD\n\
             2025-01-06,paid,EU,-1.00,EUR\n\
             2024-12-31,paid,EU,10.00,EUR\n\
             2025-01-06,,EU,10.00,EUR\n\
             01/07/2025,paid,EU,10.00,EUR\n\
             2025-01-07,paid,EU,ten,EUR\n"
        ),
    );
    let out = rebuy(
        &data,
        &["ingest", "marketing_spend", first.to_str().unwrap()],
    );
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{report}{}", stderr(&out));
    assert_eq!(count(&report, "accepted"), 3, "{report}");
    assert_eq!(count(&report, "rejected"), 5, "{report}");
    let rejects = std::fs::read_dir(data.join("_rejects"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<String>();
    for (line, column, reason) in [
        (5, "amount", "negative"),
        (6, "currency", "missing fx rate"),
        (7, "channel", "missing"),
        (8, "spend_date", ""),
        (9, "amount", "not a number"),
    ] {
        assert!(
            rejects
                .lines()
                .any(|l| l.contains(&format!(",{line},{column},")) && l.contains(reason)),
            "line {line} should be rejected at {column} ({reason}): {rejects}"
        );
    }
    // Channels are lower-cased as in orders; EUR at the rate of 2025-01-05 (1.10).
    assert_eq!(
        query(
            &data,
            "SELECT CAST(spend_date AS VARCHAR), channel, COALESCE(region, '-'), amount, currency, ROUND(amount_usd, 6) \
             FROM marketing_spend ORDER BY channel, region NULLS FIRST"
        ),
        vec![
            vec!["2025-01-05", "paid", "-", "50.00", "USD", "50.0"],
            vec!["2025-01-05", "paid", "EU", "100.00", "EUR", "110.0"],
            vec!["2025-01-05", "social", "NA", "20.00", "USD", "20.0"],
        ]
    );

    // The same keys again, unattributed spend included, replace; a new key adds a row.
    let second = write(
        dir.path(),
        "spend2.ndjson",
        "{\"spend_date\":\"2025-01-05\",\"channel\":\"paid\",\"region\":null,\"amount\":75,\"currency\":\"USD\"}\n\
         {\"spend_date\":\"2025-01-05\",\"channel\":\"paid\",\"region\":\"EU\",\"amount\":\"200.00\",\"currency\":\"EUR\"}\n\
         {\"spend_date\":\"2025-01-06\",\"channel\":\"paid\",\"currency\":\"USD\",\"amount\":5}\n",
    );
    let out = rebuy(
        &data,
        &["ingest", "marketing_spend", second.to_str().unwrap()],
    );
    let report = stdout(&out);
    assert!(out.status.success(), "{report}{}", stderr(&out));
    assert_eq!(count(&report, "updated"), 2, "{report}");
    assert_eq!(
        query(
            &data,
            "SELECT CAST(spend_date AS VARCHAR), COALESCE(region, '-'), amount FROM marketing_spend \
             WHERE channel = 'paid' ORDER BY spend_date, region NULLS FIRST"
        ),
        vec![
            vec!["2025-01-05", "-", "75.00"],
            vec!["2025-01-05", "EU", "200.00"],
            vec!["2025-01-06", "-", "5.00"],
        ]
    );
    // Loading the same file again changes nothing.
    let out = rebuy(
        &data,
        &["ingest", "marketing_spend", second.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        query_one(&data, "SELECT COUNT(*) FROM marketing_spend"),
        "4"
    );
}
