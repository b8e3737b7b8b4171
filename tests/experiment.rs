//! Holdout assignment as anyone can recompute it: `experiment_bucket` and `experiment_arm`
//! through `rebuy query`, against the formula run by Python's hashlib (the issue's reference
//! implementation), over salts and ids with dots, spaces, non-ASCII text and empty strings.

use std::process::Command;

use crate::common::{query, stderr};

const PYTHON: &str = r#"
import hashlib, sys
for line in sys.stdin.read().splitlines():
    salt, cid = line.split("\t")
    b = int.from_bytes(hashlib.sha256(f"{salt}.{cid}".encode()).digest()[:8], "big") % 10000
    print(f"{salt}\t{cid}\t{b}\t{'treatment' if b < round(0.2 * 10000) else 'control'}")
"#;

#[test]
fn buckets_and_arms_match_python_hashlib() {
    let dir = tempfile::tempdir().expect("temp dir");
    let salts = ["winback_coupon_2026q3", "a.b", "", "季節 2026", "x"];
    let mut pairs = Vec::new();
    for salt in salts {
        for i in 0..400 {
            let id = match i % 4 {
                0 => format!("C{i:06}"),
                1 => format!("c-{i}.{i}"),
                2 => format!("客户{i}"),
                _ => format!("{i} with space"),
            };
            pairs.push((salt.to_string(), id));
        }
    }
    pairs.push(("x".into(), String::new()));
    let mut python = Command::new("python3")
        .args(["-c", PYTHON])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (the test machine has Python 3.11)");
    {
        use std::io::Write;
        let mut stdin = python.stdin.take().expect("stdin");
        for (s, c) in &pairs {
            writeln!(stdin, "{s}\t{c}").expect("write to python");
        }
    }
    let out = python.wait_with_output().expect("python output");
    assert!(out.status.success(), "{}", stderr(&out));
    let expected: Vec<Vec<String>> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect();
    assert_eq!(expected.len(), pairs.len());

    let quote = |s: &str| s.replace('\'', "''");
    let values: Vec<String> = pairs
        .iter()
        .enumerate()
        .map(|(i, (s, c))| format!("({i}, '{}', '{}')", quote(s), quote(c)))
        .collect();
    let sql = format!(
        "SELECT CAST(experiment_bucket(salt, cid) AS VARCHAR), experiment_arm(salt, cid, 0.2) \
         FROM (VALUES {}) AS t(i, salt, cid) ORDER BY i",
        values.join(", ")
    );
    let rows = query(dir.path(), &sql);
    assert_eq!(rows.len(), pairs.len());
    let mut treatment = 0;
    for (row, want) in rows.iter().zip(&expected) {
        assert_eq!(row[0], want[2], "bucket of {want:?}");
        assert_eq!(row[1], want[3], "arm of {want:?}");
        treatment += usize::from(row[1] == "treatment");
    }
    // 2,001 draws at 20%: a binomial sd of 18.
    assert!(
        (330..=470).contains(&treatment),
        "{treatment} of {}",
        rows.len()
    );
}
