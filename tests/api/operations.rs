//! Operating an install: readiness, a store fault answering 503 and recovering, online backups,
//! and audit rows written with the changes of admin actions.

use std::time::Duration;

use opsiq::core::Scope;
use opsiq::core::store::sqlite::{self, SqliteConfig};
use opsiq::core::types::Id;
use serde_json::json;

use crate::common::{TestServer, eventually, fast_webhooks};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_checks_the_database_the_migrations_and_the_webhook_worker() {
    let server = TestServer::start().await;
    let ready = server.anonymous().get("/readyz").await.expect(200);
    assert_eq!(ready.body["status"], "ready");
    assert_eq!(ready.body["checks"]["database"]["ok"], true);
    assert_eq!(ready.body["checks"]["migrations"]["ok"], true);
    assert_eq!(
        ready.body["checks"]["webhook_worker"]["running"], false,
        "the test server runs no worker"
    );

    let dir = tempfile::tempdir().unwrap();
    let with_worker = TestServer::start_with(&dir.path().join("w.db"), fast_webhooks(true)).await;
    let client = with_worker.anonymous();
    let mut last = None;
    for _ in 0..100 {
        let reply = client.get("/readyz").await;
        if reply.status == 200 {
            last = Some(reply);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reply = last.expect("the worker reported in");
    assert_eq!(reply.body["checks"]["webhook_worker"]["running"], true);
    with_worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_answers_503_naming_it_and_the_server_recovers_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("opsiq.db");
    let store = SqliteConfig {
        busy_timeout: Duration::from_millis(200),
        ..SqliteConfig::default()
    };
    let server = TestServer::start_with_store(
        &db,
        store,
        opsiq::http::ServerConfig {
            webhooks: None,
            ..Default::default()
        },
    )
    .await;
    let api = server.client(&server.admin_key());
    let ticket = json!({"customer_email": "c@example.com", "subject": "s"});
    api.post("/api/v1/tickets", ticket.clone())
        .await
        .expect(201);

    // Another process holds the write lock for longer than the busy timeout.
    let blocker = rusqlite::Connection::open(&db).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let refused = api
        .post("/api/v1/tickets", ticket.clone())
        .await
        .expect(503);
    assert_eq!(refused.error(), "service_unavailable");
    assert!(
        refused.body["message"]
            .as_str()
            .unwrap()
            .starts_with("database is unavailable"),
        "{}",
        refused.body
    );
    assert_eq!(
        server.anonymous().get("/readyz").await.expect(503).body["checks"]["database"]["ok"],
        false
    );
    assert_eq!(
        api.get_all("/api/v1/tickets").await.len(),
        1,
        "reads go on meanwhile"
    );
    blocker.execute_batch("ROLLBACK").unwrap();

    api.post("/api/v1/tickets", ticket).await.expect(201);
    server.anonymous().get("/readyz").await.expect(200);
    assert_eq!(
        api.get_all("/api/v1/tickets").await.len(),
        2,
        "the refused request changed nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_online_backup_holds_every_row_committed_before_it_began() {
    let server = TestServer::start().await;
    let api = server.client(&server.key(&[Scope::TicketsWrite]));
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writer = {
        let (api, writing) = (api.clone(), writing.clone());
        tokio::spawn(async move {
            let mut acked = Vec::new();
            while writing.load(std::sync::atomic::Ordering::Relaxed) {
                let body = json!({"customer_email": "c@example.com", "subject": format!("#{}", acked.len())});
                let reply = api.post("/api/v1/tickets", body).await.expect(201);
                acked.push(reply.data()["id"].as_i64().unwrap());
            }
            acked
        })
    };
    eventually("some writes", || {
        let n = server
            .opsiq
            .read(|r| r.tickets(Id(1), &Default::default()))
            .unwrap()
            .len();
        (n >= 20).then_some(())
    })
    .await;
    // Every ticket committed before the backup starts, as the database itself says.
    let committed: Vec<i64> = {
        let conn = rusqlite::Connection::open(&server.db).unwrap();
        let mut stmt = conn.prepare("SELECT id FROM tickets").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let to = tempfile::tempdir().unwrap();
    let copy = to.path().join("backup.db");
    let (db, path) = (server.db.clone(), copy.clone());
    let health = tokio::task::spawn_blocking(move || sqlite::backup(&db, &path))
        .await
        .unwrap()
        .unwrap();
    writing.store(false, std::sync::atomic::Ordering::Relaxed);
    let acked = writer.await.unwrap();
    assert_eq!(health.integrity.as_deref(), Some("ok"));

    let backup = rusqlite::Connection::open(&copy).unwrap();
    let integrity: String = backup
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let in_backup: i64 = backup
        .query_row("SELECT COUNT(*) FROM tickets", [], |r| r.get(0))
        .unwrap();
    let mut has = backup
        .prepare("SELECT COUNT(*) FROM tickets WHERE id = ?1")
        .unwrap();
    for id in &committed {
        assert_eq!(
            has.query_row([id], |r| r.get::<_, i64>(0)).unwrap(),
            1,
            "ticket {id} was committed before the backup"
        );
    }
    println!(
        "{} tickets committed before the backup, {in_backup} in it, {} acknowledged in all",
        committed.len(),
        acked.len()
    );
    assert!(in_backup as usize >= committed.len());
    let events: i64 = backup
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        events, in_backup,
        "the copy is one snapshot: each ticket with its event"
    );
    assert!(
        sqlite::backup(&server.db, &copy).is_err(),
        "a backup never overwrites a file"
    );
}

#[tokio::test]
async fn admin_actions_write_their_audit_row_with_their_change() {
    let server = TestServer::start().await;
    let admin = server.client(&server.key(&[Scope::Admin]));
    let created = admin
        .post(
            "/api/v1/webhooks",
            json!({"url": "https://example.com/hook"}),
        )
        .await
        .expect(201);
    let id = created.data()["id"].as_i64().unwrap();
    let empty = admin
        .patch(&format!("/api/v1/webhooks/{id}"), json!({}))
        .await
        .expect(422);
    assert_eq!(empty.error(), "validation_failed:params");
    admin
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/webhooks/{id}"),
            Some(&json!({"description": "CRM"})),
        )
        .await
        .expect(200);
    assert_eq!(admin.get("/api/v1/webhooks/999").await.status, 405);
    assert_eq!(
        admin
            .send(reqwest::Method::DELETE, "/api/v1/webhooks/999", None)
            .await
            .expect(404)
            .error(),
        "not_found:webhook_endpoint"
    );
    server.opsiq.store().flush().unwrap();
    let audit = server.opsiq.read(|r| r.audit_entries(None, 100)).unwrap();
    let rows: Vec<_> = audit
        .iter()
        .filter(|e| e.request_id == created.body["request_id"])
        .collect();
    assert_eq!(rows.len(), 1, "one audit row per request");
    assert_eq!(
        (rows[0].action.as_deref(), rows[0].status),
        (Some("webhooks.add"), 201)
    );
}
