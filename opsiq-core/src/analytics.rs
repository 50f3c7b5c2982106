//! Analytics: what happened on one site over a date range, computed from the stored rows
//! (page views, visits, chats, tickets, lead scores, orders, knowledge queries), never from
//! counters that could drift. Also the recording side the widget runtime and connectors use:
//! page views, attributed orders, knowledge answers and missed questions, lead scores.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use time::{Date, Duration, OffsetDateTime, Time};

use crate::catalog::{Action, Method};
use crate::chats::Visitor;
use crate::events::{EventData, KnowledgeMissedQuestion, LeadScored, OrderAttributed};
use crate::service::{Call, Opsiq};
use crate::store::Writes;
use crate::tenancy::Site;
use crate::types::{Id, Timestamp, text, vocabulary};
use crate::{Error, Result, Scope};

vocabulary!(
    /// A named date range ending today (UTC).
    Preset { Today = "today", Last7Days = "7d", Last30Days = "30d", Last90Days = "90d" }
);

/// A visit ends after this long without a page view.
const VISIT_TIMEOUT_MS: i64 = 30 * 60 * 1000;
/// A lead score crossing this value (upwards) fires `lead.scored`.
pub const LEAD_SCORE_THRESHOLD: i64 = 50;
/// A question missed this many times on a site fires `knowledge.missed_question`.
pub const MISSED_QUESTION_REPEATS: i64 = 2;
/// The longest range a summary covers.
const MAX_RANGE_DAYS: i64 = 366;

/// Counts of one site over a range, as the store computes them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SiteCounts {
    pub visitors: i64,
    pub sessions: i64,
    pub page_views: i64,
    pub chats_started: i64,
    pub tickets_created: i64,
    pub tickets_resolved: i64,
    pub leads_scored: i64,
    /// (currency, orders, revenue in minor units), by currency.
    pub orders: Vec<(String, i64, i64)>,
    pub knowledge_answers: i64,
    pub missed_questions: i64,
}

