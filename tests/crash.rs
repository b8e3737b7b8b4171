//! Crash safety and bounded memory of `rebuy ingest`.
//!
//! The crash test kills an ingest with SIGKILL at random moments (at least 20 times) and checks
//! that the warehouse then opens and holds exactly the content before or after that ingest.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use crate::cli::copy_dir;
use crate::common::*;

fn content(data: &std::path::Path) -> Vec<Vec<String>> {
    query(
        data,
        "SELECT order_id, status, amount, order_month FROM orders ORDER BY order_id",
    )
}

/// A warehouse with 4000 stored orders, an update file that adds 2000 and refunds 400 of the
/// stored ones, and the table content before and after that update.
struct Scenario {
    template: std::path::PathBuf,
    update_file: std::path::PathBuf,
    before: Vec<Vec<String>>,
    after: Vec<Vec<String>>,
    duration: Duration,
}

fn scenario(tmp: &std::path::Path) -> Scenario {
    let inputs = tmp.join("inputs");
    let gen_data = tmp.join("gen");
    let out = rebuy(
        &gen_data,
        &[
            "demo",
            "--orders",
            "6000",
            "--seed",
            "3",
            "--input-format",
            "csv",
            "--inputs",
            inputs.to_str().unwrap(),
            "--no-ingest",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let orders = std::fs::read_to_string(inputs.join("orders.csv")).unwrap();
    let lines: Vec<&str> = orders.lines().collect();
    let header = lines[0];
    let base: String = std::iter::once(header)
        .chain(lines[1..4001].iter().copied())
        .map(|l| format!("{l}\n"))
        .collect();
    let mut update = String::from(header);
    update.push('\n');
    for (i, l) in lines[1..].iter().enumerate() {
        if i >= 4000 {
            update.push_str(l);
            update.push('\n');
        } else if i % 10 == 0 {
            // A later refund of an already stored order.
            let mut f: Vec<String> = l.split(',').map(str::to_string).collect();
            f[10] = "refunded".into();
            update.push_str(&f.join(","));
            update.push('\n');
        }
    }
    let base_file = write(tmp, "base.csv", &base);
    let update_file = write(tmp, "update.csv", &update);
    let template = tmp.join("template");
    for (t, f) in [("fx_rates", "fx_rates.csv"), ("customers", "customers.csv")] {
        assert!(
            rebuy(&template, &["ingest", t, inputs.join(f).to_str().unwrap()])
                .status
                .success()
        );
    }
    assert!(
        rebuy(
            &template,
            &["ingest", "orders", base_file.to_str().unwrap()]
        )
        .status
        .success()
    );
    let before = content(&template);
    // The complete ingest once, to know the "after" content and how long an ingest takes.
    let full = tmp.join("full");
    copy_dir(&template, &full);
    let started = Instant::now();
    let out = rebuy(&full, &["ingest", "orders", update_file.to_str().unwrap()]);
    let duration = started.elapsed();
    assert!(out.status.success(), "{}", stderr(&out));
    let after = content(&full);
    assert_ne!(before, after);
    Scenario {
        template,
        update_file,
        before,
        after,
        duration,
    }
}

/// Starts `rebuy ingest orders FILE` into `data` in the background.
fn spawn_ingest(data: &std::path::Path, file: &std::path::Path) -> std::process::Child {
    Command::new(bin())
        .arg("--data")
        .arg(data)
        .args(["ingest", "orders", file.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn kill_9_at_random_points_leaves_old_or_new_content() {
    let tmp = tempfile::tempdir().unwrap();
    let Scenario {
        template,
        update_file,
        before,
        after,
        duration,
    } = scenario(tmp.path());

    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let (mut saw_old, mut saw_new) = (0, 0);
    let attempts = 24;
    for i in 0..attempts {
        let data = tmp.path().join(format!("run-{i}"));
        copy_dir(&template, &data);
        // Spread kill points over the whole run, a little beyond its usual length.
        let delay = Duration::from_secs_f64(rng.random::<f64>() * duration.as_secs_f64() * 1.1);
        let mut child = spawn_ingest(&data, &update_file);
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        let seen = content(&data);
        if seen == before {
            saw_old += 1;
        } else if seen == after {
            saw_new += 1;
        } else {
            panic!(
                "run {i}: killed after {delay:?}, the warehouse holds neither the old nor the new content"
            );
        }
        // The next ingest still works and reaches the new content.
        let out = rebuy(&data, &["ingest", "orders", update_file.to_str().unwrap()]);
        assert!(out.status.success(), "run {i}: {}", stderr(&out));
        assert_eq!(
            content(&data),
            after,
            "run {i}: re-running the ingest completes it"
        );
        std::fs::remove_dir_all(&data).unwrap();
    }
    eprintln!("kill -9 runs: {saw_old} before, {saw_new} after the commit");
    assert_eq!(saw_old + saw_new, attempts);
    assert!(saw_old > 0, "some kills must land before the commit");
}

#[test]
fn readers_during_an_ingest_see_the_old_or_the_new_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let Scenario {
        template,
        update_file,
        before,
        after,
        ..
    } = scenario(tmp.path());
    let data = tmp.path().join("live");
    copy_dir(&template, &data);
    let mut ingest = spawn_ingest(&data, &update_file);
    let (mut saw_before, mut saw_after) = (0, 0);
    loop {
        let running = ingest.try_wait().unwrap().is_none();
        let seen = content(&data);
        if seen == before {
            saw_before += 1;
        } else if seen == after {
            saw_after += 1;
        } else {
            panic!("a reader saw a mix of the old and the new content");
        }
        if !running {
            break;
        }
    }
    assert!(ingest.wait().unwrap().success());
    eprintln!("reads during the ingest: {saw_before} before, {saw_after} after");
    assert!(saw_after > 0);
}

/// Peak resident memory (VmHWM) of a child, polled until it exits.
fn run_with_peak_rss(mut cmd: Command) -> (std::process::ExitStatus, u64) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    loop {
        if let Ok(s) = std::fs::read_to_string(&status_path)
            && let Some(line) = s.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kb: u64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            peak_kb = peak_kb.max(kb);
        }
        if let Some(status) = child.try_wait().unwrap() {
            return (status, peak_kb);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_million_row_csv_streams_in_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = tmp.path().join("inputs");
    let data = tmp.path().join("data");
    let out = rebuy(
        &data,
        &[
            "demo",
            "--orders",
            "1000000",
            "--seed",
            "5",
            "--input-format",
            "csv",
            "--inputs",
            inputs.to_str().unwrap(),
            "--no-ingest",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        rebuy(
            &data,
            &[
                "ingest",
                "fx_rates",
                inputs.join("fx_rates.csv").to_str().unwrap()
            ]
        )
        .status
        .success()
    );
    let mut cmd = Command::new(bin());
    cmd.arg("--data").arg(&data).args([
        "ingest",
        "orders",
        inputs.join("orders.csv").to_str().unwrap(),
    ]);
    let (status, peak_kb) = run_with_peak_rss(cmd);
    assert!(status.success());
    eprintln!("1M-row CSV ingest: peak RSS {} MiB", peak_kb / 1024);
    assert_eq!(query_one(&data, "SELECT COUNT(*) FROM orders"), "1000000");
    // 2 GiB is the bound for 10M rows; 1M rows must stay far below it.
    assert!(peak_kb < 1024 * 1024, "peak RSS {peak_kb} kB");
}
