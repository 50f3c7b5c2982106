//! The knowledge base: articles with a title, body, slug and status. Published articles are
//! searchable with SQLite FTS5; that search is what the customer AI answers visitors from.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::catalog::{Action, Method};
use crate::service::{Call, Opsiq};
use crate::store::Writes;
use crate::types::{Cursor, Id, Limit, Page, Text, Timestamp, vocabulary};
use crate::{Error, Result, Scope};

vocabulary!(
    /// Where an article is in its life; only `published` articles are searched.
    ArticleStatus { Draft = "draft", Published = "published", Archived = "archived" }
);

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Article {
    pub id: Id,
    pub workspace_id: Id,
    pub title: String,
    /// URL-safe and unique in the workspace.
    pub slug: String,
    pub body: String,
    pub status: ArticleStatus,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// When the article was first published.
    pub published_at: Option<Timestamp>,
}

/// The stored, editable fields of an article.
#[derive(Debug, Clone, PartialEq)]
pub struct ArticleFields {
    pub title: String,
    pub slug: String,
    pub body: String,
    pub status: ArticleStatus,
}

/// How to list articles.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ArticleFilter {
    pub status: Option<ArticleStatus>,
    /// Words matched against title and body.
    pub q: Option<String>,
    pub before: Option<Cursor>,
    pub limit: Limit,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArticles {
    pub status: Option<ArticleStatus>,
    /// Search words, matched against title and body.
    #[schemars(length(max = 200))]
    pub q: Option<String>,
    #[serde(default)]
    pub limit: Limit,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<Cursor>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateArticle {
    pub title: Text<300>,
    pub body: Text<200_000>,
    /// `draft` when not given.
    pub status: Option<ArticleStatus>,
    /// Made from the title when not given.
    pub slug: Option<Slug>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArticleId {
    pub id: Id,
}

/// A partial update: absent fields stay as they are.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("anyOf" = [
    {"required": ["title"]}, {"required": ["body"]}, {"required": ["status"]}, {"required": ["slug"]}
]))]
pub struct UpdateArticle {
    pub id: Id,
    pub title: Option<Text<300>>,
    pub body: Option<Text<200_000>>,
    pub status: Option<ArticleStatus>,
    pub slug: Option<Slug>,
}

/// Makes a slug from free text: lower-case letters and digits joined by single hyphens.
pub fn slugify(title: &str) -> String {
    let mut slug = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug: String = slug.trim_end_matches('-').chars().take(100).collect();
    let slug = slug.trim_end_matches('-').to_string();
    if slug.is_empty() {
        "article".to_string()
    } else {
        slug
    }
}

/// A slug given by the caller: lower-case letters, digits and inner hyphens, at most 100.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(transparent)]
#[schemars(extend("pattern" = "^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$"))]
pub struct Slug(String);

impl Slug {
    pub fn parse(raw: &str) -> Result<Self> {
        let ok = !raw.is_empty()
            && raw.len() <= 100
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !raw.starts_with('-')
            && !raw.ends_with('-');
        if ok {
            Ok(Slug(raw.to_string()))
        } else {
            Err(Error::validation(
                "slug",
                format!(
                    "`{raw}` is not a slug (lower-case letters, digits and inner hyphens, at most 100)"
                ),
            ))
        }
    }
}

impl<'de> Deserialize<'de> for Slug {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Slug::parse(&raw).map_err(|e| {
            serde::de::Error::custom(
                e.to_string()
                    .trim_start_matches("field `slug`: ")
                    .to_string(),
            )
        })
    }
}

/// The slug to store: the caller's (which must be free), or one made from the title, made
/// unique with a numeric suffix.
fn unique_slug(
    w: &dyn Writes,
    workspace: Id,
    id: Option<Id>,
    wanted: Option<String>,
    title: &str,
) -> Result<String> {
    if let Some(slug) = wanted {
        return match w.article_id_by_slug(workspace, &slug)? {
            Some(other) if Some(other) != id => Err(Error::validation(
                "slug",
                format!("article {other} already has the slug `{slug}`"),
            )),
            _ => Ok(slug),
        };
    }
    let base = slugify(title);
    let mut candidate = base.clone();
    let mut n = 2;
    while let Some(other) = w.article_id_by_slug(workspace, &candidate)? {
        if Some(other) == id {
            break;
        }
        candidate = format!("{base}-{n}");
        n += 1;
    }
    Ok(candidate)
}

impl Opsiq {
    pub fn list_articles(&self, call: &Call, input: ListArticles) -> Result<Page<Article>> {
        let q = input
            .q
            .map(|q| q.trim().to_string())
            .filter(|q| !q.is_empty());
        if q.as_ref().is_some_and(|q| q.chars().count() > 200) {
            return Err(Error::validation("q", "must be at most 200 characters"));
        }
        let filter = ArticleFilter {
            status: input.status,
            q,
            before: input.cursor,
            limit: input.limit,
        };
        let workspace = call.principal.workspace_id;
        let rows = self.read(|r| r.articles(workspace, &filter))?;
        Ok(Page::from_rows(rows, filter.limit, |a| a.id.0))
    }

