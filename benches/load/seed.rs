//! Seeds a database realistically through the store's own write path (the same inserts, FTS
//! triggers and indexes the API uses), a few thousand rows per transaction.

use std::path::Path;
use std::time::Instant;

use opsiq::core::chats::AuthorType;
use opsiq::core::contacts::ContactFields;
use opsiq::core::store::sqlite::{Durability, SqliteConfig};
use opsiq::core::tickets::{NewTicket, Priority, TicketFields, TicketStatus};
use opsiq::core::types::{Email, Id, Timestamp};
use opsiq::core::{Opsiq, Scope};

const FIRST: &[&str] = &[
    "Ada", "Alan", "Alice", "Amara", "Anna", "Arjun", "Beatriz", "Ben", "Carla", "Carlos", "Chen",
    "Chloe", "Daniel", "Dmitri", "Elena", "Emma", "Fatima", "Felix", "Grace", "Hana", "Hugo",
    "Ines", "Ivan", "Jakob", "James", "Jana", "Kofi", "Laura", "Leo", "Lina", "Lucas", "Maria",
    "Marco", "Mei", "Mohammed", "Nadia", "Noah", "Olga", "Omar", "Paula", "Pedro", "Priya",
    "Rafael", "Rosa", "Sami", "Sara", "Sofia", "Tariq", "Tom", "Uma", "Victor", "Wei", "Yara",
    "Yusuf", "Zoe",
];
const LAST: &[&str] = &[
    "Adeyemi", "Almeida", "Andersen", "Bauer", "Becker", "Costa", "Dubois", "Eriksson", "Fischer",
    "Garcia", "Gonzalez", "Hansen", "Hoffmann", "Ivanova", "Jensen", "Kim", "Kowalski", "Larsen",
    "Lopez", "Martin", "Meyer", "Moreau", "Nakamura", "Nguyen", "Novak", "Okafor", "Olsen",
    "Patel", "Petrov", "Rossi", "Santos", "Schmidt", "Silva", "Singh", "Smith", "Suzuki", "Tanaka",
    "Wagner", "Wang", "Weber", "Williams", "Yilmaz", "Zhang",
];
const TAGS: &[&str] = &[
    "vip",
    "trial",
    "churn-risk",
    "enterprise",
    "newsletter",
    "beta",
    "partner",
    "b2b",
    "b2c",
    "refund",
    "onboarding",
    "de",
    "fr",
    "us",
];
const SUBJECTS: &[&str] = &[
    "Cannot log in",
    "Invoice is wrong",
    "Refund request",
    "Delivery is late",
    "How do I export my data?",
    "Password reset e-mail never arrives",
    "Feature request: dark mode",
    "Charged twice",
    "Account locked",
    "Question about the API",
];
const LINES: &[&str] = &[
    "Hi, I have a question about my order.",
    "Sure, can you give me the order number?",
    "It is 10442, placed last Tuesday.",
    "Thanks, I can see it. It left our warehouse this morning.",
    "Great, when will it arrive?",
    "Within two working days. Anything else I can help with?",
    "No, that's all, thank you!",
    "You're welcome, have a nice day.",
];

/// Row counts of a seeded database.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    pub contacts: usize,
    pub tickets: usize,
    pub chats: usize,
}

/// What the benchmark needs from the seeded database.
pub struct Seeded {
    /// A key of workspace 1 with every scope.
    pub key: String,
    /// Workspace 1's ticket ids, for point reads.
    pub ticket_ids: Vec<i64>,
    /// A department of workspace 1 that the filtered list asks for.
    pub department: i64,
    pub seconds: f64,
}

/// A small deterministic generator (xorshift), so every run seeds the same data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// The name prefixes the search operation asks for (two or three letters of a first name).
pub fn search_prefixes() -> Vec<String> {
    FIRST
        .iter()
        .map(|n| n.chars().take(3).collect::<String>().to_lowercase())
        .collect()
}

const PLANS: [&str; 3] = ["free", "pro", "enterprise"];
const BATCH: usize = 2_000;
const DAY_MS: i64 = 86_400_000;

