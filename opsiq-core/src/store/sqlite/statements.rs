//! Each connection's prepared statements, kept next to it and found by their SQL text.
//!
//! rusqlite's own cache (`prepare_cached`) copies a statement's SQL into a new `Arc<str>` every
//! time it hands the statement out, and moves it through a linked hash map both ways: about
//! 750 instructions and an allocation per statement, four or five statements a point read (see
//! benches/RESULTS.md, seventeenth round). Here a statement is taken out of a map by its text
//! and put back under the same key, so a statement used again costs two lookups and no
//! allocation.
//!
//! The statements borrow their connection, so the two live in one [`Conn`] (a `self_cell`):
//! the statements are finalized before the connection closes, and both move together.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

use rusqlite::{Connection, PrepFlags, Statement};

use super::Db;

/// Prepared statements each connection keeps: more than the store has distinct queries.
const CAPACITY: usize = 256;

/// The statements of one connection that are not in use, by their SQL text.
pub(crate) struct Statements<'c> {
    conn: &'c Connection,
    idle: RefCell<foldhash::HashMap<Box<str>, Statement<'c>>>,
}

self_cell::self_cell!(
    /// A connection with the statements prepared on it.
    pub(crate) struct Conn {
        owner: Connection,
        #[not_covariant]
        dependent: Statements,
    }
);

// SAFETY: `Statement` is not `Send` only because it holds a raw pointer to SQLite's statement.
// A `Conn` moves its connection and all of its statements to another thread together, and
// SQLite is built thread-safe (libsqlite3-sys's bundled build, `SQLITE_THREADSAFE=1`), so a
// connection and its statements may be used by any one thread at a time. A `Conn` is not
// `Sync` (the map is in a `RefCell`), so no two threads use them at once. rusqlite makes the
// same argument for its own statement cache (`unsafe impl Send for StatementCache`).
unsafe impl Send for Conn {}

impl Conn {
    pub(crate) fn wrap(conn: Connection) -> Self {
        Conn::new(conn, |conn| Statements {
            conn,
            idle: RefCell::default(),
        })
    }

    /// The connection itself, for what goes around the statement map.
    pub(crate) fn raw(&self) -> &Connection {
        self.borrow_owner()
    }

    /// Runs `f` with the store's queries over this connection.
    pub(crate) fn with_db<R>(&self, f: impl FnOnce(&mut Db<'_, '_>) -> R) -> R {
        self.with_dependent(|_, statements| f(&mut Db(statements)))
    }

    /// Runs `f` with the connection's statement for `sql`.
    pub(crate) fn with_statement<R>(
        &self,
        sql: &str,
        f: impl FnOnce(&mut Statement<'_>) -> rusqlite::Result<R>,
    ) -> rusqlite::Result<R> {
        self.with_dependent(|_, statements| f(&mut *statements.prepare(sql)?))
    }

    /// Runs a statement without parameters (`BEGIN`, `COMMIT`, a savepoint), parsed once per
    /// connection rather than at every use.
    pub(crate) fn run(&self, sql: &str) -> rusqlite::Result<()> {
        self.with_statement(sql, |stmt| stmt.execute([]).map(drop))
    }
}

impl<'c> Statements<'c> {
    /// The connection the statements are prepared on.
    pub(crate) fn conn(&self) -> &'c Connection {
        self.conn
    }

    /// The statement for `sql`: the one kept, or a new one that is kept once it is dropped.
    pub(crate) fn prepare<'s>(&'s self, sql: &str) -> rusqlite::Result<Prepared<'s, 'c>> {
        let kept = self.idle.borrow_mut().remove_entry(sql);
        let (sql, stmt) = match kept {
            Some(kept) => kept,
            None => (
                sql.into(),
                self.conn
                    .prepare_with_flags(sql, PrepFlags::SQLITE_PREPARE_PERSISTENT)?,
            ),
        };
        Ok(Prepared {
            home: self,
            kept: Some((sql, stmt)),
        })
    }
}

/// A statement in use; it goes back to its connection's map when dropped.
pub(crate) struct Prepared<'s, 'c> {
    home: &'s Statements<'c>,
    kept: Option<(Box<str>, Statement<'c>)>,
}

impl<'c> Deref for Prepared<'_, 'c> {
    type Target = Statement<'c>;

    fn deref(&self) -> &Statement<'c> {
        &self.kept.as_ref().expect("held until dropped").1
    }
}

impl<'c> DerefMut for Prepared<'_, 'c> {
    fn deref_mut(&mut self) -> &mut Statement<'c> {
        &mut self.kept.as_mut().expect("held until dropped").1
    }
}

