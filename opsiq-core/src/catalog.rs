//! The action catalog: every operation OpsIQ exposes, as data.
//!
//! An action has an id (`tickets.create`), the scope it needs, a typed input and output (their
//! JSON Schemas come from schemars), and the REST routes bound to it. The catalog is the single
//! source of truth for the REST router, the action endpoint, the OpenAPI document and `meta.me`;
//! adding an operation means adding one entry here. Entries are plain values, so actions can
//! also be registered at run time (connectors).

use std::fmt;
use std::sync::Arc;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::service::{Call, Opsiq};
use crate::types::{Doc, Joined, Page};
use crate::{Error, Result, Scope};

/// The prefix of every REST route.
pub const API_PREFIX: &str = "/api/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Method::Get,
            Method::Post,
            Method::Put,
            Method::Patch,
            Method::Delete,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A REST binding: a method and a path template such as `/api/v1/tickets/{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: Method,
    pub path: String,
}

impl Route {
    /// The `{name}` segments of the template, in order.
    pub fn path_params(&self) -> impl Iterator<Item = &str> {
        self.path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
    }
}

/// What an action produced: the envelope's `data`, and for lists the next page's cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub data: Value,
    /// `Some` for lists (holding `None` on the last page), `None` for single results.
    pub next_cursor: Option<Option<String>>,
}

/// An action's result as JSON text, for the API's envelope: serialised straight from the
/// action's typed output (or joined from stored [`Doc`]s), without building a
/// `serde_json::Value` on the way.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// JSON text, written into the envelope as it is: `text[headroom..]`. The bytes in front
    /// are free room for the envelope (see [`crate::types::HEADROOM`]).
    pub(crate) text: String,
    pub(crate) headroom: usize,
    /// As in [`Output`].
    pub next_cursor: Option<Option<String>>,
}

impl Rendered {
    /// The result's JSON text.
    pub fn json(&self) -> &str {
        &self.text[self.headroom..]
    }
}

/// The form a caller wants an action's result in.
#[derive(Debug, Clone, Copy)]
enum Form {
    Value,
    Json,
}

enum Produced {
    Value(Output),
    Json(Rendered),
}

impl Produced {
    fn new<T: Serialize>(
        form: Form,
        data: &T,
        next_cursor: Option<Option<String>>,
    ) -> Result<Self> {
        let failed =
            |e: serde_json::Error| Error::Internal(format!("cannot serialise output: {e}"));
        Ok(match form {
            Form::Value => Produced::Value(Output {
                data: serde_json::to_value(data).map_err(failed)?,
                next_cursor,
            }),
            Form::Json => Produced::Json(Rendered {
                text: serde_json::to_string(data).map_err(failed)?,
                headroom: 0,
                next_cursor,
            }),
        })
    }

    /// A page of [`Doc`]s: their texts joined into an array, unparsed in JSON form.
    fn page_of_docs<T>(form: Form, page: Page<Doc<T>>) -> Result<Self> {
        Produced::stored(form, Doc::join(page.items), Some(page.next_cursor))
    }

    /// JSON text of stored records (see [`Doc`]): kept as it is in JSON form.
    fn stored(form: Form, json: Joined, next_cursor: Option<Option<String>>) -> Result<Self> {
        Ok(match form {
            Form::Value => Produced::Value(Output {
                data: serde_json::from_str(&json.text[json.headroom..])
                    .map_err(|e| Error::Internal(format!("a stored record is not JSON: {e}")))?,
                next_cursor,
            }),
            Form::Json => Produced::Json(Rendered {
                text: json.text,
                headroom: json.headroom,
                next_cursor,
            }),
        })
    }
}

pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;
type Runner =
    Arc<dyn Fn(&Opsiq, &Call, Map<String, Value>, Form) -> Result<Produced> + Send + Sync>;

/// One operation of the catalog.
#[derive(Clone)]
pub struct Action {
    pub id: String,
    /// The scope a key needs; `None` for actions any valid key may run (`meta.me`).
    pub scope: Option<Scope>,
    pub summary: String,
    pub description: String,
    /// What the action's `{id}` path parameter names, for 404s (`ticket`).
    pub noun: &'static str,
    pub routes: Vec<Route>,
    /// 200, or 201 for actions that create a resource.
    pub success_status: u16,
    /// Whether `data` is a page of a list (the envelope then carries `next_cursor`).
    pub paged: bool,
    /// Whether the action changes state (its audit row is written with the change).
    pub mutates: bool,
    /// Whether a read's work grows with the stored data (it counts or aggregates a date
    /// range) instead of being one row or one page. Adapters may run bounded reads where
    /// they are (the HTTP server does, on its own threads) and keep these apart.
    pub scans: bool,
    pub input_schema: SchemaFn,
    pub output_schema: SchemaFn,
    /// A request body from the public docs, for the OpenAPI document.
    pub example: Option<Value>,
    run: Runner,
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Action")
            .field("id", &self.id)
            .field("scope", &self.scope)
            .field("routes", &self.routes)
            .finish()
    }
}

fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

impl Action {
    /// An action returning one value.
    pub fn new<I, O, F>(
        id: &str,
        scope: impl Into<Option<Scope>>,
        noun: &'static str,
        summary: &str,
        f: F,
    ) -> Self
    where
        I: DeserializeOwned + JsonSchema + 'static,
        O: Serialize + JsonSchema + 'static,
        F: Fn(&Opsiq, &Call, I) -> Result<O> + Send + Sync + 'static,
    {
        let run: Runner = Arc::new(move |op, call, params, form| {
            let output = f(op, call, decode(params)?)?;
            Produced::new(form, &output, None)
        });
        Action::with_runner::<I, O>(id, scope, noun, summary, false, run)
    }

    /// An action returning one record as the store keeps it rendered (see [`Doc`]).
    pub fn doc<I, T, F>(
        id: &str,
        scope: impl Into<Option<Scope>>,
        noun: &'static str,
        summary: &str,
        f: F,
    ) -> Self
    where
        I: DeserializeOwned + JsonSchema + 'static,
        T: JsonSchema + 'static,
        F: Fn(&Opsiq, &Call, I) -> Result<Doc<T>> + Send + Sync + 'static,
    {
        let run: Runner = Arc::new(move |op, call, params, form| {
            let json = Joined {
                text: f(op, call, decode(params)?)?.into_json(),
                headroom: 0,
            };
            Produced::stored(form, json, None)
        });
        Action::with_runner::<I, T>(id, scope, noun, summary, false, run)
    }

    /// An action returning a page of a list.
    pub fn list<I, T, F>(
        id: &str,
        scope: impl Into<Option<Scope>>,
        noun: &'static str,
        summary: &str,
        f: F,
    ) -> Self
    where
        I: DeserializeOwned + JsonSchema + 'static,
        T: Serialize + JsonSchema + 'static,
        F: Fn(&Opsiq, &Call, I) -> Result<Page<T>> + Send + Sync + 'static,
    {
        let run: Runner = Arc::new(move |op, call, params, form| {
            let page = f(op, call, decode(params)?)?;
            Produced::new(form, &page.items, Some(page.next_cursor))
        });
        Action::with_runner::<I, Vec<T>>(id, scope, noun, summary, true, run)
    }

    /// An action returning a page of records as the store keeps them rendered (see [`Doc`]):
    /// the page is written into the answer without decoding a record.
    pub fn doc_list<I, T, F>(
        id: &str,
        scope: impl Into<Option<Scope>>,
        noun: &'static str,
        summary: &str,
        f: F,
    ) -> Self
    where
        I: DeserializeOwned + JsonSchema + 'static,
        T: JsonSchema + 'static,
        F: Fn(&Opsiq, &Call, I) -> Result<Page<Doc<T>>> + Send + Sync + 'static,
    {
        let run: Runner = Arc::new(move |op, call, params, form| {
            Produced::page_of_docs(form, f(op, call, decode(params)?)?)
        });
        Action::with_runner::<I, Vec<T>>(id, scope, noun, summary, true, run)
    }

    /// An action taking an `I` and answering an `O` (`paged`: a page of a list).
    fn with_runner<I: JsonSchema, O: JsonSchema>(
        id: &str,
        scope: impl Into<Option<Scope>>,
        noun: &'static str,
        summary: &str,
        paged: bool,
        run: Runner,
    ) -> Self {
        Action {
            id: id.to_string(),
            scope: scope.into(),
            summary: summary.to_string(),
            description: String::new(),
            noun,
            routes: Vec::new(),
            success_status: 200,
            paged,
            mutates: false,
            scans: false,
            input_schema: schema_of::<I>,
            output_schema: schema_of::<O>,
            example: None,
            run,
        }
    }

    /// Binds a REST route (the path is relative to `/api/v1`).
    pub fn route(mut self, method: Method, path: &str) -> Self {
        self.routes.push(Route {
            method,
            path: format!("{API_PREFIX}{path}"),
        });
        self
    }

    /// Marks a state-changing action; `created` makes it answer 201.
    pub fn mutating(mut self, created: bool) -> Self {
        self.mutates = true;
        if created {
            self.success_status = 201;
        }
        self
    }

    /// Marks a read whose work grows with the stored data (see [`Action::scans`]).
    pub fn scanning(mut self) -> Self {
        self.scans = true;
        self
    }

    pub fn describe(mut self, description: &str) -> Self {
        self.description = description.to_string();
        self
    }

    pub fn example(mut self, example: Value) -> Self {
        self.example = Some(example);
        self
    }

    /// Decodes the parameters and runs the action. Permission checks are the caller's
    /// (see [`Opsiq::handle`](crate::service::Opsiq)).
    pub fn run(&self, op: &Opsiq, call: &Call, params: Map<String, Value>) -> Result<Output> {
        match (self.run)(op, call, params, Form::Value)? {
            Produced::Value(output) => Ok(output),
            Produced::Json(_) => Err(Error::Internal("an action rendered the wrong form".into())),
        }
    }

    /// Like [`Action::run`], with the result as JSON text for the API's envelope.
    pub fn render(&self, op: &Opsiq, call: &Call, params: Map<String, Value>) -> Result<Rendered> {
        match (self.run)(op, call, params, Form::Json)? {
            Produced::Json(rendered) => Ok(rendered),
            Produced::Value(_) => Err(Error::Internal("an action rendered the wrong form".into())),
        }
    }
}

/// Decodes an action's parameters into its typed input. Errors name the field: the path of the
/// offending value, or the field a "missing field" / "unknown field" message mentions.
pub fn decode<I: DeserializeOwned>(params: Map<String, Value>) -> Result<I> {
    serde_path_to_error::deserialize(Value::Object(params)).map_err(|err| {
        let message = err.inner().to_string();
        let path = err.path().to_string();
        let field = if path.is_empty() || path == "." {
            backticked(&message).unwrap_or_else(|| "params".to_string())
        } else if message.starts_with("unknown field") {
            // Inside a nested struct the path already ends with the unknown field.
            match backticked(&message) {
                Some(f) if path != f && !path.ends_with(&format!(".{f}")) => format!("{path}.{f}"),
                _ => path,
            }
        } else {
            path
        };
        Error::Validation {
            field,
            reason: message,
        }
    })
}

fn backticked(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_string())
}

/// All actions, in registration order, with lookups by id and by route.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    actions: Vec<Action>,
    /// Action id → its place in `actions` (every request looks its action up; foldhash, as
    /// the ids are ours and a lookup of a caller's name never inserts it).
    by_id: foldhash::HashMap<String, usize>,
}

impl Catalog {
    /// The actions OpsIQ ships with.
    pub fn builtin() -> Self {
        let mut catalog = Catalog::default();
        for action in crate::contacts::actions()
            .into_iter()
            .chain(crate::tickets::actions())
            .chain(crate::chats::actions())
            .chain(crate::analytics::actions())
            .chain(crate::kb::actions())
            .chain(crate::proactive::actions())
            .chain(crate::webhooks::actions())
            .chain(crate::meta::actions())
        {
            catalog
                .register(action)
                .expect("built-in actions are unique");
        }
        catalog
    }

    /// Adds an action; its id and each of its routes must be new.
    pub fn register(&mut self, action: Action) -> Result<()> {
        if self.get(&action.id).is_some() {
            return Err(Error::validation(
                "id",
                format!("action `{}` is already registered", action.id),
            ));
        }
        for route in &action.routes {
            if self
                .actions
                .iter()
                .flat_map(|a| &a.routes)
                .any(|r| r == route)
            {
                return Err(Error::validation(
                    "route",
                    format!("{} {} is already bound", route.method, route.path),
                ));
            }
        }
        self.by_id.insert(action.id.clone(), self.actions.len());
        self.actions.push(action);
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<&Action> {
        self.by_id.get(id).map(|&i| &self.actions[i])
    }

    pub fn actions(&self) -> &[Action] {
        &self.actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_templates_bind_named_segments() {
        let route = Route {
            method: Method::Get,
            path: "/api/v1/tickets/{id}".into(),
        };
        assert_eq!(route.path_params().collect::<Vec<_>>(), vec!["id"]);
    }

    #[test]
    fn builtin_catalog_binds_every_route_of_the_public_docs() {
        let catalog = Catalog::builtin();
        let bound: Vec<String> = catalog
            .actions()
            .iter()
            .flat_map(|a| a.routes.iter().map(|r| format!("{} {}", r.method, r.path)))
            .collect();
        let documented = [
            "GET /api/v1/contacts",
            "POST /api/v1/contacts",
            "GET /api/v1/contacts/{id}",
            "PATCH /api/v1/contacts/{id}",
            "POST /api/v1/contacts/{id}/tags",
            "POST /api/v1/contacts/{id}/notes",
            "GET /api/v1/tickets",
            "POST /api/v1/tickets",
            "GET /api/v1/tickets/{id}",
            "PATCH /api/v1/tickets/{id}",
            "GET /api/v1/chats",
            "GET /api/v1/chats/{id}",
            "GET /api/v1/analytics/summary",
            "POST /api/v1/proactive/trigger",
            "POST /api/v1/kb/articles",
            "PATCH /api/v1/kb/articles/{id}",
        ];
        for route in documented {
            assert!(
                bound.iter().any(|b| b == route),
                "{route} is not bound; bound: {bound:?}"
            );
        }
    }
}