/// Seeds `path` with `size` rows over 2 workspaces (two thirds in the first) and 3 sites,
/// 5 departments per workspace, and returns a full-scope key of workspace 1.
pub fn seed(path: &Path, size: Size) -> Seeded {
    let started = Instant::now();
    let config = SqliteConfig {
        durability: Durability::Normal,
        ..SqliteConfig::default()
    };
    let opsiq = Opsiq::open_with(path, config).expect("open the database");
    let (first, _) = opsiq
        .bootstrap()
        .expect("bootstrap")
        .expect("a new database");
    // Workspace 1's departments come first, so they are 1 to 5 (the issue's `department_id=2`).
    let mut departments = [Vec::new(), Vec::new()];
    let mut add_departments = |opsiq: &Opsiq, ws: Id, i: usize| {
        for name in ["Billing", "Shipping", "Technical", "Sales"] {
            opsiq.add_department(ws, name).expect("department");
        }
        opsiq
            .add_agent(ws, "Agent One", &format!("agent1@ws{}.example", ws.0))
            .expect("agent");
        departments[i] = opsiq
            .list_departments(ws)
            .expect("departments")
            .into_iter()
            .map(|d| d.id)
            .collect();
    };
    add_departments(&opsiq, first.id, 0);
    let (second, _) = opsiq
        .create_workspace("Second workspace", "second.example")
        .expect("workspace 2");
    add_departments(&opsiq, second.id, 1);
    assert_eq!(
        departments[0][1].0, 2,
        "workspace 1's second department is department 2"
    );
    opsiq
        .add_site(first.id, Some("Shop"), "shop.example.com")
        .expect("site");
    let sites: Vec<_> = opsiq.list_sites(None).expect("sites");
    let site_of = |ws: Id| {
        sites
            .iter()
            .find(|s| s.workspace_id == ws)
            .map(|s| s.id)
            .unwrap()
    };
    let workspaces = [
        (first.id, site_of(first.id)),
        (second.id, site_of(second.id)),
    ];
    let key = opsiq
        .create_key(first.id, None, "load-benchmark", &Scope::ALL)
        .expect("key")
        .secret;
    let now = Timestamp::now().0;
    let mut rng = Rng::new(0x5eed);

    // Contacts: ids are handed out in order, so contact n of workspace w is remembered by id.
    let mut contacts: [Vec<Id>; 2] = [Vec::new(), Vec::new()];
    let mut done = 0;
    while done < size.contacts {
        let n = BATCH.min(size.contacts - done);
        let rows: Vec<(usize, ContactFields, Timestamp, usize)> = (done..done + n)
            .map(|i| {
                let w = usize::from(i % 3 == 2);
                let first_name = rng.pick(FIRST);
                let last_name = rng.pick(LAST);
                let tags: Vec<String> = (0..rng.below(3))
                    .map(|_| rng.pick(TAGS).to_string())
                    .collect();
                let fields = ContactFields {
                    name: Some(format!("{first_name} {last_name}")),
                    email: Some(
                        Email::parse(&format!(
                            "{}.{}.{i}@example.com",
                            first_name.to_lowercase(),
                            last_name.to_lowercase()
                        ))
                        .unwrap(),
                    ),
                    phone: (i % 4 == 0).then(|| format!("+4930{i:07}")),
                    external_id: (i % 2 == 0).then(|| format!("crm-{i}")),
                    tags,
                    attributes: serde_json::from_value(serde_json::json!({
                        "plan": PLANS[i % 3],
                        "lifetime_value": (i % 977) * 10,
                    }))
                    .unwrap(),
                };
                let created =
                    Timestamp(now - 90 * DAY_MS + (i as i64 * 90 * DAY_MS) / size.contacts as i64);
                (w, fields, created, rng.below(3))
            })
            .collect();
        let ws = workspaces;
        let ids = opsiq
            .write(move |w| {
                let mut ids = Vec::with_capacity(rows.len());
                for (which, fields, created, notes) in rows {
                    let (workspace, site) = ws[which];
                    let id = w.insert_contact(workspace, Some(site), &fields, created)?;
                    for line in &LINES[..notes] {
                        w.insert_note(id, line, "Agent One", created)?;
                    }
                    ids.push((which, id));
                }
                Ok(ids)
            })
            .expect("insert contacts");
        for (which, id) in ids {
            contacts[which].push(id);
        }
        done += n;
    }

    // Tickets: every status, every department, a contact of the same workspace.
    let statuses = TicketStatus::ALL;
    let priorities = Priority::ALL;
    let mut ticket_ids = Vec::new();
    let mut done = 0;
    while done < size.tickets {
        let n = BATCH.min(size.tickets - done);
        let rows: Vec<(NewTicket, TicketStatus, Timestamp)> = (done..done + n)
            .map(|i| {
                let which = usize::from(i % 3 == 2);
                let (workspace, site) = workspaces[which];
                let pool = &contacts[which];
                let department = departments[which][rng.below(departments[which].len())];
                let new = NewTicket {
                    workspace_id: workspace,
                    site_id: Some(site),
                    contact_id: pool[rng.below(pool.len())],
                    subject: rng.pick(SUBJECTS).to_string(),
                    body: LINES[0].to_string(),
                    priority: priorities[rng.below(priorities.len())],
                    department_id: Some(department),
                    assignee_id: None,
                    tags: vec![rng.pick(TAGS).to_string()],
                    source: "api".into(),
                };
                let created =
                    Timestamp(now - 60 * DAY_MS + (i as i64 * 60 * DAY_MS) / size.tickets as i64);
                (new, statuses[rng.below(statuses.len())], created)
            })
            .collect();
        let ids = opsiq
            .write(move |w| {
                let mut ids = Vec::with_capacity(rows.len());
                for (new, status, created) in rows {
                    let id = w.insert_ticket(&new, created)?.id;
                    if status != TicketStatus::Open {
                        let fields = TicketFields {
                            subject: new.subject.clone(),
                            status,
                            priority: new.priority,
                            department_id: new.department_id,
                            assignee_id: None,
                            tags: new.tags.clone(),
                        };
                        w.update_ticket(new.workspace_id, id, &fields, created)?;
                    }
                    ids.push((new.workspace_id, id));
                }
                Ok(ids)
            })
            .expect("insert tickets");
        ticket_ids.extend(
            ids.into_iter()
                .filter(|(w, _)| *w == first.id)
                .map(|(_, id)| id.0),
        );
        done += n;
    }

    // Chat sessions: one visitor each, a transcript of 4 to 8 messages, mostly closed.
    let mut done = 0;
    while done < size.chats {
        let n = (BATCH / 4).min(size.chats - done);
        let rows: Vec<(usize, Option<Id>, usize, Timestamp)> = (done..done + n)
            .map(|i| {
                let which = usize::from(i % 3 == 2);
                let contact =
                    (i % 2 == 0).then(|| contacts[which][rng.below(contacts[which].len())]);
                let created = Timestamp(
                    now - 30 * DAY_MS + (i as i64 * 30 * DAY_MS) / size.chats.max(1) as i64,
                );
                (which, contact, 4 + rng.below(5), created)
            })
            .collect();
        let base = done;
        opsiq
            .write(move |w| {
                for (k, (which, contact, messages, created)) in rows.into_iter().enumerate() {
                    let (workspace, site) = workspaces[which];
                    let visitor = w.insert_visitor(
                        workspace,
                        site,
                        &format!("v_bench{:08}", base + k),
                        created,
                    )?;
                    if let Some(contact) = contact {
                        w.set_visitor_contact(visitor, contact)?;
                    }
                    let session =
                        w.insert_chat_session(workspace, site, visitor, contact, created)?;
                    for (m, line) in LINES.iter().take(messages).enumerate() {
                        let (author, name) = if m % 2 == 0 {
                            (AuthorType::Visitor, None)
                        } else {
                            (AuthorType::Agent, Some("Agent One"))
                        };
                        let at = Timestamp(created.0 + m as i64 * 30_000);
                        w.insert_chat_message(session, author, name, line, at)?;
                    }
                    if k % 10 != 0 {
                        w.close_chat_session(session, Timestamp(created.0 + 600_000))?;
                    }
                }
                Ok(())
            })
            .expect("insert chats");
        done += n;
    }
    opsiq.store().flush().expect("flush");
    Seeded {
        key,
        ticket_ids,
        department: departments[0][1].0,
        seconds: started.elapsed().as_secs_f64(),
    }
}