    pub fn get_article(&self, call: &Call, input: ArticleId) -> Result<Article> {
        let workspace = call.principal.workspace_id;
        self.read(|r| r.article(workspace, input.id))?
            .ok_or_else(|| Error::not_found("article", input.id))
    }

    pub fn create_article(&self, call: &Call, input: CreateArticle) -> Result<Article> {
        let workspace = call.principal.workspace_id;
        let (title, body) = (input.title.into_string(), input.body.into_string());
        let slug = input.slug.map(|s| s.0);
        let status = input.status.unwrap_or(ArticleStatus::Draft);
        self.write_audited(call, move |w| {
            let slug = unique_slug(w, workspace, None, slug, &title)?;
            let id = w.insert_article(
                workspace,
                &ArticleFields {
                    title,
                    slug,
                    body,
                    status,
                },
                Timestamp::now(),
            )?;
            w.article(workspace, id)?
                .ok_or_else(|| Error::Internal("article vanished".into()))
        })
    }

    pub fn update_article(&self, call: &Call, input: UpdateArticle) -> Result<Article> {
        let workspace = call.principal.workspace_id;
        let title = input.title.map(Text::into_string);
        let body = input.body.map(Text::into_string);
        let slug = input.slug.map(|s| s.0);
        if title.is_none() && body.is_none() && slug.is_none() && input.status.is_none() {
            return Err(Error::validation(
                "params",
                "give at least one of title, body, status, slug",
            ));
        }
        self.write_audited(call, move |w| {
            let current = w
                .article(workspace, input.id)?
                .ok_or_else(|| Error::not_found("article", input.id))?;
            let title = title.unwrap_or(current.title);
            let slug = match slug {
                Some(slug) => unique_slug(w, workspace, Some(current.id), Some(slug), &title)?,
                None => current.slug,
            };
            let fields = ArticleFields {
                title,
                slug,
                body: body.unwrap_or(current.body),
                status: input.status.unwrap_or(current.status),
            };
            w.update_article(workspace, current.id, &fields, Timestamp::now())?;
            w.article(workspace, current.id)?
                .ok_or_else(|| Error::Internal("article vanished".into()))
        })
    }

    /// Published articles of a workspace matching a visitor's question, best first: what the
    /// customer AI answers from.
    pub fn search_knowledge(
        &self,
        workspace: Id,
        question: &str,
        limit: u32,
    ) -> Result<Vec<Article>> {
        let question = question.trim().to_string();
        self.read(|r| r.search_published(workspace, &question, limit))
    }
}

/// The knowledge-base actions of the catalog.
pub fn actions() -> Vec<Action> {
    use Scope::{KbRead, KbWrite};
    vec![
        Action::list("kb.articles.list", KbRead, "article", "List knowledge-base articles.", |op, call, i| {
            op.list_articles(call, i)
        })
        .route(Method::Get, "/kb/articles")
        .describe("Newest first, optionally by `status`; `q` searches titles and bodies."),
        Action::new("kb.articles.create", KbWrite, "article", "Create a knowledge-base article.", |op, call, i| {
            op.create_article(call, i)
        })
        .route(Method::Post, "/kb/articles")
        .mutating(true)
        .describe("New articles are drafts unless `status` says otherwise. The slug is made from the title when not given.")
        .example(json!({
            "title": "How to reset your password",
            "body": "Open Account Settings, choose Security, then Reset Password.",
            "status": "published"
        })),
        Action::new("kb.articles.get", KbRead, "article", "Fetch one knowledge-base article.", |op, call, i| op.get_article(call, i))
            .route(Method::Get, "/kb/articles/{id}"),
        Action::new("kb.articles.update", KbWrite, "article", "Update a knowledge-base article.", |op, call, i| {
            op.update_article(call, i)
        })
        .route(Method::Patch, "/kb/articles/{id}")
        .route(Method::Put, "/kb/articles/{id}")
        .mutating(false)
        .describe("Absent fields stay unchanged. The customer AI can use published content when answering visitors.")
        .example(json!({"status": "published", "body": "Updated article body."})),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_made_from_titles() {
        assert_eq!(
            slugify("How to reset your password"),
            "how-to-reset-your-password"
        );
        assert_eq!(slugify("  Ünïcode & -- symbols!! "), "n-code-symbols");
        assert_eq!(slugify("!!!"), "article");
        assert!(Slug::parse("a-b-1").is_ok());
        for bad in ["", "A", "a_b", "-a", "a-", "a b"] {
            assert!(Slug::parse(bad).is_err(), "{bad:?}");
        }
    }
}
