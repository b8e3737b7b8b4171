//! `rebuy ingest`: validation, rejects, upserts, time zones, file-level errors.

use crate::common::*;

#[test]
fn every_rejection_reason_is_reported_with_line_column_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let data = warehouse_with_fx(dir.path());
    let sha = "a".repeat(64);
    let rows = [
        format!(
            "ok-1,c-1,2025-01-05T10:00:00+01:00,10.00,EUR,EU,DE,beauty,email,false,completed,0,{sha}"
        ),
        "bad-ts,c-1,05/01/2025 10:00,10.00,EUR,EU,DE,,,,,,".to_string(),
        "bad-offset,c-1,2025-01-05T10:00:00,10.00,EUR,EU,DE,,,,,,".to_string(),
        "bad-cur,c-1,2025-01-05T10:00:00Z,10.00,XYZ,EU,DE,,,,,,".to_string(),
        "no-rate,c-1,2025-01-05T10:00:00Z,10.00,JPY,EU,DE,,,,,,".to_string(),
        "early,c-1,2024-12-05T10:00:00Z,10.00,EUR,EU,DE,,,,,,".to_string(),
        ",c-1,2025-01-05T10:00:00Z,10.00,EUR,EU,DE,,,,,,".to_string(),
        "no-cust,,2025-01-05T10:00:00Z,10.00,EUR,EU,DE,,,,,,".to_string(),
        "neg,c-1,2025-01-05T10:00:00Z,-5.00,EUR,EU,DE,,,,,,".to_string(),
        "nan,c-1,2025-01-05T10:00:00Z,ten,EUR,EU,DE,,,,,,".to_string(),
        "bool,c-1,2025-01-05T10:00:00Z,10.00,EUR,EU,DE,,,maybe,,,".to_string(),
        "status,c-1,2025-01-05T10:00:00Z,10.00,EUR,EU,DE,,,,lost,,".to_string(),
        "disc,c-1,2025-01-05T10:00:00Z,10.00,EUR,EU,DE,,,,,-1,".to_string(),
        "hash,c-1,2025-01-05T10:00:00Z,10.00,EUR,EU,DE,,,,,,xyz".to_string(),
        "country,c-1,2025-01-05T10:00:00Z,10.00,EUR,EU,Germany,,,,,,".to_string(),
        "short,c-1,2025-01-05T10:00:00Z".to_string(),
        "ok-2,c-2,2025-01-06T10:00:00Z,20.00,USD,NA,US,fmcg,paid,true,refunded,1.50,".to_string(),
    ];
    let csv = format!("{ORDERS_HEADER}{}\n", rows.join("\n"));
    let input = write(dir.path(), "orders.csv", &csv);
    let out = rebuy(&data, &["ingest", "orders", input.to_str().unwrap()]);
    let report = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(3),
        "rejects give a non-zero exit: {report}{}",
        stderr(&out)
    );
    assert_eq!(count(&report, "read"), 17, "{report}");
    assert_eq!(count(&report, "accepted"), 2, "{report}");
    assert_eq!(count(&report, "rejected"), 15, "{report}");

    let rejects_dir = data.join("_rejects");
    let file = std::fs::read_dir(&rejects_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut reader = csv::Reader::from_path(&file).unwrap();
    let rejects: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    assert_eq!(rejects.len(), 15);
    // (line, column, words of the reason)
    let expected = [
        (3, "order_ts", "unparseable"),
        (4, "order_ts", "offset"),
        (5, "currency", "unknown currency"),
        (6, "currency", "missing fx rate"),
        (7, "currency", "missing fx rate"),
        (8, "order_id", "missing"),
        (9, "customer_id", "missing"),
        (10, "amount", "negative"),
        (11, "amount", "not a number"),
        (12, "is_subscription", "bad boolean"),
        (13, "status", "unknown status"),
        (14, "discount", "negative"),
        (15, "email_sha256", "SHA-256"),
        (16, "country", "ISO 3166"),
        (17, "*", "fields"),
    ];
    for ((line, column, reason), row) in expected.iter().zip(&rejects) {
        assert!(row[0].ends_with("orders.csv"), "{row:?}");
        assert_eq!(row[1], line.to_string(), "{row:?}");
        assert_eq!(row[2], *column, "{row:?}");
        assert!(row[4].contains(reason), "{row:?} should say {reason}");
    }
    assert!(
        report.contains(file.to_str().unwrap()),
        "the report names the rejects file"
    );

    let stored = query(
        &data,
        "SELECT order_id, amount, amount_usd, status, discount, is_subscription FROM orders ORDER BY order_id",
    );
    assert_eq!(
        stored,
        vec![
            vec!["ok-1", "10.00", "11.0", "completed", "0.00", "false"],
            vec!["ok-2", "20.00", "20.0", "refunded", "1.50", "true"],
        ]
    );
}