impl Drop for Prepared<'_, '_> {
    fn drop(&mut self) {
        let Some((sql, mut stmt)) = self.kept.take() else {
            return;
        };
        // Its rows were reset when they were dropped; its bound values (an audit batch's text)
        // are let go now rather than at its next use.
        stmt.clear_bindings();
        let mut idle = self.home.idle.borrow_mut();
        if idle.len() >= CAPACITY && !idle.contains_key(&sql) {
            // Full (the store's queries are fewer, but some are built from a filter's parts):
            // one statement goes, any one.
            let any = idle.keys().next().cloned();
            if let Some(any) = any {
                idle.remove(&any);
            }
        }
        // The same SQL in use twice at once (one query inside another's rows) keeps one.
        idle.insert(sql, stmt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Conn {
        let conn = Conn::wrap(Connection::open_in_memory().unwrap());
        conn.raw()
            .execute_batch("CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (1), (2), (3);")
            .unwrap();
        conn
    }

    fn idle(conn: &Conn) -> Vec<String> {
        conn.with_dependent(|_, s| {
            let mut sql: Vec<String> = s.idle.borrow().keys().map(|k| k.to_string()).collect();
            sql.sort();
            sql
        })
    }

    const SUM: &str = "SELECT SUM(n) FROM t WHERE n >= ?1";

    #[test]
    fn a_statement_is_kept_once_and_reused_with_new_values() {
        let conn = conn();
        let sum = |from: i64| {
            conn.with_statement(SUM, |s| s.query_row([from], |r| r.get::<_, i64>(0)))
                .unwrap()
        };
        assert_eq!(sum(1), 6);
        assert_eq!(idle(&conn), [SUM]);
        assert_eq!(sum(2), 5);
        assert_eq!(sum(3), 3);
        assert_eq!(idle(&conn), [SUM], "one statement, used three times");
        // Its bound value was let go when it came back.
        conn.with_dependent(|_, s| {
            let mut stmt = s.prepare(SUM).unwrap();
            let mut rows = stmt.raw_query();
            let row = rows.next().unwrap().unwrap();
            assert_eq!(row.get::<_, Option<i64>>(0).unwrap(), None);
        });
    }

    #[test]
    fn the_same_sql_inside_its_own_rows_gets_a_second_statement() {
        let conn = conn();
        let all = "SELECT n FROM t ORDER BY n";
        let pairs = conn.with_db(|db| {
            let mut outer = db.prepare(all).unwrap();
            let firsts: Vec<i64> = outer
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(|n| {
                    let n: i64 = n.unwrap();
                    let mut inner = db.prepare(all).unwrap();
                    let inner: Vec<i64> = inner
                        .query_map([], |r| r.get(0))
                        .unwrap()
                        .map(Result::unwrap)
                        .collect();
                    n * 10 + inner.len() as i64
                })
                .collect();
            firsts
        });
        assert_eq!(pairs, [13, 23, 33]);
        assert_eq!(idle(&conn), [all], "the two statements went back as one");
    }

    #[test]
    fn the_map_holds_at_most_its_capacity_and_every_statement_still_runs() {
        let conn = conn();
        for i in 0..CAPACITY + 40 {
            let sql = format!("SELECT {i} + n FROM t WHERE n = 1");
            let got = conn
                .with_statement(&sql, |s| s.query_row([], |r| r.get::<_, i64>(0)))
                .unwrap();
            assert_eq!(got, i as i64 + 1);
        }
        assert_eq!(idle(&conn).len(), CAPACITY);
        // The most recent one is always kept.
        assert!(idle(&conn).contains(&format!("SELECT {} + n FROM t WHERE n = 1", CAPACITY + 39)));
    }

    #[test]
    fn a_kept_statement_follows_a_schema_change_and_reports_bad_sql() {
        let conn = conn();
        let read = "SELECT * FROM t LIMIT 1";
        let columns = |conn: &Conn| conn.with_statement(read, |s| Ok(s.column_count())).unwrap();
        assert_eq!(columns(&conn), 1);
        conn.raw()
            .execute_batch("ALTER TABLE t ADD COLUMN m TEXT")
            .unwrap();
        conn.with_statement(read, |s| s.query_row([], |_| Ok(())))
            .unwrap();
        assert_eq!(columns(&conn), 2);
        let bad = conn.run("SELECT * FROM no_such_table");
        assert!(bad.unwrap_err().to_string().contains("no_such_table"));
        assert_eq!(
            idle(&conn),
            [read],
            "a statement that failed to prepare is not kept"
        );
    }
}
