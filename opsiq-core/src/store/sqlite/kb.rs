//! Knowledge-base queries, with FTS5 search over titles and bodies.

use rusqlite::{Row, params};

use super::Db;
use super::misc::{all, enum_col, exec, fts_query, insert, one};
use crate::Result;
use crate::kb::{Article, ArticleFields, ArticleFilter};
use crate::store::{KbReads, KbWrites};
use crate::types::{Id, Timestamp};

const ARTICLE: &str = "SELECT a.id, a.workspace_id, a.title, a.slug, a.body, a.status, a.created_at, a.updated_at, a.published_at FROM kb_articles a";

fn article(r: &Row<'_>) -> rusqlite::Result<Article> {
    Ok(Article {
        id: r.get("id")?,
        workspace_id: r.get("workspace_id")?,
        title: r.get("title")?,
        slug: r.get("slug")?,
        body: r.get("body")?,
        status: enum_col(r, "status")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
        published_at: r.get("published_at")?,
    })
}

impl KbReads for Db<'_, '_> {
    fn article(&self, workspace: Id, id: Id) -> Result<Option<Article>> {
        one(
            self,
            &format!("{ARTICLE} WHERE a.workspace_id = ?1 AND a.id = ?2"),
            [workspace, id],
            article,
        )
    }

    fn article_id_by_slug(&self, workspace: Id, slug: &str) -> Result<Option<Id>> {
        one(
            self,
            "SELECT id FROM kb_articles WHERE workspace_id = ?1 AND slug = ?2",
            params![workspace, slug],
            |r| r.get(0),
        )
    }

    fn articles(&self, workspace: Id, f: &ArticleFilter) -> Result<Vec<Article>> {
        let query = match f.q.as_deref() {
            Some(q) => match fts_query(q) {
                Some(query) => Some(query),
                None => return Ok(Vec::new()),
            },
            None => None,
        };
        all(
            self,
            &format!(
                "{ARTICLE} WHERE a.workspace_id = ?1 AND (?2 IS NULL OR a.id < ?2) AND (?3 IS NULL OR a.status = ?3) \
                 AND (?4 IS NULL OR a.id IN (SELECT rowid FROM kb_articles_fts WHERE kb_articles_fts MATCH ?4)) \
                 ORDER BY a.id DESC LIMIT ?5"
            ),
            params![
                workspace,
                f.before.map(|c| c.0),
                f.status.map(|s| s.as_str()),
                query,
                f.limit.get() + 1
            ],
            article,
        )
    }

    fn search_published(&self, workspace: Id, query: &str, limit: u32) -> Result<Vec<Article>> {
        let Some(query) = fts_query(query) else {
            return Ok(Vec::new());
        };
        all(
            self,
            &format!(
                "{ARTICLE} JOIN kb_articles_fts f ON f.rowid = a.id WHERE kb_articles_fts MATCH ?2 \
                 AND a.workspace_id = ?1 AND a.status = 'published' ORDER BY bm25(kb_articles_fts, 5.0, 1.0) LIMIT ?3"
            ),
            params![workspace, query, limit],
            article,
        )
    }
}

impl KbWrites for Db<'_, '_> {
    fn insert_article(&mut self, workspace: Id, a: &ArticleFields, now: Timestamp) -> Result<Id> {
        let published = (a.status == crate::kb::ArticleStatus::Published).then_some(now);
        insert(
            self,
            "INSERT INTO kb_articles (workspace_id, title, slug, body, status, created_at, updated_at, published_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)",
            params![
                workspace,
                a.title,
                a.slug,
                a.body,
                a.status.as_str(),
                now,
                published
            ],
        )
    }

    fn update_article(
        &mut self,
        workspace: Id,
        id: Id,
        a: &ArticleFields,
        now: Timestamp,
    ) -> Result<()> {
        exec(
            self,
            "UPDATE kb_articles SET title = ?3, slug = ?4, body = ?5, status = ?6, updated_at = ?7, \
             published_at = CASE WHEN ?6 = 'published' THEN COALESCE(published_at, ?7) ELSE published_at END \
             WHERE workspace_id = ?1 AND id = ?2",
            params![
                workspace,
                id,
                a.title,
                a.slug,
                a.body,
                a.status.as_str(),
                now
            ],
        )?;
        Ok(())
    }
}