#[derive(Debug, Clone)]
pub struct NewPageView {
    pub site_id: Id,
    pub visitor_id: Id,
    pub visit_id: Id,
    pub url: String,
    pub title: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewOrder {
    pub workspace_id: Id,
    pub site_id: Id,
    pub visitor_id: Option<Id>,
    pub contact_id: Option<Id>,
    pub external_id: Option<String>,
    pub amount_minor: i64,
    pub currency: String,
}

#[derive(Debug, Clone)]
pub struct NewKnowledgeQuery {
    pub workspace_id: Id,
    pub site_id: Id,
    /// Normalised: trimmed, lower-cased, single spaces.
    pub question: String,
    pub article_id: Option<Id>,
}

/// A calendar date, `YYYY-MM-DD`.
fn deserialize_date<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Date>, D::Error> {
    let Some(raw) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(&raw, format)
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("`{raw}` is not a date (YYYY-MM-DD)")))
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SummaryInput {
    /// `today`, `7d`, `30d` (the default) or `90d`; ignored when `from` and `to` are given.
    pub preset: Option<Preset>,
    /// First day of the range (UTC), `YYYY-MM-DD`.
    #[serde(default, deserialize_with = "deserialize_date")]
    #[schemars(with = "Option<String>", extend("format" = "date", "pattern" = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))]
    pub from: Option<Date>,
    /// Last day of the range (UTC, inclusive), `YYYY-MM-DD`.
    #[serde(default, deserialize_with = "deserialize_date")]
    #[schemars(with = "Option<String>", extend("format" = "date", "pattern" = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))]
    pub to: Option<Date>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct SiteRef {
    pub id: Id,
    pub name: String,
    pub domain: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct RangeCovered {
    /// The preset used, or `null` for an explicit `from`/`to`.
    pub preset: Option<Preset>,
    /// Start of the range, inclusive.
    pub from: Timestamp,
    /// End of the range, exclusive.
    pub to: Timestamp,
    pub timezone: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Revenue {
    pub currency: String,
    pub orders: i64,
    /// In the currency's minor unit (cents).
    pub amount_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Summary {
    pub site: SiteRef,
    pub range: RangeCovered,
    /// Distinct visitors with a visit in the range.
    pub visitors: i64,
    /// Visits (browsing sessions) started in the range.
    pub sessions: i64,
    pub page_views: i64,
    pub chats_started: i64,
    pub tickets_created: i64,
    pub tickets_resolved: i64,
    /// Median time from a chat's start to the first agent answer, for chats started in the
    /// range; `null` when no chat was answered.
    pub median_first_response_seconds: Option<f64>,
    /// Contacts whose lead score changed in the range.
    pub leads_scored: i64,
    pub orders: i64,
    /// Attributed revenue per currency.
    pub revenue: Vec<Revenue>,
    /// Visitor questions the customer AI answered from the knowledge base.
    pub knowledge_answers: i64,
    pub missed_questions: i64,
}

fn start_of(date: Date) -> Timestamp {
    let t = date.with_time(Time::MIDNIGHT).assume_utc();
    Timestamp((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Resolves the requested range to `[from, to)` in UTC, given today's date.
pub fn resolve_range(input: &SummaryInput, today: Date) -> Result<RangeCovered> {
    let (preset, first, last) = match (input.from, input.to) {
        (Some(from), Some(to)) => {
            if from > to {
                return Err(Error::parameter(
                    "from",
                    format!("{from} is after `to` ({to})"),
                ));
            }
            if (to - from).whole_days() + 1 > MAX_RANGE_DAYS {
                return Err(Error::parameter(
                    "to",
                    format!("a range covers at most {MAX_RANGE_DAYS} days"),
                ));
            }
            (None, from, to)
        }
        (Some(_), None) => return Err(Error::parameter("to", "give `to` with `from`")),
        (None, Some(_)) => return Err(Error::parameter("from", "give `from` with `to`")),
        (None, None) => {
            let preset = input.preset.unwrap_or(Preset::Last30Days);
            let days = match preset {
                Preset::Today => 1,
                Preset::Last7Days => 7,
                Preset::Last30Days => 30,
                Preset::Last90Days => 90,
            };
            (Some(preset), today - Duration::days(days - 1), today)
        }
    };
    let end = last.next_day().map(start_of).unwrap_or(Timestamp(i64::MAX));
    Ok(RangeCovered {
        preset,
        from: start_of(first),
        to: end,
        timezone: "UTC".into(),
    })
}

/// The median of a list of milliseconds, in seconds.
fn median_seconds(mut ms: Vec<i64>) -> Option<f64> {
    if ms.is_empty() {
        return None;
    }
    ms.sort_unstable();
    let mid = ms.len() / 2;
    let median = if ms.len().is_multiple_of(2) {
        (ms[mid - 1] + ms[mid]) as f64 / 2.0
    } else {
        ms[mid] as f64
    };
    Some(median / 1000.0)
}

/// Normalises a question for counting repeats.
pub fn normalize_question(q: &str) -> String {
    q.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn validate_currency(currency: &str) -> Result<String> {
    let c = currency.trim().to_uppercase();
    if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(c)
    } else {
        Err(Error::validation(
            "currency",
            format!("`{currency}` is not an ISO 4217 currency code"),
        ))
    }
}

/// Adds to a contact's lead score inside a write, firing `lead.scored` when the score crosses
/// the threshold upwards. Returns the new score.
pub(crate) fn change_lead_score(
    w: &mut dyn Writes,
    workspace: Id,
    site: Id,
    contact: Id,
    delta: i64,
    reason: &str,
) -> Result<i64> {
    let score = w.change_lead_score(site, contact, delta, reason, Timestamp::now())?;
    let before = score - delta;
    if before < LEAD_SCORE_THRESHOLD && score >= LEAD_SCORE_THRESHOLD {
        let scored = LeadScored {
            contact_id: contact,
            site_id: site,
            score,
            previous_score: before,
            threshold: LEAD_SCORE_THRESHOLD,
            reason: reason.to_string(),
        };
        scored.emit(w, workspace)?;
    }
    Ok(score)
}

impl Opsiq {
    pub fn analytics_summary(&self, call: &Call, input: SummaryInput) -> Result<Summary> {
        let range = resolve_range(&input, OffsetDateTime::now_utc().date())?;
        let site_id = call.principal.site_id;
        let (site, counts, responses) = self.read(|r| {
            let site = r
                .site(site_id)?
                .ok_or_else(|| Error::not_found("site", site_id))?;
            Ok((
                site,
                r.site_counts(site_id, range.from, range.to)?,
                r.first_response_times(site_id, range.from, range.to)?,
            ))
        })?;
        Ok(Summary {
            site: SiteRef {
                id: site.id,
                name: site.name,
                domain: site.domain,
            },
            range,
            visitors: counts.visitors,
            sessions: counts.sessions,
            page_views: counts.page_views,
            chats_started: counts.chats_started,
            tickets_created: counts.tickets_created,
            tickets_resolved: counts.tickets_resolved,
            median_first_response_seconds: median_seconds(responses),
            leads_scored: counts.leads_scored,
            orders: counts.orders.iter().map(|(_, n, _)| n).sum(),
            revenue: counts
                .orders
                .into_iter()
                .map(|(currency, orders, amount_minor)| Revenue {
                    currency,
                    orders,
                    amount_minor,
                })
                .collect(),
            knowledge_answers: counts.knowledge_answers,
            missed_questions: counts.missed_questions,
        })
    }

    /// Records a page view of a visitor; a new visit starts after 30 minutes without one.
    pub fn record_page_view(
        &self,
        site: &Site,
        visitor: &Visitor,
        url: &str,
        title: Option<&str>,
    ) -> Result<Id> {
        if visitor.site_id != site.id {
            return Err(Error::validation(
                "visitor_id",
                "this visitor belongs to another site",
            ));
        }
        let url = text("url", url, 2000, true)?;
        let title = title.map(|t| text("title", t, 500, false)).transpose()?;
        let (site_id, visitor_id) = (site.id, visitor.row_id);
        self.write(move |w| {
            let now = Timestamp::now();
            let visit = match w.latest_visit(visitor_id)? {
                Some((visit, last)) if now.0 - last.0 < VISIT_TIMEOUT_MS => {
                    w.touch_visit(visit, now)?;
                    visit
                }
                _ => w.insert_visit(site_id, visitor_id, now)?,
            };
            w.touch_visitor(visitor_id, now)?;
            w.insert_page_view(
                &NewPageView {
                    site_id,
                    visitor_id,
                    visit_id: visit,
                    url,
                    title,
                },
                now,
            )
        })
    }

    /// Records a purchase attributed to a visitor and/or contact, firing `order.attributed`.
    pub fn record_order(
        &self,
        site: &Site,
        visitor: Option<&Visitor>,
        contact: Option<Id>,
        external_id: Option<&str>,
        amount_minor: i64,
        currency: &str,
    ) -> Result<Id> {
        if amount_minor < 0 {
            return Err(Error::validation("amount", "must not be negative"));
        }
        let order = NewOrder {
            workspace_id: site.workspace_id,
            site_id: site.id,
            visitor_id: visitor.map(|v| v.row_id),
            contact_id: contact.or_else(|| visitor.and_then(|v| v.contact_id)),
            external_id: external_id
                .map(|e| text("external_id", e, 200, true))
                .transpose()?,
            amount_minor,
            currency: validate_currency(currency)?,
        };
        let visitor_public = visitor.map(|v| v.id.clone());
        self.write(move |w| {
            let id = w.insert_order(&order, Timestamp::now())?;
            let attributed = OrderAttributed {
                order_id: id,
                site_id: order.site_id,
                visitor_id: visitor_public,
                contact_id: order.contact_id,
                external_id: order.external_id,
                amount_minor: order.amount_minor,
                currency: order.currency,
            };
            attributed.emit(w, order.workspace_id)?;
            Ok(id)
        })
    }

    /// Records a question the customer AI was asked: answered from an article, or missed. A
    /// question missed repeatedly fires `knowledge.missed_question`.
    pub fn record_knowledge_query(
        &self,
        site: &Site,
        question: &str,
        answered_by: Option<Id>,
    ) -> Result<Id> {
        let question = normalize_question(&text("question", question, 2000, true)?);
        let query = NewKnowledgeQuery {
            workspace_id: site.workspace_id,
            site_id: site.id,
            question,
            article_id: answered_by,
        };
        self.write(move |w| {
            let id = w.insert_knowledge_query(&query, Timestamp::now())?;
            if query.article_id.is_none() {
                let misses = w.missed_question_count(query.site_id, &query.question)?;
                if misses == MISSED_QUESTION_REPEATS {
                    let missed = KnowledgeMissedQuestion {
                        site_id: query.site_id,
                        question: query.question,
                        times_missed: misses,
                    };
                    missed.emit(w, query.workspace_id)?;
                }
            }
            Ok(id)
        })
    }

    /// Adds to a contact's lead score (see [`LEAD_SCORE_THRESHOLD`]); returns the new score.
    pub fn score_lead(&self, site: &Site, contact: Id, delta: i64, reason: &str) -> Result<i64> {
        let reason = text("reason", reason, 200, true)?;
        let (workspace, site_id) = (site.workspace_id, site.id);
        self.write(move |w| {
            w.contact(workspace, contact)?
                .ok_or_else(|| Error::not_found("contact", contact))?;
            change_lead_score(w, workspace, site_id, contact, delta, &reason)
        })
    }
}

/// The analytics actions of the catalog.
pub fn actions() -> Vec<Action> {
    vec![
        Action::new("analytics.summary", Scope::AnalyticsRead, "site", "Return a summary for the active date range.", |op, call, i| {
            op.analytics_summary(call, i)
        })
        .route(Method::Get, "/analytics/summary")
        .scanning()
        .describe(
            "Figures for the key's active site only: visitor and page metrics stay tied to the domain that collected \
             them; shared site groups do not merge per-domain visitor data. `preset` is today, 7d, 30d (default) or \
             90d, ending today (UTC); or give `from` and `to` (YYYY-MM-DD, inclusive, at most 366 days).",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn input(preset: Option<Preset>, from: Option<Date>, to: Option<Date>) -> SummaryInput {
        SummaryInput { preset, from, to }
    }

    #[test]
    fn presets_end_today_and_ranges_are_inclusive_days() {
        let today = date!(2026 - 05 - 25);
        let r = resolve_range(&input(None, None, None), today).unwrap();
        assert_eq!(
            (r.preset, r.from.to_rfc3339(), r.to.to_rfc3339()),
            (
                Some(Preset::Last30Days),
                "2026-04-26T00:00:00.000Z".into(),
                "2026-05-26T00:00:00.000Z".into()
            )
        );
        let r = resolve_range(&input(Some(Preset::Today), None, None), today).unwrap();
        assert_eq!(r.from.to_rfc3339(), "2026-05-25T00:00:00.000Z");
        let r = resolve_range(
            &input(
                Some(Preset::Today),
                Some(date!(2026 - 01 - 01)),
                Some(date!(2026 - 01 - 31)),
            ),
            today,
        )
        .unwrap();
        assert_eq!(
            (r.preset, r.to.to_rfc3339()),
            (None, "2026-02-01T00:00:00.000Z".into())
        );
    }

    #[test]
    fn backwards_or_overlong_or_half_ranges_are_400_naming_the_parameter() {
        let today = date!(2026 - 05 - 25);
        let err = |f, t| resolve_range(&input(None, f, t), today).unwrap_err().code();
        assert_eq!(
            err(Some(date!(2026 - 02 - 01)), Some(date!(2026 - 01 - 01))),
            "invalid_parameter:from"
        );
        assert_eq!(
            err(Some(date!(2025 - 01 - 01)), Some(date!(2026 - 01 - 02))),
            "invalid_parameter:to"
        );
        assert_eq!(
            err(Some(date!(2025 - 01 - 01)), None),
            "invalid_parameter:to"
        );
        assert_eq!(
            err(None, Some(date!(2025 - 01 - 01))),
            "invalid_parameter:from"
        );
        assert!(
            resolve_range(
                &input(
                    None,
                    Some(date!(2025 - 01 - 01)),
                    Some(date!(2026 - 01 - 01))
                ),
                today
            )
            .is_ok()
        );
    }

    #[test]
    fn medians_and_question_normalisation() {
        assert_eq!(median_seconds(vec![]), None);
        assert_eq!(median_seconds(vec![3000, 1000, 2000]), Some(2.0));
        assert_eq!(median_seconds(vec![1000, 4000]), Some(2.5));
        assert_eq!(
            normalize_question("  How do I   RESET my password? "),
            "how do i reset my password?"
        );
    }
}
