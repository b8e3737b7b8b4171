//! Segment exports (`rebuy export`, and the schedule of `rebuy serve`) to `file://` and to a
//! real S3-compatible server (SeaweedFS on 127.0.0.1): complete-or-absent slots, manifests that
//! agree with the data, consent filtering, retries, missed slots, injected clock.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use object_store::{ObjectStore, ObjectStoreExt};

use crate::common::seaweed::*;
use crate::common::*;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A copy of the fixture warehouse (orders up to 2026-06-30, 1224 customers) and an output
/// folder, with `jobs` as rebuy.toml (`OUT` in it is replaced by the output folder's URL).
fn setup(jobs: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_dir(&manifest_dir().join("data/fixture/warehouse"), &data);
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    write_config(&data, &out, jobs);
    (dir, data, out)
}

fn write_config(data: &Path, out: &Path, jobs: &str) {
    let url = format!("file://{}", out.display());
    std::fs::write(data.join("rebuy.toml"), jobs.replace("OUT", &url)).unwrap();
}

fn manifest(slot: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(slot.join("_SUCCESS")).expect("_SUCCESS written");
    serde_json::from_str(&text).unwrap()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Rows of a CSV export (all part files), header checked to be the same in each.
fn csv_rows(slot: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header = None;
    let mut rows = Vec::new();
    for name in files_in(slot).iter().filter(|n| n.ends_with(".csv")) {
        let mut r = csv::Reader::from_path(slot.join(name)).unwrap();
        let h: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
        if let Some(prev) = &header {
            assert_eq!(prev, &h, "{name}: another header");
        }
        header = Some(h);
        for rec in r.records() {
            rows.push(rec.unwrap().iter().map(str::to_string).collect());
        }
    }
    (header.unwrap_or_default(), rows)
}

const MARKETING: &str = r#"
[[export]]
name = "rfm_outreach"
sql = "SELECT r.customer_id, r.segment, r.monetary_usd, c.email_sha256 FROM customer_rfm r LEFT JOIN customers c USING (customer_id)"
destination = "OUT/segments"
format = "csv"
purpose = "marketing"
max_rows_per_file = 200
"#;

#[test]
fn a_file_export_publishes_a_complete_slot_whose_manifest_matches_the_data() {
    let (_dir, data, out) = setup(MARKETING);
    let run = rebuy(
        &data,
        &["export", "run", "rfm_outreach", "--as-of", "2026-07-01"],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        stdout(&run).contains("published to file://"),
        "{}",
        stdout(&run)
    );

    let slot = out.join("segments/rfm_outreach/dt=2026-07-01");
    let m = manifest(&slot);
    let (header, rows) = csv_rows(&slot);

    // Independent counts: every customer of customer_rfm, and those who consented.
    let as_of = "SET rebuy.as_of = '2026-07-01';";
    let all: u64 = query_one(&data, &format!("{as_of} SELECT COUNT(*) FROM customer_rfm"))
        .parse()
        .unwrap();
    let consenting: HashSet<String> = query(
        &data,
        &format!(
            "{as_of} SELECT r.customer_id FROM customer_rfm r JOIN customers c \
             ON c.customer_id = r.customer_id WHERE c.marketing_consent"
        ),
    )
    .into_iter()
    .map(|r| r[0].clone())
    .collect();
    assert!(consenting.len() > 100 && (consenting.len() as u64) < all);

    // Only consenting customers, each once, and the manifest counts the others.
    let exported: HashSet<String> = rows.iter().map(|r| r[0].clone()).collect();
    assert_eq!(exported.len(), rows.len());
    assert_eq!(exported, consenting);
    assert_eq!(m["rows"], rows.len() as u64);
    assert_eq!(m["rows_excluded_no_consent"], all - rows.len() as u64);
    assert_eq!(m["consent_filtered"], true);

    // The personal column is left out, and the manifest says so.
    assert_eq!(header, ["customer_id", "segment", "monetary_usd"]);
    assert_eq!(m["columns_left_out"], serde_json::json!(["email_sha256"]));
    let schema: Vec<&str> = m["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(schema, header);

    // Files: as listed, with their sizes and row counts, at most 200 rows each.
    let listed = m["files"].as_array().unwrap();
    assert_eq!(listed.len(), rows.len().div_ceil(200));
    let mut on_disk = files_in(&slot);
    on_disk.retain(|n| n != "_SUCCESS");
    assert_eq!(on_disk.len(), listed.len());
    let mut total_rows = 0;
    for f in listed {
        let path = slot.join(f["path"].as_str().unwrap());
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            f["bytes"].as_u64().unwrap()
        );
        let n = csv::Reader::from_path(&path).unwrap().records().count() as u64;
        assert!(n <= 200);
        assert_eq!(n, f["rows"].as_u64().unwrap());
        total_rows += n;
    }
    assert_eq!(total_rows, rows.len() as u64);
    assert_eq!(m["as_of"], "2026-07-01");
    assert_eq!(m["query_sha256"].as_str().unwrap().len(), 64);
    assert!(m["snapshot"]["orders"].as_u64().is_some());
    // Nothing temporary is left next to the slots.
    assert_eq!(files_in(&out.join("segments")), ["rfm_outreach"]);

    // The run is recorded.
    let runs = query(
        &data,
        "SELECT status, \"rows\", rows_excluded, slot, \"trigger\", attempts FROM export_runs",
    );
    assert_eq!(
        runs,
        vec![vec![
            "succeeded".to_string(),
            rows.len().to_string(),
            (all - rows.len() as u64).to_string(),
            "2026-07-01".to_string(),
            "manual".to_string(),
            "1".to_string(),
        ]]
    );

    // A second run of the slot replaces it: fewer, larger files, no stale part left.
    write_config(
        &data,
        &out,
        &MARKETING.replace(
            "max_rows_per_file = 200",
            "allow_personal = [\"email_sha256\"]",
        ),
    );
    let again = rebuy(
        &data,
        &["export", "run", "rfm_outreach", "--as-of", "2026-07-01"],
    );
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(files_in(&slot), ["_SUCCESS", "part-00000.csv"]);
    let m2 = manifest(&slot);
    assert_ne!(m2["run_id"], m["run_id"]);
    assert_eq!(m2["rows"], m["rows"]);
    let (header2, _) = csv_rows(&slot);
    assert_eq!(
        header2,
        ["customer_id", "segment", "monetary_usd", "email_sha256"]
    );
    assert_eq!(
        query_one(
            &data,
            "SELECT COUNT(*) FROM export_runs WHERE status = 'succeeded'"
        ),
        "2"
    );
}

#[test]
fn configuration_errors_name_the_job_before_anything_runs() {
    let good = r#"
[[export]]
name = "nightly"
view = "winback_candidates"
destination = "OUT/x"
schedule = "0 2 * * *"
purpose = "marketing"
"#;
    let cases = [
        (good.replace("0 2 * * *", "0 2 * *"), "`schedule` '0 2 * *'"),
        (
            good.replace("winback_candidates", "no_such_view"),
            "unknown view or table 'no_such_view'",
        ),
        (
            good.replace("OUT/x", "ht!tp:/nope"),
            "`destination` 'ht!tp:/nope'",
        ),
        (
            good.replace(
                "purpose = \"marketing\"",
                "purpose = \"marketing\"\n[export.options]\naws_secret_access_key = \"x\"",
            ),
            "looks like a credential",
        ),
        (
            good.replace(
                "view = \"winback_candidates\"",
                "sql = \"SELECT segment FROM customer_rfm\"",
            ),
            "needs a customer_id column",
        ),
    ];
    for (config, expected) in cases {
        let (_dir, data, out) = setup(&config);
        let run = rebuy(&data, &["export", "run", "nightly"]);
        assert_eq!(run.status.code(), Some(1), "{config}");
        let err = stderr(&run);
        assert!(
            err.contains("nightly") && err.contains(expected),
            "{expected}: {err}"
        );
        // The server refuses to start, before listening or exporting.
        let port = crate::server::free_port();
        let serve = Command::new(bin())
            .arg("--data")
            .arg(&data)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .output()
            .unwrap();
        assert_eq!(serve.status.code(), Some(1));
        let err = stderr(&serve);
        assert!(
            err.contains("nightly") && err.contains(expected),
            "{expected}: {err}"
        );
        assert!(files_in(&out).is_empty());
    }
    // An unknown job is named too.
    let (_dir, data, _out) = setup(good);
    let run = rebuy(&data, &["export", "run", "weekly"]);
    assert_eq!(run.status.code(), Some(1));
    assert!(
        stderr(&run).contains("no export job named 'weekly'"),
        "{}",
        stderr(&run)
    );
}

/// `rebuy serve` on a free port with `env`, once it listens.
fn serve(data: &Path, env: &[(&str, &str)]) -> (Proc, u16) {
    let port = crate::server::free_port();
    let child = Command::new(bin())
        .arg("--data")
        .arg(data)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Proc(child);
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (server, port)
}

fn serve_with_clock(data: &Path, clock: &str) -> Proc {
    serve(data, &[("REBUY_CLOCK", clock)]).0
}

fn wait_for(path: &Path, seconds: u64) {
    let started = Instant::now();
    while !path.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(seconds),
            "{} did not appear",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_schedule_fires_on_time_and_a_missed_slot_runs_once_at_the_next_start() {
    let (_dir, data, out) = setup(
        r#"
[server]
auth = "trust"

[[export]]
name = "winback"
view = "winback_candidates"
destination = "OUT"
schedule = "0 2 * * *"
timezone = "Asia/Shanghai"
purpose = "marketing"
"#,
    );
    // A first start at 01:00 in Shanghai on 2026-07-01, stopped before 02:00: the job is
    // watched from then on, nothing runs.
    let server = serve_with_clock(&data, "2026-06-30T17:00:00Z");
    wait_for(&data.join("_exports/schedule_state.json"), 30);
    drop(server);
    assert!(!out.join("winback").exists());

    // 17:59:57 UTC is 01:59:57 in Shanghai: the 02:00 run is due three seconds later, for
    // the slot (and as-of date) of 2026-07-02 there. The slot of 2026-07-01 was missed while
    // the server was down: it runs once at start.
    let server = serve_with_clock(&data, "2026-07-01T17:59:57Z");
    let missed = out.join("winback/dt=2026-07-01");
    wait_for(&missed.join("_SUCCESS"), 60);
    assert_eq!(manifest(&missed)["trigger"], "catch-up");
    let slot = out.join("winback/dt=2026-07-02");
    wait_for(&slot.join("_SUCCESS"), 60);
    let m = manifest(&slot);
    assert_eq!(m["as_of"], "2026-07-02");
    assert_eq!(m["trigger"], "schedule");
    let started = m["started_at"].as_str().unwrap().to_string();
    assert!(
        started.as_str() >= "2026-07-01T18:00:00" && started.as_str() < "2026-07-01T18:00:30",
        "started at {started} by the injected clock"
    );
    // Not again within the same day.
    std::thread::sleep(Duration::from_secs(2));
    drop(server);
    assert_eq!(query_one(&data, "SELECT COUNT(*) FROM export_runs"), "2");

    // Down over two nightly slots; the latest one runs once at the next start.
    let server = serve_with_clock(&data, "2026-07-04T05:00:00Z");
    let slot = out.join("winback/dt=2026-07-04");
    wait_for(&slot.join("_SUCCESS"), 60);
    assert_eq!(manifest(&slot)["trigger"], "catch-up");
    std::thread::sleep(Duration::from_secs(3));
    drop(server);
    assert!(!out.join("winback/dt=2026-07-03").exists());
    let runs = query(
        &data,
        "SELECT slot, \"trigger\", status FROM export_runs ORDER BY slot",
    );
    let runs: Vec<String> = runs.into_iter().map(|r| r.join(" ")).collect();
    assert_eq!(
        runs,
        [
            "2026-07-01 catch-up succeeded",
            "2026-07-02 schedule succeeded",
            "2026-07-04 catch-up succeeded"
        ]
    );
}

#[test]
fn killing_a_run_midway_leaves_no_visible_slot_and_is_recorded_as_interrupted() {
    let (_dir, data, out) = setup(
        r#"
[[export]]
name = "big"
sql = "SELECT o.*, g.value AS copy_no FROM orders o CROSS JOIN generate_series(1, 3000) g"
destination = "OUT"
format = "csv"
purpose = "analytics"
"#,
    );
    let child = Command::new(bin())
        .arg("--data")
        .arg(&data)
        .args(["export", "run", "big", "--as-of", "2026-07-01"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Proc(child);
    // Wait until the run is writing its files, then kill it.
    let tmp = out.join("_rebuy_tmp/big");
    let started = Instant::now();
    loop {
        let writing = std::fs::read_dir(&tmp)
            .map(|runs| {
                runs.flatten()
                    .any(|run| std::fs::read_dir(run.path()).is_ok_and(|mut f| f.next().is_some()))
            })
            .unwrap_or(false);
        if writing {
            break;
        }
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "the export finished before it was killed"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the export never started writing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    assert!(
        !out.join("big").exists(),
        "a killed run left a slot: {:?}",
        files_in(&out)
    );

    let list = rebuy(&data, &["export", "list"]);
    assert!(list.status.success(), "{}", stderr(&list));
    assert!(stdout(&list).contains("interrupted"), "{}", stdout(&list));
    assert_eq!(
        query(&data, "SELECT status, error IS NOT NULL FROM export_runs"),
        vec![vec!["interrupted".to_string(), "true".to_string()]]
    );
}

/// The whole object at `path`.
async fn fetch(store: &impl ObjectStore, path: &str) -> bytes::Bytes {
    store
        .get(&path.into())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
}

async fn list(store: &object_store::aws::AmazonS3, prefix: &str) -> BTreeMap<String, u64> {
    use futures::TryStreamExt;
    let prefix = object_store::path::Path::from(prefix);
    store
        .list(Some(&prefix))
        .map_ok(|m| (m.location.to_string(), m.size))
        .try_collect()
        .await
        .unwrap()
}

#[test]
fn s3_exports_retry_record_failure_then_succeed_and_replace_their_slot() {
    // Ports of this test's own, apart from the other SeaweedFS test's.
    let base = 38_000 + (std::process::id() % 1000) as u16 * 8;
    let s3_port = base + 3;
    let jobs = format!(
        r#"
[server]
auth = "trust"

[[user]]
name = "ops"
role = "admin"

[[export]]
name = "rfm"
view = "customer_rfm"
destination = "s3://{BUCKET}/segments"
purpose = "analytics"
retries = 2
retry_backoff_ms = 100

[export.options]
endpoint = "http://127.0.0.1:{s3_port}"
region = "us-east-1"
allow_http = "true"

[[export]]
name = "big"
sql = "SELECT o.*, g.value AS copy_no FROM orders o CROSS JOIN generate_series(1, 3000) g"
destination = "s3://{BUCKET}/segments"
format = "csv"
purpose = "analytics"

[export.options]
endpoint = "http://127.0.0.1:{s3_port}"
region = "us-east-1"
allow_http = "true"

[[export]]
name = "wide"
sql = "SELECT o.order_id, o.customer_id, o.order_ts, g.value AS copy_no FROM orders o CROSS JOIN generate_series(1, 300) g"
destination = "s3://{BUCKET}/segments"
format = "csv"
purpose = "analytics"

[export.options]
endpoint = "http://127.0.0.1:{s3_port}"
region = "us-east-1"
allow_http = "true"
"#
    );
    let (_dir, data, _out) = setup(&jobs);
    // `rebuy export run JOB` for 2026-07-01 with the S3 credentials in the environment.
    let export = |job: &str| {
        let mut c = Command::new(bin());
        c.arg("--data")
            .arg(&data)
            .args(["export", "run", job, "--as-of", "2026-07-01"])
            .env("AWS_ACCESS_KEY_ID", KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET);
        c
    };

    // The store is down: the attempts are retried, then the failure is recorded.
    let down = export("rfm").output().unwrap();
    assert_eq!(down.status.code(), Some(1));
    assert!(
        stderr(&down).contains("failed after 3 attempt(s)"),
        "{}",
        stderr(&down)
    );
    assert_eq!(
        query(
            &data,
            "SELECT status, attempts, error IS NOT NULL FROM export_runs"
        ),
        vec![vec![
            "failed".to_string(),
            "3".to_string(),
            "true".to_string()
        ]]
    );

    // Back up: the same command succeeds.
    let mut seaweed = start_seaweed_at(base);
    let store = s3_store(seaweed.s3_port);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // The S3 port opens before the bucket is ready. On a busy machine one of its fixed
        // ports may be briefly taken by another connection: then it exits and is started again.
        let deadline = Instant::now() + Duration::from_secs(120);
        let probe = object_store::path::Path::from("probe");
        while store.put(&probe, "x".into()).await.is_err() {
            assert!(Instant::now() < deadline, "SeaweedFS did not become ready");
            if seaweed.exited() {
                seaweed = start_seaweed_at(base);
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        store.delete(&probe).await.unwrap();
    });
    let up = export("rfm").output().unwrap();
    assert!(up.status.success(), "{}", stderr(&up));
    let slot = "segments/rfm/dt=2026-07-01";
    let first = runtime.block_on(async {
        let objects = list(&store, "segments").await;
        let names: Vec<&str> = objects.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                format!("{slot}/_SUCCESS").as_str(),
                format!("{slot}/part-00000.parquet").as_str()
            ]
        );
        let manifest: serde_json::Value =
            serde_json::from_slice(&fetch(&store, &format!("{slot}/_SUCCESS")).await).unwrap();
        // The Parquet file holds what the manifest says.
        let bytes = fetch(&store, &format!("{slot}/part-00000.parquet")).await;
        assert_eq!(
            bytes.len() as u64,
            manifest["files"][0]["bytes"].as_u64().unwrap()
        );
        let reader =
            datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                bytes,
            )
            .unwrap();
        let fields: Vec<String> = reader
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let rows: usize = reader.build().unwrap().map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(rows as u64, manifest["rows"].as_u64().unwrap());
        assert_eq!(fields[0], "customer_id");
        manifest
    });
    let customers = query_one(
        &data,
        "SET rebuy.as_of = '2026-07-01'; SELECT COUNT(*) FROM customer_rfm",
    );
    assert_eq!(first["rows"].to_string(), customers);

    // Again: the slot is replaced, not added to.
    let again = export("rfm").output().unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    runtime.block_on(async {
        let objects = list(&store, "segments").await;
        assert_eq!(objects.len(), 2, "{objects:?}");
        let manifest: serde_json::Value =
            serde_json::from_slice(&fetch(&store, &format!("{slot}/_SUCCESS")).await).unwrap();
        assert_ne!(manifest["run_id"], first["run_id"]);
    });
    let statuses = query(
        &data,
        "SELECT status FROM export_runs WHERE job = 'rfm' ORDER BY started_at",
    );
    assert_eq!(statuses.concat(), ["failed", "succeeded", "succeeded"]);

    // A run killed while it uploads leaves nothing in the job's folder.
    let log = data.join("export_run_log/_delta_log");
    let commits = || std::fs::read_dir(&log).map(|d| d.count()).unwrap_or(0);
    let before = commits();
    let child = export("big")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Proc(child);
    let started = Instant::now();
    while commits() == before {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the run did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "the export finished before it was killed"
    );
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    runtime.block_on(async {
        assert!(list(&store, "segments/big").await.is_empty());
    });

    // A file larger than one 10 MiB upload part goes up in parts and arrives whole.
    let wide = export("wide").output().unwrap();
    assert!(wide.status.success(), "{}", stderr(&wide));
    runtime.block_on(async {
        let slot = "segments/wide/dt=2026-07-01";
        let objects = list(&store, slot).await;
        let manifest: serde_json::Value =
            serde_json::from_slice(&fetch(&store, &format!("{slot}/_SUCCESS")).await).unwrap();
        let part = &objects[&format!("{slot}/part-00000.csv")];
        assert!(*part > 20 * 1024 * 1024, "{part} bytes");
        assert_eq!(*part, manifest["bytes"].as_u64().unwrap());
        let body = fetch(&store, &format!("{slot}/part-00000.csv")).await;
        let lines = body.iter().filter(|b| **b == b'\n').count();
        assert_eq!(lines as u64, 3000 * 300 + 1);
        assert_eq!(manifest["rows"], 3000 * 300);
    });

    // Admins' one-off COPY reaches the configured store, and no other.
    let (_server, port) = serve(
        &data,
        &[
            ("AWS_ACCESS_KEY_ID", KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ],
    );
    runtime.block_on(async {
        let admin = crate::server::connect_as(port, "ops", None).await.unwrap();
        admin
            .simple_query(&format!(
                "COPY (SELECT customer_id, segment FROM customer_rfm) TO 's3://{BUCKET}/oneoff/rfm.parquet' STORED AS PARQUET"
            ))
            .await
            .unwrap();
        let objects = list(&store, "oneoff").await;
        assert_eq!(objects.len(), 1, "{objects:?}");
        let err = admin
            .simple_query("COPY (SELECT 1) TO 's3://another-bucket/x.parquet' STORED AS PARQUET")
            .await
            .unwrap_err();
        assert_eq!(err.code().unwrap().code(), "42501", "{err:?}");
        let analyst = crate::server::connect_as(port, "analyst", None).await.unwrap();
        let err = analyst
            .simple_query(&format!(
                "COPY (SELECT 1) TO 's3://{BUCKET}/oneoff/b.parquet' STORED AS PARQUET"
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code().unwrap().code(), "42501", "{err:?}");
    });
}

/// Azurite (Azure blob emulator, npm `azurite@3.35.0`; `scripts/test` installs it under
/// /var/tmp/rebuy-azurite, or set REBUY_AZURITE to its `azurite-blob`) on a free port.
fn start_azurite() -> (Proc, u16, tempfile::TempDir) {
    let bin = std::env::var("REBUY_AZURITE")
        .unwrap_or_else(|_| "/var/tmp/rebuy-azurite/node_modules/.bin/azurite-blob".to_string());
    let dir = tempfile::tempdir().unwrap();
    let port = crate::server::free_port();
    let child = Command::new(&bin)
        .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
        .arg("--location")
        .arg(dir.path())
        .args(["--silent", "--skipApiVersionCheck", "--loose"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("Azurite ({bin}) must be installed (scripts/test does it): {e}")
        });
    let azurite = Proc(child);
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "Azurite did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (azurite, port, dir)
}

/// HMAC-SHA256, for the one request object_store cannot make: creating a container.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::sign(&key, message).as_ref().to_vec()
}

/// Creates a blob container in Azurite with a SharedKey-signed request of the emulator's
/// well-known development account.
fn create_container(port: u16, container: &str) {
    use base64::Engine;
    use std::io::{Read, Write};
    const ACCOUNT: &str = "devstoreaccount1";
    const KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    let b64 = base64::engine::general_purpose::STANDARD;
    let date = chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let version = "2021-08-06";
    let to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{ACCOUNT}/{ACCOUNT}/{container}\nrestype:container"
    );
    let signature = b64.encode(hmac_sha256(&b64.decode(KEY).unwrap(), to_sign.as_bytes()));
    let request = format!(
        "PUT /{ACCOUNT}/{container}?restype=container HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         x-ms-date: {date}\r\nx-ms-version: {version}\r\n\
         Authorization: SharedKey {ACCOUNT}:{signature}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let mut socket = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    socket.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 201"),
        "creating the container: {answer}"
    );
}

#[test]
fn azure_blob_exports_publish_a_slot_on_azurite() {
    let (_azurite, port, _azurite_dir) = start_azurite();
    create_container(port, "segments");
    let (_dir, data, _out) = setup(
        r#"
[[export]]
name = "layers"
sql = "SELECT customer_id, layer FROM customer_layers"
destination = "az://segments/rebuy"
format = "csv"
purpose = "analytics"

[export.options]
use_emulator = "true"
"#,
    );
    let endpoint = format!("http://127.0.0.1:{port}");
    let run = Command::new(bin())
        .arg("--data")
        .arg(&data)
        .args(["export", "run", "layers", "--as-of", "2026-07-01"])
        .env("AZURITE_BLOB_STORAGE_URL", &endpoint)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    // A reader pointed at this Azurite (the process environment is left alone).
    let store = object_store::azure::MicrosoftAzureBuilder::new()
        .with_account("devstoreaccount1")
        .with_access_key(
            "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
        )
        .with_container_name("segments")
        .with_endpoint(format!("{endpoint}/devstoreaccount1"))
        .with_allow_http(true)
        .build()
        .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let manifest = runtime.block_on(async {
        use futures::TryStreamExt;
        let names: Vec<String> = store
            .list(Some(&"rebuy".into()))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        let mut names = names;
        names.sort();
        assert_eq!(
            names,
            [
                "rebuy/layers/dt=2026-07-01/_SUCCESS",
                "rebuy/layers/dt=2026-07-01/part-00000.csv"
            ]
        );
        let csv = fetch(&store, &"rebuy/layers/dt=2026-07-01/part-00000.csv").await;
        let lines = csv.iter().filter(|b| **b == b'\n').count();
        let manifest: serde_json::Value =
            serde_json::from_slice(&fetch(&store, &"rebuy/layers/dt=2026-07-01/_SUCCESS").await)
                .unwrap();
        assert_eq!(manifest["rows"].as_u64().unwrap() as usize, lines - 1);
        manifest
    });
    let expected = query_one(
        &data,
        "SET rebuy.as_of = '2026-07-01'; SELECT COUNT(*) FROM customer_layers",
    );
    assert_eq!(manifest["rows"].to_string(), expected);
}

#[test]
fn sigterm_lets_a_running_scheduled_export_finish() {
    let (_dir, data, out) = setup(
        r#"
[server]
auth = "trust"

[[export]]
name = "wide"
sql = "SELECT o.order_id, o.customer_id, g.value AS copy_no FROM orders o CROSS JOIN generate_series(1, 1500) g"
destination = "OUT"
format = "csv"
schedule = "0 2 * * *"
purpose = "analytics"
"#,
    );
    let mut server = serve_with_clock(&data, "2026-07-01T01:59:59Z");
    // Once the run writes its files, ask the server to stop.
    let tmp = out.join("_rebuy_tmp/wide");
    let started = Instant::now();
    while !tmp.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the export did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let slot = out.join("wide/dt=2026-07-01");
    assert!(!slot.exists(), "the export finished before SIGTERM");
    let pid = server.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = server.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(manifest(&slot)["rows"], 3000 * 1500);
    assert_eq!(
        query(&data, "SELECT status FROM export_runs"),
        vec![vec!["succeeded".to_string()]]
    );
}

/// Two `rebuy export run` of one job at once (an operator's run during the scheduled one):
/// one runs, the other stops with "already running" (or runs after the first finished), and
/// at no moment does the slot's `_SUCCESS` list a file that is not there.
#[test]
fn concurrent_runs_of_a_job_take_turns_and_success_never_lists_a_missing_file() {
    let (_dir, data, out) = setup(MARKETING);
    let slot = out.join("segments/rfm_outreach/dt=2026-07-01");
    let mut refused = 0;
    let spawn_run = || {
        Command::new(bin())
            .arg("--data")
            .arg(&data)
            .args(["export", "run", "rfm_outreach", "--as-of", "2026-07-01"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    for round in 0..3 {
        let mut runs = vec![spawn_run(), spawn_run()];
        let mut checks = 0;
        while runs.iter_mut().any(|c| c.try_wait().unwrap().is_none()) {
            if let Ok(text) = std::fs::read_to_string(slot.join("_SUCCESS")) {
                let m: serde_json::Value = serde_json::from_str(&text).unwrap();
                for f in m["files"].as_array().unwrap() {
                    let name = f["path"].as_str().unwrap();
                    // The slot may be swapped between the two reads: then the manifest is gone too.
                    if !slot.join(name).exists() && slot.join("_SUCCESS").exists() {
                        let again = std::fs::read_to_string(slot.join("_SUCCESS")).unwrap();
                        assert_ne!(again, text, "round {round}: _SUCCESS lists missing {name}");
                    }
                }
                checks += 1;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let outputs: Vec<_> = runs
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let succeeded = outputs.iter().filter(|o| o.status.success()).count();
        assert!(succeeded >= 1, "round {round}: no run succeeded");
        for o in outputs.iter().filter(|o| !o.status.success()) {
            assert!(
                stderr(o).contains("already running"),
                "round {round}: {}",
                stderr(o)
            );
            refused += 1;
        }
        let m = manifest(&slot);
        for f in m["files"].as_array().unwrap() {
            assert!(slot.join(f["path"].as_str().unwrap()).is_file());
        }
        // No lock and no staging folder is left behind.
        assert!(!out.join("segments/_rebuy_tmp").exists());
        let _ = checks;
    }
    let _ = refused;

    // Deterministically: a live holder (this test process) makes a run stop at once and leaves
    // the holder's staging folder alone; a holder whose process is gone is taken over.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let lock = out.join("segments/_rebuy_tmp/rfm_outreach.lock");
    let staging = out.join("segments/_rebuy_tmp/rfm_outreach/live-run/part-00000.csv");
    std::fs::create_dir_all(staging.parent().unwrap()).unwrap();
    std::fs::write(&staging, "being written\n").unwrap();
    let holder = |pid: u32| {
        serde_json::json!({"run_id": "live-run", "host": host, "pid": pid, "since": chrono::Utc::now().to_rfc3339()})
            .to_string()
    };
    std::fs::write(&lock, holder(std::process::id())).unwrap();
    let before = std::fs::read_to_string(slot.join("_SUCCESS")).unwrap();
    let run = rebuy(
        &data,
        &["export", "run", "rfm_outreach", "--as-of", "2026-07-01"],
    );
    assert_eq!(run.status.code(), Some(1));
    assert!(stderr(&run).contains("already running"), "{}", stderr(&run));
    assert!(
        staging.exists(),
        "the live run's staging folder was removed"
    );
    assert_eq!(
        std::fs::read_to_string(slot.join("_SUCCESS")).unwrap(),
        before
    );
    // A dead holder: a process that has exited.
    let mut gone = Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    std::fs::write(&lock, holder(gone_pid)).unwrap();
    let run = rebuy(
        &data,
        &["export", "run", "rfm_outreach", "--as-of", "2026-07-01"],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(!lock.exists() && !staging.exists());
}
