//! Hostile HTTP: oversized heads, slow and idle clients, path tricks, deep and huge JSON. Never
//! a 5xx, never a hang, and the server keeps serving everyone else.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use opsiq::http::ServerConfig;
use reqwest::Method;

use crate::common::TestServer;

/// Sends raw bytes and returns what the server answered (until it closed or went quiet).
fn raw(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(request);
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

async fn strict_server() -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        header_read_timeout: Duration::from_millis(300),
        max_connections: 20,
        webhooks: None,
        ..ServerConfig::default()
    };
    let mut server = TestServer::start_with(&dir.path().join("opsiq.db"), config).await;
    server.keep(dir);
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_over_the_limit_are_431() {
    let server = strict_server().await;
    let addr = server.addr;
    let big = "x".repeat(64 * 1024);
    let answer = tokio::task::spawn_blocking(move || {
        raw(
            addr,
            format!(
                "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: {big}\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
    })
    .await
    .unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "{}",
        &answer[..answer.len().min(200)]
    );
    server.anonymous().get("/healthz").await.expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_client_is_cut_off_without_starving_others() {
    let server = strict_server().await;
    let addr = server.addr;
    let slow = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let started = Instant::now();
        // One header byte every 100 ms: the head never completes in time.
        for byte in b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Slow: "
            .iter()
            .chain([b'a'; 200].iter())
        {
            if stream.write_all(&[*byte]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
            if started.elapsed() > Duration::from_secs(8) {
                break;
            }
        }
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
        started.elapsed()
    });
    // Others are served meanwhile.
    for _ in 0..5 {
        server.anonymous().get("/healthz").await.expect(200);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cut_after = slow.await.unwrap();
    assert!(
        cut_after < Duration::from_secs(8),
        "the slow client was cut off ({cut_after:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_do_not_exhaust_the_server() {
    let server = strict_server().await;
    let idle: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    // Idle connections hold at most the limit, and are cut after the header timeout.
    let mut served = false;
    for _ in 0..100 {
        if let Ok(res) = reqwest::Client::new()
            .get(server.url("/healthz"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            && res.status() == 200
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served, "a real client got through");
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_tricks_are_404_or_400_never_a_file_or_a_5xx() {
    let server = strict_server().await;
    let addr = server.addr;
    let key = server.admin_key();
    for path in [
        "/../../etc/passwd",
        "/api/v1/../../etc/passwd",
        "/api/v1/%2e%2e/%2e%2e/etc/passwd",
        "/api/v1/tickets/%00",
        "/api/v1/tickets/1%00",
        "/api/v1/%c0%ae%c0%ae/secret",
        "/widget.php/../../Cargo.toml",
    ] {
        let auth = format!("Authorization: Bearer {key}\r\n");
        let answer = tokio::task::spawn_blocking(move || {
            raw(
                addr,
                format!("GET {path} HTTP/1.1\r\nHost: t\r\n{auth}Connection: close\r\n\r\n")
                    .as_bytes(),
            )
        })
        .await
        .unwrap();
        let status = &answer[9..12];
        assert!(
            status == "404" || status == "400",
            "{path}: {}",
            &answer[..answer.len().min(120)]
        );
        assert!(
            !answer.contains("root:") && !answer.contains("[package]"),
            "{path} leaked a file"
        );
    }
}

#[tokio::test]
async fn deep_or_huge_json_is_400_or_413_without_a_crash() {
    let server = TestServer::start().await;
    let api = server.client(&server.admin_key());
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let reply = api
        .send_raw(Method::POST, "/api/v1/contacts", deep.into_bytes())
        .await
        .expect(400);
    assert_eq!(reply.error(), "invalid_json");
    let deep_object = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    api.send_raw(Method::POST, "/v1.php", deep_object.into_bytes())
        .await
        .expect(400);
    let huge = format!(
        "{{\"email\":\"a@example.com\",\"name\":\"{}\"}}",
        "x".repeat(10 * 1024 * 1024)
    );
    assert_eq!(
        api.send_raw(Method::POST, "/api/v1/contacts", huge.into_bytes())
            .await
            .expect(413)
            .error(),
        "payload_too_large"
    );
    server.anonymous().get("/healthz").await.expect(200);
}
