//! Analytics queries: every figure is counted from the rows of one site in `[from, to)`.

use rusqlite::params;

use super::misc::{all, exec, insert, one};
use super::{Db, db_err};
use crate::Result;
use crate::analytics::{NewKnowledgeQuery, NewOrder, NewPageView, SiteCounts};
use crate::store::{AnalyticsReads, AnalyticsWrites};
use crate::types::{Id, Timestamp};

impl Db<'_, '_> {
    fn count(&self, sql: &str, site: Id, from: Timestamp, to: Timestamp) -> Result<i64> {
        let mut stmt = self.prepare(sql)?;
        stmt.query_row(params![site, from, to], |r| r.get(0))
            .map_err(db_err)
    }
}

impl AnalyticsReads for Db<'_, '_> {
    fn site_counts(&self, site: Id, from: Timestamp, to: Timestamp) -> Result<SiteCounts> {
        let range = "site_id = ?1 AND created_at >= ?2 AND created_at < ?3";
        Ok(SiteCounts {
            visitors: self.count(
                "SELECT COUNT(DISTINCT visitor_id) FROM visits WHERE site_id = ?1 AND started_at < ?3 AND last_seen_at >= ?2",
                site,
                from,
                to,
            )?,
            sessions: self.count("SELECT COUNT(*) FROM visits WHERE site_id = ?1 AND started_at >= ?2 AND started_at < ?3", site, from, to)?,
            page_views: self.count(&format!("SELECT COUNT(*) FROM page_views WHERE {range}"), site, from, to)?,
            chats_started: self.count(
                "SELECT COUNT(*) FROM chat_sessions WHERE site_id = ?1 AND started_at >= ?2 AND started_at < ?3",
                site,
                from,
                to,
            )?,
            tickets_created: self.count(&format!("SELECT COUNT(*) FROM tickets WHERE {range}"), site, from, to)?,
            tickets_resolved: self.count(
                "SELECT COUNT(*) FROM tickets WHERE site_id = ?1 AND resolved_at >= ?2 AND resolved_at < ?3",
                site,
                from,
                to,
            )?,
            leads_scored: self.count(&format!("SELECT COUNT(DISTINCT contact_id) FROM lead_score_changes WHERE {range}"), site, from, to)?,
            orders: all(
                self,
                &format!("SELECT currency, COUNT(*), SUM(amount_minor) FROM orders WHERE {range} GROUP BY currency ORDER BY currency"),
                params![site, from, to],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?,
            knowledge_answers: self.count(&format!("SELECT COUNT(*) FROM knowledge_queries WHERE {range} AND answered = 1"), site, from, to)?,
            missed_questions: self.count(&format!("SELECT COUNT(*) FROM knowledge_queries WHERE {range} AND answered = 0"), site, from, to)?,
        })
    }

    fn first_response_times(&self, site: Id, from: Timestamp, to: Timestamp) -> Result<Vec<i64>> {
        all(
            self,
            "SELECT first_response_at - started_at FROM chat_sessions \
             WHERE site_id = ?1 AND started_at >= ?2 AND started_at < ?3 AND first_response_at IS NOT NULL",
            params![site, from, to],
            |r| r.get(0),
        )
    }

    fn latest_visit(&self, visitor: Id) -> Result<Option<(Id, Timestamp)>> {
        one(
            self,
            "SELECT id, last_seen_at FROM visits WHERE visitor_id = ?1 ORDER BY id DESC LIMIT 1",
            [visitor],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    fn missed_question_count(&self, site: Id, question: &str) -> Result<i64> {
        let mut stmt = self.prepare("SELECT COUNT(*) FROM knowledge_queries WHERE site_id = ?1 AND question = ?2 AND answered = 0")?;
        stmt.query_row(params![site, question], |r| r.get(0))
            .map_err(db_err)
    }
}

impl AnalyticsWrites for Db<'_, '_> {
    fn insert_visit(&mut self, site: Id, visitor: Id, now: Timestamp) -> Result<Id> {
        insert(
            self,
            "INSERT INTO visits (site_id, visitor_id, started_at, last_seen_at) VALUES (?1, ?2, ?3, ?3)",
            params![site, visitor, now],
        )
    }

    fn touch_visit(&mut self, visit: Id, now: Timestamp) -> Result<()> {
        exec(
            self,
            "UPDATE visits SET last_seen_at = ?2 WHERE id = ?1",
            params![visit, now],
        )?;
        Ok(())
    }

    fn insert_page_view(&mut self, v: &NewPageView, now: Timestamp) -> Result<Id> {
        insert(
            self,
            "INSERT INTO page_views (site_id, visitor_id, visit_id, url, title, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![v.site_id, v.visitor_id, v.visit_id, v.url, v.title, now],
        )
    }

    fn insert_order(&mut self, o: &NewOrder, now: Timestamp) -> Result<Id> {
        insert(
            self,
            "INSERT INTO orders (workspace_id, site_id, visitor_id, contact_id, external_id, amount_minor, currency, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                o.workspace_id,
                o.site_id,
                o.visitor_id,
                o.contact_id,
                o.external_id,
                o.amount_minor,
                o.currency,
                now
            ],
        )
    }

    fn insert_knowledge_query(&mut self, q: &NewKnowledgeQuery, now: Timestamp) -> Result<Id> {
        insert(
            self,
            "INSERT INTO knowledge_queries (workspace_id, site_id, question, answered, article_id, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                q.workspace_id,
                q.site_id,
                q.question,
                q.article_id.is_some(),
                q.article_id,
                now
            ],
        )
    }

    fn change_lead_score(
        &mut self,
        site: Id,
        contact: Id,
        delta: i64,
        reason: &str,
        now: Timestamp,
    ) -> Result<i64> {
        exec(
            self,
            "UPDATE contacts SET lead_score = lead_score + ?2, updated_at = ?3 WHERE id = ?1",
            params![contact, delta, now],
        )?;
        let score: i64 = one(
            self,
            "SELECT lead_score FROM contacts WHERE id = ?1",
            [contact],
            |r| r.get(0),
        )?
        .unwrap_or(0);
        exec(
            self,
            "INSERT INTO lead_score_changes (site_id, contact_id, delta, score, reason, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![site, contact, delta, score, reason, now],
        )?;
        Ok(score)
    }
}
