//! Helpers: run the binary, write input files, read tables back as CSV.

#![allow(dead_code)]

pub mod seaweed;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The crate's folder, read at run time (cargo sets it for test processes): a test binary can
/// be reused from a build in another checkout, where the compile-time value points.
pub fn manifest_dir() -> PathBuf {
    PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string()),
    )
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_rebuy")
}

/// Runs `rebuy --data DATA ARGS...`.
pub fn rebuy(data: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("REBUY_DATA")
        .output()
        .expect("the rebuy binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The number in front of `word` in an ingest report ("12 accepted").
pub fn count(report: &str, word: &str) -> u64 {
    let words: Vec<&str> = report
        .split(|c: char| c.is_whitespace() || c == ',' || c == ':' || c == ';')
        .filter(|w| !w.is_empty())
        .collect();
    for (i, w) in words.iter().enumerate() {
        // "12 accepted" or "12 rows read"
        let n = if i >= 1 && *w == word {
            words[i - 1].parse().ok().or_else(|| {
                (i >= 2 && words[i - 1] == "rows")
                    .then(|| words[i - 2].parse().ok())
                    .flatten()
            })
        } else {
            None
        };
        if let Some(n) = n {
            return n;
        }
    }
    panic!("no count for '{word}' in: {report}");
}

/// Rows of a query, as CSV fields (header dropped).
pub fn query(data: &Path, sql: &str) -> Vec<Vec<String>> {
    let out = rebuy(data, &["query", "--format", "csv", sql]);
    assert!(
        out.status.success(),
        "query failed: {sql}\n{}",
        stderr(&out)
    );
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    reader
        .records()
        .map(|r| r.expect("csv row").iter().map(str::to_string).collect())
        .collect()
}

pub fn query_one(data: &Path, sql: &str) -> String {
    let rows = query(data, sql);
    assert_eq!(rows.len(), 1, "{sql}: {rows:?}");
    rows[0][0].clone()
}

pub fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).expect("write input file");
    p
}

/// A data directory with EUR and GBP rates for January to March 2025 (USD needs none).
pub fn warehouse_with_fx(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    let mut fx = String::from("rate_date,currency,to_usd\n");
    for day in 1..=31 {
        fx.push_str(&format!(
            "2025-01-{day:02},EUR,1.10\n2025-01-{day:02},GBP,1.25\n"
        ));
    }
    fx.push_str("2025-02-01,EUR,1.20\n2025-02-01,GBP,1.30\n");
    let path = write(dir, "fx.csv", &fx);
    let out = rebuy(&data, &["ingest", "fx_rates", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    data
}

pub const ORDERS_HEADER: &str = "order_id,customer_id,order_ts,amount,currency,region,country,category,channel,is_subscription,status,discount,email_sha256\n";

/// Copies a folder tree (the fixture warehouse into a test's own directory).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
