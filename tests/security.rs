//! `rebuy serve` attacked as an analyst (and a careless admin) would: writes hidden in EXPLAIN
//! ANALYZE, session objects leaking between users, statements built to exhaust the stack or
//! memory, fits that ignore timeouts, idle sockets, stored secrets that log in, admin file
//! access. Real sockets, real clients (tokio-postgres, psql, a raw SCRAM client).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::server::{Server, connect_as, free_port, simple_rows, spawn, sqlstate, start};
use crate::common::*;

const TRUST_USERS: &str = "auth = \"trust\"\n\n[[user]]\nname = \"boss\"\nrole = \"admin\"\n";

fn delta_versions(server: &Server, table: &str) -> usize {
    std::fs::read_dir(server.data.join(table).join("_delta_log"))
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".json"))
            })
            .count()
        })
        .unwrap_or(0)
}

async fn code_of(client: &tokio_postgres::Client, sql: &str) -> String {
    match client.simple_query(sql).await {
        Ok(_) => "ok".to_string(),
        Err(e) => sqlstate(&e),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analysts_cannot_write_through_explain_analyze_or_any_nested_plan() {
    let mut server = start(TRUST_USERS);
    let analyst = connect_as(server.port, "analyst", None).await.unwrap();
    let count = |t: &str| query_one(&server.data, &format!("SELECT COUNT(*) FROM {t}"));
    let (orders, customers, consent) = (
        count("orders"),
        count("customers"),
        query_one(
            &server.data,
            "SELECT COUNT(*) FROM customers WHERE marketing_consent",
        ),
    );
    let versions = (
        delta_versions(&server, "orders"),
        delta_versions(&server, "customers"),
    );
    for sql in [
        "EXPLAIN ANALYZE INSERT INTO orders SELECT * FROM orders LIMIT 1",
        "EXPLAIN ANALYZE INSERT OVERWRITE orders SELECT * FROM orders WHERE false",
        "EXPLAIN ANALYZE DELETE FROM customers",
        "EXPLAIN ANALYZE UPDATE customers SET marketing_consent = NOT marketing_consent",
        "EXPLAIN INSERT INTO orders SELECT * FROM orders LIMIT 1",
        "INSERT INTO orders SELECT * FROM orders LIMIT 1",
        "DELETE FROM customers",
        "EXPLAIN ANALYZE INSERT INTO export_run_log SELECT * FROM export_run_log",
        "EXPLAIN ANALYZE CREATE TABLE t AS SELECT 1",
        "SELECT 1 AS x INTO t",
        "EXPLAIN ANALYZE COPY (SELECT 1) TO '/tmp/rebuy-analyst.csv'",
    ] {
        let code = code_of(&analyst, sql).await;
        assert!(
            ["25006", "42501", "0A000"].contains(&code.as_str()),
            "{sql}: expected a refusal, got {code}"
        );
        // Over the extended protocol too.
        let e = analyst.query(sql, &[]).await.err();
        assert!(e.is_some(), "{sql}: accepted over the extended protocol");
    }
    assert_eq!(count("orders"), orders);
    assert_eq!(count("customers"), customers);
    assert_eq!(
        query_one(
            &server.data,
            "SELECT COUNT(*) FROM customers WHERE marketing_consent"
        ),
        consent
    );
    assert_eq!(
        (
            delta_versions(&server, "orders"),
            delta_versions(&server, "customers")
        ),
        versions,
        "no commit"
    );
    assert!(!std::path::Path::new("/tmp/rebuy-analyst.csv").exists());
    // Reads still work, EXPLAIN included.
    assert_eq!(
        code_of(&analyst, "EXPLAIN ANALYZE SELECT COUNT(*) FROM orders").await,
        "ok"
    );
    assert!(server.alive());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_session_creates_is_seen_by_no_other_session_and_ends_with_it() {
    let server = start(TRUST_USERS);
    let a = connect_as(server.port, "boss", None).await.unwrap();
    let b = connect_as(server.port, "boss", None).await.unwrap();
    let analyst = connect_as(server.port, "analyst", None).await.unwrap();
    a.batch_execute("CREATE TABLE mine AS SELECT order_id FROM orders LIMIT 5")
        .await
        .unwrap();
    a.batch_execute("SELECT 1 AS one INTO also_mine")
        .await
        .unwrap();
    assert_eq!(
        simple_rows(&a, "SELECT COUNT(*) FROM mine").await[0][0].as_deref(),
        Some("5")
    );
    for (who, client) in [("another admin", &b), ("an analyst", &analyst)] {
        for t in ["mine", "also_mine"] {
            assert_eq!(
                code_of(client, &format!("SELECT * FROM {t}")).await,
                "42P01",
                "{who} sees {t}"
            );
        }
    }
    drop(a);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c = connect_as(server.port, "boss", None).await.unwrap();
    assert_eq!(code_of(&c, "SELECT * FROM mine").await, "42P01");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_and_huge_statements_get_54001_and_the_server_lives() {
    let mut server = start("auth = \"trust\"\n");
    let client = connect_as(server.port, "analyst", None).await.unwrap();
    let chain = |n: usize, op: &str| {
        format!(
            "SELECT {}",
            std::iter::repeat_n("1", n).collect::<Vec<_>>().join(op)
        )
    };
    // The 4 KB statement: 2,000 terms.
    let four_kb = chain(2_000, "+");
    assert!(four_kb.len() >= 3_999);
    assert_eq!(code_of(&client, &four_kb).await, "54001");
    assert_eq!(
        sqlstate(&client.query(four_kb.as_str(), &[]).await.unwrap_err()),
        "54001"
    );
    let and_chain = format!(
        "SELECT COUNT(*) FROM orders WHERE {}",
        std::iter::repeat_n("amount > 0", 3_000)
            .collect::<Vec<_>>()
            .join(" AND ")
    );
    assert_eq!(code_of(&client, &and_chain).await, "54001");
    let nested = format!("SELECT {}1{}", "(".repeat(5_000), ")".repeat(5_000));
    assert_eq!(code_of(&client, &nested).await, "54001");
    // Just under the limit still answers, and quickly.
    let started = Instant::now();
    let rows = simple_rows(&client, &chain(900, " + ")).await;
    assert_eq!(rows[0][0].as_deref(), Some("900"));
    assert!(started.elapsed() < Duration::from_secs(20));
    // Placeholder numbers beyond PostgreSQL's 65535.
    for sql in ["SELECT $40000000", "SELECT $18446744073709551615"] {
        assert_eq!(code_of(&client, sql).await, "42P02", "{sql}");
        let e = client.prepare(sql).await.unwrap_err();
        assert_eq!(sqlstate(&e), "42P02", "{sql}");
    }
    assert!(server.alive());
    assert_eq!(
        simple_rows(&client, "SELECT 1").await[0][0].as_deref(),
        Some("1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_listed_engine_settings_within_bounds_and_no_value_outgrows_the_query_limit() {
    let server = start("auth = \"trust\"\nquery_memory_mb = 64\n");
    let client = connect_as(server.port, "analyst", None).await.unwrap();
    for (sql, want) in [
        ("SET datafusion.execution.target_partitions = 4000", "22023"),
        ("SET datafusion.execution.target_partitions = 2", "ok"),
        ("SET datafusion.sql_parser.dialect = 'mysql'", "42501"),
        ("SET datafusion.runtime.memory_limit = '100G'", "42501"),
        ("SET datafusion.execution.batch_size = 4096", "ok"),
        ("SELECT repeat('x', 800000000)", "54000"),
        ("SELECT range(1, 50000000)", "54000"),
        ("SELECT length(repeat('x', 1000))", "ok"),
        (
            "SELECT length(replace(repeat('a', 60000000), 'a', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'))",
            "54000",
        ),
        (
            "SELECT length(regexp_replace(repeat('a', 6000000), 'a', 'aaaaaaaaaaaaaaaaaaaa', 'g'))",
            "54000",
        ),
        (
            "SELECT cardinality(flatten(array_repeat(range(1, 5000000), 20)))",
            "54000",
        ),
        (
            "SELECT levenshtein(repeat('a', 80000), repeat('b', 80000))",
            "54000",
        ),
        ("SELECT levenshtein('kitten', 'sitting')", "ok"),
        (
            "SELECT cardinality(range(TIMESTAMP '2000-01-01', TIMESTAMP '2004-01-01', INTERVAL '1 second'))",
            "54000",
        ),
        (
            "SELECT length(regexp_replace(repeat('a', 10000000), '^.*$', '$0$0$0$0$0$0$0$0$0$0'))",
            "54000",
        ),
        (
            "SELECT cardinality(make_array(repeat('a', 30000000), repeat('b', 30000000), repeat('c', 30000000)))",
            "54000",
        ),
    ] {
        assert_eq!(code_of(&client, sql).await, want, "{sql}");
    }
    let shown = simple_rows(&client, "SHOW datafusion.execution.target_partitions").await;
    assert_eq!(shown[0][0].as_deref(), Some("2"));
    // Seconds of constant folding on one connection neither outlast its statement timeout
    // nor hold up another connection (planning runs off the async workers).
    client
        .batch_execute("SET statement_timeout = 1000")
        .await
        .unwrap();
    let heavy = "SELECT length(repeat('a', 30000000) || repeat('b', 30000000) || repeat('c', 30000000) \
                 || repeat('d', 30000000) || repeat('e', 30000000) || repeat('f', 30000000))";
    let other = connect_as(server.port, "analyst", None).await.unwrap();
    let started = Instant::now();
    let (heavy_result, answered) = tokio::join!(client.simple_query(heavy), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let asked = Instant::now();
        simple_rows(&other, "SELECT 1").await;
        asked.elapsed()
    });
    // Unguarded, the folding takes about 2.6 s here.
    assert!(
        started.elapsed() < Duration::from_millis(2000),
        "{:?}",
        started.elapsed()
    );
    if let Err(e) = heavy_result {
        assert!(
            ["57014", "54000", "53200"].contains(&sqlstate(&e).as_str()),
            "{e}"
        );
    }
    assert!(
        answered < Duration::from_secs(1),
        "SELECT 1 waited {answered:?}"
    );
}

/// A fit with many distinct (frequency, recency, t) triples: seconds of work.
const SLOW_FIT: &str = "SELECT bgnbd_fit(f, CASE WHEN f > 0 THEN t * (1 + value % 97) / 100.0 ELSE 0 END, t) \
     FROM (SELECT value, CAST(value % 23 AS DOUBLE) AS f, CAST(100 + value % 1009 AS DOUBLE) AS t \
     FROM range(1, 200000))";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fits_stop_at_the_timeout_the_maximum_a_cancel_and_a_hang_up() {
    let server = start("auth = \"trust\"\nmax_statement_timeout_ms = 3000\n");
    let client = connect_as(server.port, "analyst", None).await.unwrap();
    // A session timeout.
    client
        .batch_execute("SET statement_timeout = 1500")
        .await
        .unwrap();
    let started = Instant::now();
    let e = client.simple_query(SLOW_FIT).await.unwrap_err();
    assert_eq!(sqlstate(&e), "57014", "{e}");
    assert!(
        started.elapsed() < Duration::from_millis(1500 + 1500),
        "stopped after {:?}",
        started.elapsed()
    );
    // 0 means the server's maximum, not "none".
    client
        .batch_execute("SET statement_timeout = 0")
        .await
        .unwrap();
    let started = Instant::now();
    let e = client.simple_query(SLOW_FIT).await.unwrap_err();
    assert_eq!(sqlstate(&e), "57014");
    assert!(started.elapsed() < Duration::from_millis(3000 + 1500));
    let message = e
        .as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_default();
    assert!(message.contains("statement timeout"), "{message}");
    // A cancel request; meanwhile another connection is answered.
    let token = client.cancel_token();
    let other = connect_as(server.port, "analyst", None).await.unwrap();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let asked = Instant::now();
        let one = simple_rows(&other, "SELECT 41 + 1").await;
        let answered = asked.elapsed();
        token.cancel_query(tokio_postgres::NoTls).await.unwrap();
        (one, answered)
    });
    let started = Instant::now();
    let e = client.simple_query(SLOW_FIT).await.unwrap_err();
    let (one, answered) = canceller.await.unwrap();
    assert_eq!(sqlstate(&e), "57014");
    assert!(started.elapsed() < Duration::from_millis(700 + 2500));
    assert_eq!(one[0][0].as_deref(), Some("42"));
    assert!(
        answered < Duration::from_secs(2),
        "other connection waited {answered:?}"
    );
    // A client that hangs up mid-fit: its statement is stopped.
    let mut raw = raw_login(server.port, "analyst");
    send_query(&mut raw, SLOW_FIT);
    std::thread::sleep(Duration::from_millis(600));
    drop(raw);
    let deadline = Instant::now() + Duration::from_secs(4);
    while !server.log().contains("client disconnected") {
        assert!(
            Instant::now() < deadline,
            "no stop after the hang-up:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_a_fit_after_the_grace_and_the_server_pool_bounds_every_query() {
    let pooled = start("auth = \"trust\"\nmemory_mb = 4\n");
    let client = connect_as(pooled.port, "analyst", None).await.unwrap();
    // The server's pool (4 MB here) bounds a query whose own share (2 GB) would not.
    let join =
        "SELECT COUNT(*) FROM range(1, 300000) a JOIN range(1, 300000) b ON a.value = b.value";
    assert_eq!(code_of(&client, join).await, "53200");
    assert_eq!(
        simple_rows(&client, "SELECT 1").await[0][0].as_deref(),
        Some("1")
    );

    let mut server = start("auth = \"trust\"\nshutdown_grace_secs = 1\n");
    let client = connect_as(server.port, "analyst", None).await.unwrap();
    let running = tokio::spawn(async move { client.simple_query(SLOW_FIT).await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!running.is_finished(), "the fit should still be running");
    let killed = Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let signalled = Instant::now();
    while server.alive() {
        assert!(
            signalled.elapsed() < Duration::from_secs(6),
            "still running {:?} after SIGTERM:\n{}",
            signalled.elapsed(),
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(running.await.unwrap().is_err());
    assert!(
        server.log().contains("shutdown grace over"),
        "{}",
        server.log()
    );
}

/// A cross join whose filter rejects every row never yields: two of them froze both protocol
/// workers (no timeout, no `SELECT 1`) until queries got threads of their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_that_never_yield_neither_outlast_their_timeout_nor_stall_others() {
    let server = start("auth = \"trust\"\nmax_statement_timeout_ms = 1500\n");
    let join = "SELECT count(*) FROM range(1, 20000) a CROSS JOIN range(1, 20000) b \
                WHERE md5(a.value::text || b.value::text) = 'x'";
    let a = connect_as(server.port, "eve", None).await.unwrap();
    let b = connect_as(server.port, "mallory", None).await.unwrap();
    let other = connect_as(server.port, "analyst", None).await.unwrap();
    let started = Instant::now();
    let (ra, rb, answered) = tokio::join!(a.simple_query(join), b.simple_query(join), async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let asked = Instant::now();
        simple_rows(&other, "SELECT 1").await;
        asked.elapsed()
    });
    for r in [ra, rb] {
        assert_eq!(sqlstate(&r.unwrap_err()), "57014");
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(
        answered < Duration::from_secs(1),
        "SELECT 1 waited {answered:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_that_never_log_in_are_closed_and_cannot_lock_anyone_out() {
    let server = start(
        "auth = \"trust\"\nmax_connections = 5\nauth_timeout_secs = 1\nmax_unauthenticated = 3\n",
    );
    let mut idle: Vec<TcpStream> = (0..6)
        .map(|_| TcpStream::connect(("127.0.0.1", server.port)).unwrap())
        .collect();
    // Within a few seconds a real login gets in although six sockets stay open.
    let started = Instant::now();
    let client = loop {
        match connect_as(server.port, "analyst", None).await {
            Ok(c) => break c,
            Err(e) => {
                assert_eq!(sqlstate(&e), "53300", "{e}");
                assert!(started.elapsed() < Duration::from_secs(4), "locked out");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(
        simple_rows(&client, "SELECT 1").await[0][0].as_deref(),
        Some("1")
    );
    // The idle sockets were closed by the server.
    for s in &mut idle {
        s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        let mut buf = [0u8; 64];
        let closed = match s.read(&mut buf) {
            Ok(0) => true,
            Ok(_) => true, // a FATAL message, then the close
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        };
        assert!(closed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_keeps_a_bounded_number_of_prepared_statements() {
    let server = start("auth = \"trust\"\n");
    let mut s = raw_login(server.port, "analyst");
    let mut batch = Vec::new();
    for i in 0..1_005 {
        let mut body = format!("s{i}\0select 1\0").into_bytes();
        body.extend_from_slice(&0u16.to_be_bytes());
        batch.extend_from_slice(&message(b'P', &body));
    }
    batch.extend_from_slice(&message(b'S', &[]));
    s.write_all(&batch).unwrap();
    let (parsed, refused) = count_until_ready(&mut s, b'1');
    assert_eq!(parsed, 1_000);
    assert_eq!(refused.as_deref(), Some("53400"));
    // Closing one makes room for another.
    let mut close = vec![b'S'];
    close.extend_from_slice(b"s0\0");
    let mut again = message(b'C', &close);
    again.extend_from_slice(&message(b'P', b"fresh\0select 2\0\0\0"));
    again.extend_from_slice(&message(b'S', &[]));
    s.write_all(&again).unwrap();
    assert_eq!(count_until_ready(&mut s, b'1'), (1, None));
    // Named portals are counted too, and so are the bytes they hold.
    let mut portals = message(b'P', b"\0select length($1::text)\0\0\0");
    let big = vec![b'x'; 1 << 20];
    for i in 0..40 {
        let mut body = format!("p{i}\0\0").into_bytes();
        body.extend_from_slice(&0u16.to_be_bytes());
        body.extend_from_slice(&1u16.to_be_bytes());
        body.extend_from_slice(&(big.len() as i32).to_be_bytes());
        body.extend_from_slice(&big);
        body.extend_from_slice(&0u16.to_be_bytes());
        portals.extend_from_slice(&message(b'B', &body));
    }
    portals.extend_from_slice(&message(b'S', &[]));
    s.write_all(&portals).unwrap();
    let (bound, refused) = count_until_ready(&mut s, b'2');
    assert_eq!(refused.as_deref(), Some("53400"));
    assert!((20..40).contains(&bound), "{bound} portals of 1 MiB kept");
}

/// Reads up to ReadyForQuery: how many `tag` messages came, and the SQLSTATE of an error.
fn count_until_ready(s: &mut TcpStream, tag: u8) -> (usize, Option<String>) {
    let (mut n, mut error) = (0, None);
    loop {
        let (t, body) = read_message(s);
        match t {
            b'E' => error = Some(error_code(&body)),
            b'Z' => return (n, error),
            t if t == tag => n += 1,
            _ => {}
        }
    }
}

// --- SCRAM --------------------------------------------------------------------------------

fn add_user(data: &std::path::Path, name: &str, role: &str, password: &str) {
    let out = Command::new(bin())
        .arg("--data")
        .arg(data)
        .args(["user", "add", name, "--role", role])
        .env("REBUY_PASSWORD", password)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

fn scram_server(config_extra: &str) -> (Server, String) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_dir(&manifest_dir().join("data/fixture/warehouse"), &data);
    add_user(&data, "root", "admin", "pw-root");
    let port = free_port();
    let path = data.join("rebuy.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text = format!("[server]\nlisten = \"127.0.0.1:{port}\"\n{config_extra}\n{text}");
    std::fs::write(&path, &text).unwrap();
    let server = spawn(dir, data, port, &[]);
    (server, text)
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::sign(&key, data).as_ref().to_vec()
}

fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn read_message(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 5];
    s.read_exact(&mut head).unwrap();
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let mut body = vec![0u8; len - 4];
    s.read_exact(&mut body).unwrap();
    (head[0], body)
}

fn error_code(body: &[u8]) -> String {
    body.split(|b| *b == 0)
        .find_map(|f| f.strip_prefix(b"C"))
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .unwrap_or_default()
}

fn startup(port: u16, user: &str) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut body = 196_608u32.to_be_bytes().to_vec();
    for (k, v) in [("user", user), ("database", "rebuy")] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut m = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    m.extend_from_slice(&body);
    s.write_all(&m).unwrap();
    s
}

/// A trust login, read up to ReadyForQuery.
fn raw_login(port: u16, user: &str) -> TcpStream {
    let mut s = startup(port, user);
    loop {
        let (tag, _) = read_message(&mut s);
        if tag == b'Z' {
            return s;
        }
    }
}

fn send_query(s: &mut TcpStream, sql: &str) {
    let mut body = sql.as_bytes().to_vec();
    body.push(0);
    s.write_all(&message(b'Q', &body)).unwrap();
}

/// What a client holding `key` can do: with `Salted(sp)` it runs SCRAM as a client that knows
/// the SaltedPassword; with `ClientKey(k)` as one that knows the ClientKey. Returns the salt
/// the server sent and the outcome (Ok, or the SQLSTATE).
enum Knows<'a> {
    Salted(&'a [u8]),
    ClientKey(&'a [u8]),
}

fn scram_login(port: u16, user: &str, knows: Knows<'_>) -> (String, Result<(), String>) {
    let mut s = startup(port, user);
    let (tag, body) = read_message(&mut s);
    assert_eq!(tag, b'R', "expected an authentication request");
    assert_eq!(&body[..4], &10u32.to_be_bytes(), "SASL");
    let bare = "n=,r=clientnonce0123456789";
    let first = format!("n,,{bare}");
    let mut init = b"SCRAM-SHA-256\0".to_vec();
    init.extend_from_slice(&(first.len() as u32).to_be_bytes());
    init.extend_from_slice(first.as_bytes());
    s.write_all(&message(b'p', &init)).unwrap();
    let (tag, body) = read_message(&mut s);
    if tag == b'E' {
        return (String::new(), Err(error_code(&body)));
    }
    let server_first = String::from_utf8(body[4..].to_vec()).unwrap();
    let field = |k: &str| {
        server_first
            .split(',')
            .find_map(|f| f.strip_prefix(k))
            .unwrap()
            .to_string()
    };
    let (nonce, salt) = (field("r="), field("s="));
    let client_key = match knows {
        Knows::Salted(sp) => hmac(sp, b"Client Key"),
        Knows::ClientKey(k) => k.to_vec(),
    };
    let stored_key = sha256(&client_key);
    let without_proof = format!("c=biws,r={nonce}");
    let auth = format!("{bare},{server_first},{without_proof}");
    let signature = hmac(&stored_key, auth.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(a, b)| a ^ b)
        .collect();
    let last = format!("{without_proof},p={}", STANDARD.encode(proof));
    s.write_all(&message(b'p', last.as_bytes())).unwrap();
    loop {
        let (tag, body) = read_message(&mut s);
        match tag {
            b'E' => return (salt, Err(error_code(&body))),
            b'Z' => return (salt, Ok(())),
            _ => {}
        }
    }
}

fn stored_fields(config: &str) -> Vec<Vec<u8>> {
    let line = config
        .lines()
        .find(|l| l.trim_start().starts_with("password"))
        .unwrap();
    let value = line.split('"').nth(1).unwrap();
    value
        .split(['$', ':'])
        .filter_map(|p| STANDARD.decode(p).ok())
        .filter(|b| b.len() == 32)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stored_password_entry_logs_no_one_in_and_unknown_users_look_known() {
    let (server, config) = scram_server("");
    assert!(config.contains("SCRAM-SHA-256$4096:"), "{config}");
    let fields = stored_fields(&config);
    assert_eq!(fields.len(), 2, "StoredKey and ServerKey");
    for f in &fields {
        for knows in [Knows::Salted(f), Knows::ClientKey(f)] {
            let (_, outcome) = scram_login(server.port, "root", knows);
            assert_eq!(outcome, Err("28P01".to_string()));
        }
    }
    // The real password works (tokio-postgres's SCRAM).
    let root = connect_as(server.port, "root", Some("pw-root"))
        .await
        .unwrap();
    assert_eq!(
        simple_rows(&root, "SELECT current_user").await[0][0].as_deref(),
        Some("root")
    );
    // An unknown user meets the same salt on every attempt, and its failure takes as long.
    let (a, ra) = scram_login(server.port, "mallory", Knows::ClientKey(&[1u8; 32]));
    let (b, _) = scram_login(server.port, "mallory", Knows::ClientKey(&[2u8; 32]));
    assert_eq!(ra, Err("28P01".to_string()));
    assert_eq!(a, b);
    assert_ne!(
        a,
        scram_login(server.port, "eve", Knows::ClientKey(&[1u8; 32])).0
    );
    // rebuy user add writes the file for its owner only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(server.data.join("rebuy.toml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "mode {mode:o}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn earlier_salted_password_entries_are_migrated_at_start_and_stop_working() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_dir(&manifest_dir().join("data/fixture/warehouse"), &data);
    let port = free_port();
    let salt = [9u8; 16];
    let salted = {
        let mut out = [0u8; 32];
        ring::pbkdf2::derive(
            ring::pbkdf2::PBKDF2_HMAC_SHA256,
            std::num::NonZeroU32::new(4096).unwrap(),
            &salt,
            b"old-pw",
            &mut out,
        );
        out
    };
    let legacy = format!(
        "scram-sha-256$4096:{}${}",
        STANDARD.encode(salt),
        STANDARD.encode(salted)
    );
    std::fs::write(
        data.join("rebuy.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[[user]]\nname = \"old\"\nrole = \"analyst\"\npassword = \"{legacy}\"\n"
        ),
    )
    .unwrap();
    let server = spawn(dir, data, port, &[]);
    let text = std::fs::read_to_string(server.data.join("rebuy.toml")).unwrap();
    assert!(
        !text.contains(&legacy) && text.contains("SCRAM-SHA-256$4096:"),
        "{text}"
    );
    assert_eq!(
        scram_login(server.port, "old", Knows::Salted(&salted)).1,
        Ok(()),
        "the password still works (a client derives the same SaltedPassword)"
    );
    let c = connect_as(server.port, "old", Some("old-pw"))
        .await
        .unwrap();
    assert_eq!(
        simple_rows(&c, "SELECT 1").await[0][0].as_deref(),
        Some("1")
    );
    // The string that used to be stored, used as a key, does not.
    assert_eq!(
        scram_login(server.port, "old", Knows::ClientKey(&salted)).1,
        Err("28P01".to_string())
    );
}

fn make_certificate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "{}", stderr(&out));
    (cert, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_tls_refuses_plain_logins_and_channel_binding_works_with_psql() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = make_certificate(certs.path());
    let (server, _) = scram_server(&format!(
        "require_tls = true\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        cert.display(),
        key.display()
    ));
    let e = connect_as(server.port, "root", Some("pw-root"))
        .await
        .err()
        .unwrap();
    assert_eq!(sqlstate(&e), "28000", "{e}");
    let psql = |channel_binding: &str, password: &str| {
        Command::new("psql")
            .args(["-X", "-At", "-h", "127.0.0.1", "-p"])
            .arg(server.port.to_string())
            .args(["-U", "root", "-d", "rebuy", "-c", "SELECT 'bound'"])
            .env("PGSSLMODE", "require")
            .env("PGCHANNELBINDING", channel_binding)
            .env("PGPASSWORD", password)
            .output()
            .expect("psql runs")
    };
    let bound = psql("require", "pw-root");
    assert!(
        bound.status.success() && stdout(&bound).trim() == "bound",
        "{}{}",
        stdout(&bound),
        stderr(&bound)
    );
    assert!(!psql("require", "wrong").status.success());
    let plain = psql("disable", "pw-root");
    assert!(plain.status.success(), "{}", stderr(&plain));
    // Off loopback, TLS is required by default: without a certificate the server refuses to
    // start (before it binds anything).
    let text = std::fs::read_to_string(server.data.join("rebuy.toml")).unwrap();
    let no_tls: String = text
        .lines()
        .filter(|l| {
            !["require_tls", "tls_cert", "tls_key", "listen"]
                .iter()
                .any(|k| l.starts_with(k))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let config = certs.path().join("no-tls.toml");
    std::fs::write(&config, no_tls).unwrap();
    let refused = Command::new(bin())
        .arg("--data")
        .arg(&server.data)
        .args(["serve", "--listen", "0.0.0.0:0", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("TLS is required"),
        "{}",
        stderr(&refused)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_reach_files_only_in_the_warehouse_and_the_export_stores() {
    let server = start(TRUST_USERS);
    let admin = connect_as(server.port, "boss", None).await.unwrap();
    let data = server.data.display().to_string();
    let scratch = server.data.join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    for (sql, want) in [
        (
            format!("CREATE EXTERNAL TABLE secrets STORED AS CSV LOCATION '{data}/rebuy.toml'"),
            "42501",
        ),
        (
            format!("CREATE EXTERNAL TABLE everything STORED AS CSV LOCATION '{data}/'"),
            "42501",
        ),
        (
            "COPY (SELECT 1 AS x) TO '/tmp/rebuy-admin-out.csv' STORED AS CSV".to_string(),
            "42501",
        ),
        (
            "EXPLAIN ANALYZE COPY (SELECT 1 AS x) TO '/tmp/rebuy-admin-out.csv' STORED AS CSV"
                .to_string(),
            "42501",
        ),
        (
            "SET datafusion.sql_parser.dialect = 'mysql'".to_string(),
            "42501",
        ),
        (
            "COPY (SELECT 1 AS x) TO 's3://not-configured/x.parquet' STORED AS PARQUET".to_string(),
            "42501",
        ),
        (
            format!(
                "COPY (SELECT 1 AS x) TO '{}/out.csv' STORED AS CSV",
                scratch.display()
            ),
            "ok",
        ),
    ] {
        assert_eq!(code_of(&admin, &sql).await, want, "{sql}");
    }
    assert!(!std::path::Path::new("/tmp/rebuy-admin-out.csv").exists());
    assert!(scratch.join("out.csv").exists());
    // A glob is judged by the folder it lists.
    for glob in ["rebuy.tom?", "*.toml", "*", "**/*.toml"] {
        let sql = format!(
            "CREATE EXTERNAL TABLE g (a TEXT) STORED AS CSV LOCATION '{data}/{glob}' \
             OPTIONS ('format.has_header' 'false', 'format.delimiter' '|')"
        );
        assert_eq!(code_of(&admin, &sql).await, "42501", "{glob}");
    }
    // The admin's files inside the warehouse are read back.
    admin
        .batch_execute(&format!(
            "CREATE EXTERNAL TABLE out STORED AS CSV LOCATION '{}/out.csv' OPTIONS ('format.has_header' 'true')",
            scratch.display()
        ))
        .await
        .unwrap();
    assert_eq!(
        simple_rows(&admin, "SELECT x FROM out").await[0][0].as_deref(),
        Some("1")
    );
}
