//! `rebuy serve` over real sockets with tokio-postgres: both protocols, binary and text
//! results, SQLSTATEs, roles, SCRAM, limits, copies, bad clients and shutdown.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use crate::common::*;

pub struct Server {
    child: Child,
    pub port: u16,
    pub data: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    /// What the server wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A copy of the fixture warehouse with `config` as rebuy.toml, served on a free port.
pub fn start(config: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_dir(&manifest_dir().join("data/fixture/warehouse"), &data);
    let port = free_port();
    std::fs::write(
        data.join("rebuy.toml"),
        format!("[server]\nlisten = \"127.0.0.1:{port}\"\n{config}"),
    )
    .unwrap();
    spawn(dir, data, port, &[])
}

pub fn spawn(dir: tempfile::TempDir, data: PathBuf, port: u16, extra: &[&str]) -> Server {
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    let child = Command::new(bin())
        .arg("--data")
        .arg(&data)
        .arg("serve")
        .args(extra)
        .env("REBUY_LOG", "rebuy=info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let server = Server {
        child,
        port,
        data,
        _dir: dir,
    };
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "server did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

pub async fn connect_as(
    port: u16,
    user: &str,
    password: Option<&str>,
) -> Result<Client, tokio_postgres::Error> {
    let mut conf = format!("host=127.0.0.1 port={port} user={user} dbname=rebuy");
    if let Some(p) = password {
        conf.push_str(&format!(" password={p}"));
    }
    let (client, connection) = tokio_postgres::connect(&conf, NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

pub async fn connect(port: u16) -> Client {
    connect_as(port, "analyst", None).await.unwrap()
}

pub fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| format!("no code: {e}"))
}

pub async fn simple_rows(client: &Client, sql: &str) -> Vec<Vec<Option<String>>> {
    client
        .simple_query(sql)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}

pub const TRUST: &str = "auth = \"trust\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_protocols_answer_like_rebuy_query() {
    let server = start(TRUST);
    let client = connect(server.port).await;
    let expected = query_one(&server.data, "SELECT COUNT(*) FROM orders");
    // Simple protocol, text results.
    let rows = simple_rows(&client, "SELECT COUNT(*) FROM orders").await;
    assert_eq!(rows, vec![vec![Some(expected.clone())]]);
    // Extended protocol, binary results, a parameter whose type is inferred.
    let region = query_one(
        &server.data,
        "SELECT region FROM orders ORDER BY order_id LIMIT 1",
    );
    let by_region: i64 = client
        .query_one("SELECT COUNT(*) FROM orders WHERE region = $1", &[&region])
        .await
        .unwrap()
        .get(0);
    let want = query_one(
        &server.data,
        &format!("SELECT COUNT(*) FROM orders WHERE region = '{region}'"),
    );
    assert_eq!(by_region.to_string(), want);
    // Views and rebuy functions are there.
    let champions: i64 = client
        .query_one(
            "SELECT COUNT(*) FROM customer_rfm WHERE segment = 'Champions'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        champions.to_string(),
        query_one(
            &server.data,
            "SELECT COUNT(*) FROM customer_rfm WHERE segment = 'Champions'"
        )
    );
    // A prepared statement executed twice with different parameters.
    let stmt = client
        .prepare_typed(
            "SELECT rfm_segment($1, $2, $3)",
            &[tokio_postgres::types::Type::INT8; 3],
        )
        .await
        .unwrap();
    let a: String = client
        .query_one(&stmt, &[&5i64, &5i64, &5i64])
        .await
        .unwrap()
        .get(0);
    let b: String = client
        .query_one(&stmt, &[&1i64, &1i64, &1i64])
        .await
        .unwrap()
        .get(0);
    assert_eq!((a.as_str(), b.as_str()), ("Champions", "Lost"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_and_text_values_of_every_type() {
    let server = start(TRUST);
    let client = connect(server.port).await;
    let sql = "SELECT true AS b, CAST(7 AS SMALLINT) AS i2, CAST(70000 AS INT) AS i4, \
               CAST(7000000000 AS BIGINT) AS i8, CAST(1.5 AS REAL) AS f4, CAST(2.25 AS DOUBLE) AS f8, \
               'héllo' AS t, DATE '2026-07-01' AS d, TIMESTAMP '2026-07-01 12:34:56' AS ts, \
               to_timestamp_seconds(1782909296) AT TIME ZONE 'UTC' AS tstz, \
               make_array(CAST(1.5 AS DOUBLE), CAST(2.5 AS DOUBLE)) AS arr, \
               named_struct('r', CAST(1.5 AS DOUBLE), 'alpha', CAST(2.0 AS DOUBLE)) AS model";
    let row = client.query_one(sql, &[]).await.unwrap();
    assert!(row.get::<_, bool>("b"));
    assert_eq!(row.get::<_, i16>("i2"), 7);
    assert_eq!(row.get::<_, i32>("i4"), 70000);
    assert_eq!(row.get::<_, i64>("i8"), 7_000_000_000);
    assert_eq!(row.get::<_, f32>("f4"), 1.5);
    assert_eq!(row.get::<_, f64>("f8"), 2.25);
    assert_eq!(row.get::<_, String>("t"), "héllo");
    assert_eq!(
        row.get::<_, chrono::NaiveDate>("d"),
        chrono::NaiveDate::from_ymd_opt(2026, 7, 1).unwrap()
    );
    assert_eq!(
        row.get::<_, chrono::NaiveDateTime>("ts").to_string(),
        "2026-07-01 12:34:56"
    );
    assert_eq!(row.get::<_, Vec<f64>>("arr"), vec![1.5, 2.5]);
    let model: String = row.get("model");
    let json: serde_json::Value = serde_json::from_str(&model).unwrap();
    assert_eq!(json["alpha"], serde_json::json!(2.0));
    // The same in text.
    let text = simple_rows(&client, sql).await;
    let t = &text[0];
    assert_eq!(t[0].as_deref(), Some("t"));
    assert_eq!(t[7].as_deref(), Some("2026-07-01"));
    // As PostgreSQL prints them: no zero fraction, `+00` for UTC.
    assert_eq!(t[8].as_deref(), Some("2026-07-01 12:34:56"));
    assert_eq!(t[9].as_deref(), Some("2026-07-01 12:34:56+00"));
    assert_eq!(t[10].as_deref(), Some("{1.5,2.5}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_sqlstates_and_the_connection_stays_usable() {
    let server = start(TRUST);
    let client = connect(server.port).await;
    let cases = [
        ("SELEC 1", "42601"),
        ("SELECT * FROM no_such_table", "42P01"),
        ("SELECT no_such_column FROM orders", "42703"),
        ("SELECT no_such_function(1)", "42883"),
        ("SELECT rfm_segment(9, 1, 1)", "22023"),
        ("INSERT INTO customers (customer_id) VALUES ('x')", "25006"),
        ("DROP VIEW customer_rfm", "25006"),
        ("CREATE TABLE x AS SELECT 1", "25006"),
        ("COPY orders TO '/tmp/rebuy-stolen.csv'", "42501"),
        (
            "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
            "42501",
        ),
        ("SHOW no_such_setting", "42704"),
    ];
    for (sql, code) in cases {
        let simple = client.simple_query(sql).await.unwrap_err();
        assert_eq!(sqlstate(&simple), code, "simple protocol: {sql}");
        if !sql.starts_with("CREATE EXTERNAL") && !sql.starts_with("SHOW") {
            let extended = client.query(sql, &[]).await.unwrap_err();
            assert_eq!(sqlstate(&extended), code, "extended protocol: {sql}");
        }
        let ok: i64 = client
            .query_one("SELECT 1::BIGINT", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(ok, 1);
    }
    assert!(!Path::new("/tmp/rebuy-stolen.csv").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_timeout_and_cancel_stop_a_query_with_57014() {
    let server = start(TRUST);
    let client = connect(server.port).await;
    let slow = "SELECT COUNT(*) FROM orders a, orders b, orders c WHERE a.amount + b.amount + c.amount < 0";
    client
        .batch_execute("SET statement_timeout = 300")
        .await
        .unwrap();
    let started = Instant::now();
    let e = client.simple_query(slow).await.unwrap_err();
    assert_eq!(sqlstate(&e), "57014");
    assert!(started.elapsed() < Duration::from_secs(10));
    client
        .batch_execute("SET statement_timeout = 0")
        .await
        .unwrap();
    let token = client.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        token.cancel_query(NoTls).await.unwrap();
    });
    let started = Instant::now();
    let e = client.query(slow, &[]).await.unwrap_err();
    canceller.await.unwrap();
    assert_eq!(sqlstate(&e), "57014");
    assert!(started.elapsed() < Duration::from_secs(10));
    let ok: i64 = client
        .query_one("SELECT 2::BIGINT", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(ok, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_connections_get_53300_and_others_keep_working() {
    let server = start("auth = \"trust\"\nmax_connections = 2\n");
    // The start-up probe's connection may hold a slot for a moment: retry on 53300.
    async fn connect_patiently(port: u16) -> Client {
        for _ in 0..100 {
            match connect_as(port, "analyst", None).await {
                Ok(c) => return c,
                Err(e) if sqlstate(&e) == "53300" => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("{e}"),
            }
        }
        panic!("no free connection slot")
    }
    let a = connect_patiently(server.port).await;
    let _b = connect_patiently(server.port).await;
    let e = connect_as(server.port, "analyst", None)
        .await
        .err()
        .unwrap();
    assert_eq!(sqlstate(&e), "53300");
    let ok: i64 = a.query_one("SELECT 3::BIGINT", &[]).await.unwrap().get(0);
    assert_eq!(ok, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_logins_and_roles() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_dir(&manifest_dir().join("data/fixture/warehouse"), &data);
    for (name, role, password) in [("ana", "analyst", "pw-ana"), ("root", "admin", "pw-root")] {
        let out = Command::new(bin())
            .args(["--data"])
            .arg(&data)
            .args(["user", "add", name, "--role", role])
            .env("REBUY_PASSWORD", password)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let config = std::fs::read_to_string(data.join("rebuy.toml")).unwrap();
    assert!(!config.contains("pw-ana") && config.contains("SCRAM-SHA-256$4096:"));
    // Trust on a non-loopback address is refused at start-up.
    let refused = Command::new(bin())
        .arg("--data")
        .arg(&data)
        .args(["serve", "--listen", "0.0.0.0:0", "--config"])
        .arg(manifest_dir().join("tests/server-trust.toml"))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("trust is allowed on loopback only"),
        "{}",
        stderr(&refused)
    );

    let port = free_port();
    let server = spawn(dir, data, port, &["--listen", &format!("127.0.0.1:{port}")]);
    let e = connect_as(server.port, "ana", Some("wrong"))
        .await
        .err()
        .unwrap();
    assert_eq!(sqlstate(&e), "28P01");
    let e = connect_as(server.port, "nobody", Some("x"))
        .await
        .err()
        .unwrap();
    assert_eq!(sqlstate(&e), "28P01");
    let ana = connect_as(server.port, "ana", Some("pw-ana"))
        .await
        .unwrap();
    let who = simple_rows(&ana, "SELECT current_user").await;
    assert_eq!(who[0][0].as_deref(), Some("ana"));
    let e = ana
        .simple_query("CREATE VIEW v AS SELECT 1")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "25006");
    let root = connect_as(server.port, "root", Some("pw-root"))
        .await
        .unwrap();
    root.simple_query("CREATE VIEW admin_view AS SELECT 1 AS one")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_to_stdout_and_portal_row_limits() {
    let server = start(TRUST);
    let client = connect(server.port).await;
    use futures::StreamExt;
    let stream = client
        .copy_out("COPY (SELECT order_id, amount FROM orders ORDER BY order_id LIMIT 3) TO STDOUT WITH (FORMAT csv, HEADER)")
        .await
        .unwrap();
    let chunks: Vec<_> = stream.collect().await;
    let text: String = chunks
        .into_iter()
        .map(|c| String::from_utf8(c.unwrap().to_vec()).unwrap())
        .collect();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(lines[0], "order_id,amount");
    // A portal read 2 rows at a time.
    let mut tx_client = connect(server.port).await;
    let tx = tx_client.transaction().await.unwrap();
    let stmt = tx
        .prepare("SELECT order_id FROM orders ORDER BY order_id LIMIT 5")
        .await
        .unwrap();
    let portal = tx.bind(&stmt, &[]).await.unwrap();
    let first = tx.query_portal(&portal, 2).await.unwrap();
    let second = tx.query_portal(&portal, 2).await.unwrap();
    let third = tx.query_portal(&portal, 2).await.unwrap();
    assert_eq!((first.len(), second.len(), third.len()), (2, 2, 1));
    let a: String = first[1].get(0);
    let b: String = second[0].get(0);
    assert!(a < b);
    tx.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_over_its_memory_limit_gets_53200_and_others_go_on() {
    let server = start("auth = \"trust\"\nquery_memory_mb = 16\n");
    let client = connect(server.port).await;
    let greedy = "SELECT array_agg(a.order_id || b.order_id) FROM orders a CROSS JOIN orders b";
    let e = client.simple_query(greedy).await.unwrap_err();
    assert_eq!(sqlstate(&e), "53200", "{e}");
    let n: i64 = client
        .query_one("SELECT COUNT(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    assert!(n > 0);
    // A sort larger than the limit spills to disk instead of failing.
    let sorted: i64 = client
        .query_one(
            "SELECT COUNT(*) FROM (SELECT a.order_id AS x, b.customer_id AS y FROM orders a CROSS JOIN (SELECT customer_id FROM orders LIMIT 300) b ORDER BY 1, 2)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(sorted, n * 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_vanishing_clients_harm_nobody() {
    use std::io::Write;
    let server = start(TRUST);
    let good = connect(server.port).await;
    // Random bytes instead of a startup packet, a truncated packet, and a client that leaves
    // in the middle of a long query.
    for junk in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        &[0, 0, 0, 200, 1, 2][..],
        &[0xff; 64][..],
    ] {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        let _ = s.write_all(junk);
    }
    {
        let leaver = connect(server.port).await;
        let slow = tokio::spawn(async move {
            let _ = leaver
                .simple_query("SELECT COUNT(*) FROM orders a, orders b, orders c WHERE a.amount + b.amount + c.amount < 0")
                .await;
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        slow.abort();
    }
    let n: i64 = good
        .query_one("SELECT COUNT(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    assert!(n > 0);
    let fresh = connect(server.port).await;
    let m: i64 = fresh
        .query_one("SELECT COUNT(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, m);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_are_closed() {
    let server = start("auth = \"trust\"\nidle_timeout_secs = 1\n");
    let client = connect(server.port).await;
    client.simple_query("SELECT 1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(client.simple_query("SELECT 1").await.is_err());
    assert!(client.is_closed());
    let again = connect(server.port).await;
    again.simple_query("SELECT 1").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_running_query_finish_then_stops() {
    let mut server = start(TRUST);
    let client = connect(server.port).await;
    let running = tokio::spawn(async move {
        client
            .query_one(
                "SELECT COUNT(*) FROM orders a, (SELECT * FROM orders LIMIT 400) b WHERE a.amount + b.amount > 0",
                &[],
            )
            .await
            .map(|r| r.get::<_, i64>(0))
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let answered = running.await.unwrap();
    assert!(answered.is_ok(), "the running query was cut: {answered:?}");
    let started = Instant::now();
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "server did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(std::net::TcpStream::connect(("127.0.0.1", server.port)).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_demo_fills_an_empty_directory_and_admits_psql_style_logins() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let server = spawn(
        dir,
        data,
        port,
        &[
            "--demo",
            "--demo-orders",
            "3000",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ],
    );
    let client = connect(server.port).await;
    let n: i64 = client
        .query_one("SELECT COUNT(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    assert!(n > 2500, "{n}");
    let layers = simple_rows(
        &client,
        "SELECT layer, COUNT(*) FROM customer_layers GROUP BY layer",
    )
    .await;
    assert!(layers.len() >= 3, "{layers:?}");
}
