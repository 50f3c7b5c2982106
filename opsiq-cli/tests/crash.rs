//! Crash safety, proven: `opsiq serve` is killed with SIGKILL in the middle of 64 concurrent
//! ticket creations, restarted on the same file, and every acknowledged ticket must be there,
//! whole, with its audit row and its `ticket.created` outbox event.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{Served, json_of, opsiq, serve};
use serde_json::{Value, json};

/// Creates tickets from 64 concurrent clients until `stop`; returns the acknowledged ones
/// as (id, subject).
async fn load(
    addr: String,
    key: String,
    run: usize,
    stop: Arc<AtomicBool>,
    acks: Arc<AtomicUsize>,
) -> Vec<(i64, String)> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..64 {
        let (client, addr, key, stop, acks) = (
            client.clone(),
            addr.clone(),
            key.clone(),
            stop.clone(),
            acks.clone(),
        );
        workers.spawn(async move {
            let mut acked = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let subject = format!("run {run} worker {worker} #{n}");
                let body =
                    json!({"customer_email": format!("w{worker}@example.com"), "subject": subject});
                let Ok(res) = client
                    .post(format!("http://{addr}/api/v1/tickets"))
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await
                else {
                    break; // The server is gone.
                };
                if res.status() != 201 {
                    break;
                }
                let Ok(reply) = res.json::<Value>().await else {
                    break;
                };
                acked.push((reply["data"]["id"].as_i64().unwrap(), subject));
                acks.fetch_add(1, Ordering::Relaxed);
            }
            acked
        });
    }
    let mut all = Vec::new();
    while let Some(done) = workers.join_next().await {
        all.extend(done.unwrap());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_ticket_survives_sigkill_with_its_audit_row_and_outbox_event() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let key = json_of(&opsiq(
        &db,
        &[
            "--json",
            "keys",
            "create",
            "--name",
            "crash",
            "--scopes",
            "tickets.read,tickets.write",
            "--rate-limit",
            "1000000",
        ],
    ))["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let mut acknowledged: Vec<(i64, String)> = Vec::new();
    // Kill at several points of the load: right after it starts, mid-load, late in a longer run.
    for (run, millis) in [0u64, 250, 500, 1000, 1500].into_iter().enumerate() {
        let Served {
            mut child, addr, ..
        } = serve(&db, false, &[]);
        let stop = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(AtomicUsize::new(0));
        let load = tokio::spawn(load(addr, key.clone(), run, stop.clone(), acks.clone()));
        // The clock starts at the first acknowledged creation, however busy the machine is.
        for _ in 0..3000 {
            if acks.load(Ordering::Relaxed) > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(millis)).await;
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        let acked = load.await.unwrap();
        println!(
            "run {run}: killed {millis} ms after the first acknowledgement, {} creations acknowledged",
            acked.len()
        );
        assert!(
            !acked.is_empty(),
            "the load reached the server before the kill"
        );

        // Restarted on the same file, the API serves every ticket this run acknowledged, whole.
        let Served {
            mut child, addr, ..
        } = serve(&db, false, &[]);
        let client = reqwest::Client::new();
        for (id, subject) in &acked {
            let res = client
                .get(format!("http://{addr}/api/v1/tickets/{id}"))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap();
            assert_eq!(
                res.status(),
                200,
                "acknowledged ticket {id} is missing after run {run}"
            );
            let ticket: Value = res.json().await.unwrap();
            assert_eq!(ticket["data"]["subject"], subject.as_str());
            assert_eq!(ticket["data"]["status"], "open");
        }
        child.kill().unwrap();
        child.wait().unwrap();
        acknowledged.extend(acked);
    }

    // In the file: every ticket has its contact, its audit row and its outbox event, and
    // nothing exists half-written.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let tickets = count("SELECT COUNT(*) FROM tickets");
    let audited =
        count("SELECT COUNT(*) FROM audit_log WHERE action = 'tickets.create' AND status = 201");
    let events = count("SELECT COUNT(*) FROM events WHERE type = 'ticket.created'");
    let orphans = count(
        "SELECT COUNT(*) FROM tickets t LEFT JOIN contacts c ON c.id = t.contact_id WHERE c.id IS NULL",
    );
    let without_event = count(
        "SELECT COUNT(*) FROM tickets t WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.type = 'ticket.created' \
         AND json_extract(e.data, '$.ticket_id') = t.id)",
    );
    println!(
        "acknowledged {} creations over 5 kills; found {tickets} tickets, {audited} audit rows, {events} ticket.created events",
        acknowledged.len()
    );
    let mut stored = conn
        .prepare("SELECT subject FROM tickets WHERE id = ?1")
        .unwrap();
    for (id, subject) in &acknowledged {
        let found: String = stored
            .query_row([id], |r| r.get(0))
            .unwrap_or_else(|_| panic!("acknowledged ticket {id} is missing"));
        assert_eq!(&found, subject);
    }
    assert!(
        tickets >= acknowledged.len() as i64,
        "every acknowledged ticket is in the file"
    );
    assert_eq!(
        audited, tickets,
        "each ticket has its audit row (written in the same transaction)"
    );
    assert_eq!(events, tickets, "each ticket has its outbox event");
    assert_eq!(without_event, 0);
    assert_eq!(orphans, 0, "no ticket without its contact");
}