#[test]
fn same_file_twice_changes_nothing_and_later_rows_replace_stored_ones() {
    let dir = tempfile::tempdir().unwrap();
    let data = warehouse_with_fx(dir.path());
    let first = format!(
        "{ORDERS_HEADER}o-1,c-1,2025-01-05T10:00:00Z,10.00,EUR,,,,,,,,\n\
         o-2,c-1,2025-01-20T10:00:00Z,12.00,EUR,,,,,,,,\n\
         o-3,c-2,2025-01-21T10:00:00Z,30.00,USD,,,,,,,,\n"
    );
    let a = write(dir.path(), "a.csv", &first);
    let out = rebuy(&data, &["ingest", "orders", a.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(count(&stdout(&out), "accepted"), 3);
    let version = query_one(&data, "SELECT COUNT(*) FROM orders");
    assert_eq!(version, "3");

    let again = rebuy(&data, &["ingest", "orders", a.to_str().unwrap()]);
    let report = stdout(&again);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(count(&report, "accepted"), 0, "{report}");
    assert_eq!(count(&report, "unchanged"), 3, "{report}");
    assert!(report.contains("nothing to commit"), "{report}");

    // A refund arrives for o-2, o-4 is new; o-4 appears twice and the later row wins.
    let second = format!(
        "{ORDERS_HEADER}o-2,c-1,2025-01-20T10:00:00Z,12.00,EUR,,,,,,refunded,,\n\
         o-4,c-3,2025-01-22T10:00:00Z,1.00,USD,,,,,,,,\n\
         o-1,c-1,2025-01-05T10:00:00Z,10.00,EUR,,,,,,,,\n\
         o-4,c-3,2025-01-22T10:00:00Z,4.00,USD,,,,,,,,\n"
    );
    let b = write(dir.path(), "b.csv", &second);
    let out = rebuy(&data, &["ingest", "orders", b.to_str().unwrap()]);
    let report = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(count(&report, "accepted"), 1, "{report}");
    assert_eq!(count(&report, "updated"), 1, "{report}");
    assert_eq!(count(&report, "unchanged"), 1, "{report}");
    assert_eq!(count(&report, "superseded"), 1, "{report}");
    let rows = query(
        &data,
        "SELECT order_id, status, amount FROM orders ORDER BY order_id",
    );
    assert_eq!(
        rows,
        vec![
            vec!["o-1", "completed", "10.00"],
            vec!["o-2", "refunded", "12.00"],
            vec!["o-3", "completed", "30.00"],
            vec!["o-4", "completed", "4.00"],
        ]
    );
}

#[test]
fn an_order_moving_to_another_month_leaves_its_old_partition() {
    let dir = tempfile::tempdir().unwrap();
    let data = warehouse_with_fx(dir.path());
    let a = write(
        dir.path(),
        "a.csv",
        &format!(
            "{ORDERS_HEADER}o-1,c-1,2025-01-31T10:00:00Z,10.00,USD,,,,,,,,\no-2,c-1,2025-01-15T10:00:00Z,10.00,USD,,,,,,,,\n"
        ),
    );
    assert!(
        rebuy(&data, &["ingest", "orders", a.to_str().unwrap()])
            .status
            .success()
    );
    let b = write(
        dir.path(),
        "b.csv",
        &format!("{ORDERS_HEADER}o-1,c-1,2025-02-01T10:00:00Z,10.00,USD,,,,,,,,\n"),
    );
    let out = rebuy(&data, &["ingest", "orders", b.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        query(
            &data,
            "SELECT order_id, order_month FROM orders ORDER BY order_id"
        ),
        vec![vec!["o-1", "2025-02"], vec!["o-2", "2025-01"]]
    );
}

#[test]
fn timestamps_with_offsets_are_stored_in_utc() {
    let dir = tempfile::tempdir().unwrap();
    let data = warehouse_with_fx(dir.path());
    let csv = format!(
        "{ORDERS_HEADER}late-ny,c-1,2025-01-31T23:30:00-05:00,10.00,USD,,,,,,,,\n\
         early-sg,c-2,2025-02-01T05:00:00+08:00,10.00,USD,,,,,,,,\n\
         zulu,c-3,2025-01-10 08:00:00Z,10.00,EUR,,,,,,,,\n"
    );
    let input = write(dir.path(), "tz.csv", &csv);
    let out = rebuy(&data, &["ingest", "orders", input.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = query(
        &data,
        "SELECT order_id, CAST(order_ts AS VARCHAR), order_month FROM orders ORDER BY order_id",
    );
    assert_eq!(rows[0][0], "early-sg");
    assert!(rows[0][1].starts_with("2025-01-31T21:00:00"), "{rows:?}");
    assert_eq!(rows[0][2], "2025-01");
    assert!(rows[1][1].starts_with("2025-02-01T04:30:00"), "{rows:?}");
    assert_eq!(rows[1][2], "2025-02");
    assert!(rows[2][1].starts_with("2025-01-10T08:00:00"), "{rows:?}");
}

#[test]
fn file_level_problems_fail_with_one_message_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = warehouse_with_fx(dir.path());
    let good = write(
        dir.path(),
        "good.csv",
        &format!("{ORDERS_HEADER}o-1,c-1,2025-01-05T10:00:00Z,10.00,USD,,,,,,,,\n"),
    );
    assert!(
        rebuy(&data, &["ingest", "orders", good.to_str().unwrap()])
            .status
            .success()
    );

    let missing = write(
        dir.path(),
        "missing.csv",
        "order_id,customer_id,order_ts,currency\no-9,c-1,2025-01-05T10:00:00Z,USD\n",
    );
    let empty = write(dir.path(), "empty.csv", "");
    let excel = write(dir.path(), "orders.xlsx", "PK\x03\x04 not a csv");
    let fake_parquet = write(dir.path(), "fake.parquet", "order_id\n1\n");
    let cases: Vec<(&std::path::Path, &str)> = vec![
        (&missing, "missing required column 'amount'"),
        (&empty, "empty"),
        (&excel, "unsupported file type"),
        (&fake_parquet, "not a Parquet file"),
        (
            std::path::Path::new("/nonexistent/orders.csv"),
            "cannot read",
        ),
    ];
    for (path, message) in cases {
        // The good file comes first: a bad second file must still change nothing.
        let out = rebuy(
            &data,
            &[
                "ingest",
                "orders",
                good.to_str().unwrap(),
                path.to_str().unwrap(),
            ],
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(message),
            "{path:?}: '{err}' should say '{message}'"
        );
        assert!(
            err.contains(path.file_name().unwrap().to_str().unwrap()),
            "names the file: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "one clear message: {err}");
    }
    assert_eq!(query_one(&data, "SELECT COUNT(*) FROM orders"), "1");
    assert_eq!(
        query_one(&data, "SELECT COUNT(*) FROM orders WHERE order_id = 'o-9'"),
        "0"
    );
}

#[test]
fn a_header_only_file_loads_nothing_and_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let data = warehouse_with_fx(dir.path());
    let input = write(dir.path(), "header.csv", ORDERS_HEADER);
    let out = rebuy(&data, &["ingest", "orders", input.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(count(&stdout(&out), "read"), 0);
    assert_eq!(query_one(&data, "SELECT COUNT(*) FROM orders"), "0");
}

#[test]
fn strict_rejects_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let data = warehouse_with_fx(dir.path());
    let input = write(
        dir.path(),
        "o.csv",
        &format!(
            "{ORDERS_HEADER}o-1,c-1,2025-01-05T10:00:00Z,10.00,USD,,,,,,,,\no-2,c-1,2025-01-05T10:00:00Z,-1,USD,,,,,,,,\n"
        ),
    );
    let out = rebuy(
        &data,
        &["ingest", "orders", "--strict", input.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--strict"), "{}", stderr(&out));
    assert_eq!(query_one(&data, "SELECT COUNT(*) FROM orders"), "0");
}

#[test]
fn ndjson_and_parquet_inputs_follow_the_same_rules() {
    let dir = tempfile::tempdir().unwrap();
    let data = warehouse_with_fx(dir.path());
    let ndjson = write(
        dir.path(),
        "o.ndjson",
        "{\"order_id\":\"j-1\",\"customer_id\":\"c-1\",\"order_ts\":\"2025-01-05T10:00:00+02:00\",\"amount\":10.5,\"currency\":\"EUR\",\"is_subscription\":true}\n\
         \n\
         {\"order_id\":\"j-2\",\"customer_id\":\"c-1\",\"order_ts\":\"2025-01-06T10:00:00Z\",\"amount\":-1,\"currency\":\"EUR\"}\n\
         not json\n",
    );
    let out = rebuy(&data, &["ingest", "orders", ndjson.to_str().unwrap()]);
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{report}{}", stderr(&out));
    assert_eq!(count(&report, "accepted"), 1);
    assert_eq!(count(&report, "rejected"), 2);
    assert_eq!(
        query(
            &data,
            "SELECT order_id, amount, is_subscription FROM orders"
        ),
        vec![vec!["j-1", "10.50", "true"]]
    );

    // Parquet with typed columns, as `rebuy demo` writes them for other tools.
    let inputs = dir.path().join("inputs");
    let gen_data = dir.path().join("unused");
    let out = rebuy(
        &gen_data,
        &[
            "demo",
            "--orders",
            "500",
            "--inputs",
            inputs.to_str().unwrap(),
            "--no-ingest",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let data2 = dir.path().join("data2");
    for (t, f) in [
        ("fx_rates", "fx_rates.parquet"),
        ("customers", "customers.parquet"),
        ("orders", "orders.parquet"),
    ] {
        let out = rebuy(&data2, &["ingest", t, inputs.join(f).to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{t}: {}{}",
            stdout(&out),
            stderr(&out)
        );
    }
    assert_eq!(query_one(&data2, "SELECT COUNT(*) FROM orders"), "500");
}

#[test]
fn customers_and_fx_rates_upsert_by_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let c1 = write(
        dir.path(),
        "c1.csv",
        "customer_id,signup_ts,country,region,member_tier,marketing_consent,referred_by,email_sha256\nc-1,2025-01-01,DE,EU,Gold,yes,,\nc-2,,US,NA,basic,no,c-1,\n",
    );
    let out = rebuy(&data, &["ingest", "customers", c1.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let c2 = write(
        dir.path(),
        "c2.csv",
        "customer_id,marketing_consent\nc-2,true\nc-3,false\n",
    );
    let out = rebuy(&data, &["ingest", "customers", c2.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(count(&stdout(&out), "updated"), 1);
    assert_eq!(
        query(
            &data,
            "SELECT customer_id, member_tier, marketing_consent FROM customers ORDER BY customer_id"
        ),
        vec![
            vec!["c-1", "gold", "true"],
            vec!["c-2", "", "true"],
            vec!["c-3", "", "false"]
        ]
    );

    let f1 = write(
        dir.path(),
        "f1.csv",
        "rate_date,currency,to_usd\n2025-01-01,EUR,1.1\n2025-01-01,GBP,1.3\n",
    );
    assert!(
        rebuy(&data, &["ingest", "fx_rates", f1.to_str().unwrap()])
            .status
            .success()
    );
    let f2 = write(
        dir.path(),
        "f2.csv",
        "rate_date,currency,to_usd\n2025-01-01,EUR,1.2\n2025-01-02,EUR,0\n",
    );
    let out = rebuy(&data, &["ingest", "fx_rates", f2.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(count(&stdout(&out), "updated"), 1);
    assert_eq!(
        query(
            &data,
            "SELECT currency, to_usd FROM fx_rates ORDER BY currency"
        ),
        vec![vec!["EUR", "1.2"], vec!["GBP", "1.3"]]
    );
}

#[test]
fn rejects_from_parallel_validation_come_back_in_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let data = warehouse_with_fx(dir.path());
    // 40,000 rows: several chunks for every validation lane; every 997th row is bad.
    let mut csv = String::from(ORDERS_HEADER);
    let mut bad_lines = Vec::new();
    for i in 0..40_000u32 {
        let amount = if i % 997 == 5 {
            bad_lines.push(i as u64 + 2);
            "-1.00"
        } else {
            "9.99"
        };
        csv.push_str(&format!(
            "p-{i},c-{},2025-01-{:02}T10:00:00Z,{amount},USD,,,,,,,,\n",
            i % 5000,
            i % 28 + 1
        ));
    }
    let input = write(dir.path(), "big.csv", &csv);
    let out = rebuy(&data, &["ingest", "orders", input.to_str().unwrap()]);
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{report}{}", stderr(&out));
    assert_eq!(count(&report, "rejected"), bad_lines.len() as u64);
    assert_eq!(count(&report, "accepted"), 40_000 - bad_lines.len() as u64);
    let file = std::fs::read_dir(data.join("_rejects"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let lines: Vec<u64> = csv::Reader::from_path(&file)
        .unwrap()
        .records()
        .map(|r| r.unwrap()[1].parse().unwrap())
        .collect();
    assert_eq!(lines, bad_lines);
    assert_eq!(
        query_one(&data, "SELECT COUNT(*) FROM orders"),
        (40_000 - bad_lines.len()).to_string()
    );
}

/// customer_id of every row of one stored Parquet file, in file order.
fn stored_customer_ids(file: &std::path::Path) -> Vec<String> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(file).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let mut ids = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let col = batch.column_by_name("customer_id").unwrap();
        let strings =
            datafusion::arrow::compute::cast(col, &datafusion::arrow::datatypes::DataType::Utf8)
                .unwrap();
        let strings = strings.as_string::<i32>();
        ids.extend((0..strings.len()).map(|i| strings.value(i).to_string()));
    }
    ids
}

#[test]
fn stored_orders_are_clustered_by_customer_within_each_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = warehouse_with_fx(dir.path());
    // Two loads of orders arriving in time order, customers interleaved.
    for (load, range) in [(0, 0..3000), (1, 3000..5000)] {
        let mut csv = String::from(ORDERS_HEADER);
        for i in range {
            let day = 1 + (i * 31 / 5000);
            csv.push_str(&format!(
                "o-{i},c-{},2025-01-{day:02}T{:02}:00:00Z,10.00,USD,,,,,,,,\n",
                (i * 7919) % 400,
                i % 24
            ));
        }
        let input = write(dir.path(), &format!("load{load}.csv"), &csv);
        let out = rebuy(&data, &["ingest", "orders", input.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let month = data.join("orders").join("order_month=2025-01");
    let files: Vec<_> = std::fs::read_dir(&month)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert!(files.len() >= 2, "one file per load at least: {files:?}");
    let mut rows = 0;
    for f in &files {
        let ids = stored_customer_ids(f);
        assert!(
            ids.windows(2).all(|w| w[0] <= w[1]),
            "{} is not ordered by customer_id: {:?}",
            f.display(),
            ids.windows(2)
                .position(|w| w[0] > w[1])
                .map(|p| &ids[p.saturating_sub(3)..p + 3])
        );
        rows += ids.len();
    }
    assert_eq!(rows, 5000);
    // A customer's history still comes back whole, in time order.
    let history = query(
        &data,
        "SELECT order_id FROM orders WHERE customer_id = 'c-7' ORDER BY order_ts, order_id",
    );
    let expected: Vec<String> = (0..5000)
        .filter(|i| (i * 7919) % 400 == 7)
        .map(|i| format!("o-{i}"))
        .collect();
    let mut got: Vec<String> = history.into_iter().map(|r| r[0].clone()).collect();
    let mut want = expected.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}
