//! The OpenAPI 3.1 document of the public API, generated from the action catalog.
//!
//! Every route of every action becomes an operation: path parameters from the route template,
//! query parameters (GET) or a JSON body (other methods) from the action's input schema, and the
//! envelope around its output schema. The action endpoint's body is the union of every action's
//! `{action, params}`. Every event type becomes a webhook (`webhooks.rs`). Schemas come from
//! schemars (inputs as they deserialize, outputs and events as they serialize) and live under
//! `components/schemas`; nothing here describes one operation by hand.

mod schemas;
mod webhooks;

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use crate::api::MAX_BODY_BYTES;
use crate::catalog::{Action, Catalog, Method, Route};
use schemas::{ActionSchemas, ObjectSchema, Schemas, non_null, schema_ref};

/// Where the server publishes this document (no key needed).
pub const DOCUMENT_PATHS: [&str; 2] = ["/api/v1/openapi.php", "/api/v1/openapi.json"];
/// The action endpoint: `POST {"action": "<id>", "params": {...}}`.
pub const ACTION_PATHS: [&str; 2] = ["/v1.php", "/api/v1.php"];
/// The server's liveness probe (no key needed).
pub const HEALTH_PATH: &str = "/healthz";
/// The readiness probe.
pub const READY_PATH: &str = "/readyz";

/// The documented error statuses of an API operation, with their `components/responses` names.
/// 500 is never documented: it is a bug, not part of the contract.
const ERROR_RESPONSES: [(u16, &str, &str); 10] = [
    (
        400,
        "BadRequest",
        "The body is not JSON or a parameter is invalid (`invalid_json`, `invalid_parameter:<name>`).",
    ),
    (
        401,
        "Unauthorized",
        "The bearer token is missing, malformed, unknown, rotated or revoked (`unauthorized`).",
    ),
    (
        403,
        "Forbidden",
        "The API key lacks the required scope (`scope_required:<scope>`) or its permissions block the action.",
    ),
    (
        404,
        "NotFound",
        "No such route, action or resource in the key's workspace (`route_not_found`, `action_not_found`, `not_found:<resource>`).",
    ),
    (
        405,
        "MethodNotAllowed",
        "The path exists, but not for this method (`method_not_allowed`); `Allow` lists its methods.",
    ),
    (
        409,
        "Conflict",
        "A request with the same `Idempotency-Key` is still running, or its answer was lost (`idempotency_key_in_use`).",
    ),
    (
        413,
        "PayloadTooLarge",
        "The request body is larger than the server accepts (`payload_too_large`).",
    ),
    (
        422,
        "ValidationFailed",
        "A field is missing, of the wrong type or invalid; `field` names it (`validation_failed:<field>`).",
    ),
    (
        429,
        "TooManyRequests",
        "The API key is over its rate limit (`rate_limited`); `Retry-After` says when to try again.",
    ),
    (
        503,
        "ServiceUnavailable",
        "A required service (the database) cannot serve right now (`service_unavailable`).",
    ),
];

/// Names of the hand-made components, which generated schemas must not take.
const ERROR_SCHEMA: &str = "Error";
const REQUEST_ID_SCHEMA: &str = "RequestId";
const REQUEST_ID_HEADER: &str = "X-Request-Id";

/// The OpenAPI 3.1 document of every action in `catalog`, plus the action endpoint, `/healthz`,
/// the document's own paths and a webhook per event type.
pub fn document(catalog: &Catalog) -> Value {
    let mut hand_made = Map::new();
    hand_made.insert(ERROR_SCHEMA.into(), error_schema());
    hand_made.insert(REQUEST_ID_SCHEMA.into(), request_id_schema());
    let schemas = Schemas::generate(catalog, hand_made);
    let mut paths = Map::new();
    let mut operation_ids = HashSet::new();
    for (action, io) in catalog.actions().iter().zip(&schemas.actions) {
        for route in &action.routes {
            let id = unique_operation_id(&mut operation_ids, action, route);
            let op = route_operation(action, route, id, io, &schemas.components);
            add_operation(&mut paths, &route.path, route.method.as_str(), op);
        }
    }
    if !catalog.actions().is_empty() {
        for (i, path) in ACTION_PATHS.into_iter().enumerate() {
            let id = if i == 0 { "action" } else { "action.api" };
            let op = action_endpoint(catalog, id, &schemas);
            add_operation(&mut paths, path, "POST", op);
        }
    }
    add_idempotency_header(&mut paths);
    add_operation(&mut paths, HEALTH_PATH, "GET", health_operation());
    add_operation(&mut paths, READY_PATH, "GET", ready_operation());
    for (i, path) in DOCUMENT_PATHS.into_iter().enumerate() {
        let id = if i == 0 { "openapi" } else { "openapi.json" };
        add_operation(&mut paths, path, "GET", document_operation(id));
    }
    let webhooks = webhooks::webhooks(&schemas.events, &mut operation_ids);

    let mut tags: Vec<String> = Vec::new();
    for action in catalog.actions() {
        let tag = tag_of(action).to_string();
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    let tags: Vec<Value> = tags
        .into_iter()
        .map(|name| json!({"name": name}))
        .chain([
            json!({"name": "actions", "description": "The action endpoint: any catalog action by id."}),
            json!({"name": "system", "description": "Health and this contract; no key needed."}),
        ])
        .collect();

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "OpsIQ API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The public API of OpsIQ, generated from its action catalog. Send an API key as \
                `Authorization: Bearer opq_...`; every response is a JSON envelope carrying a \
                `request_id`, also sent as the `X-Request-Id` header. The `webhooks` are the \
                events OpsIQ sends to subscribed endpoints, signed per Standard Webhooks.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "tags": tags,
        "paths": paths,
        "webhooks": webhooks,
        "components": {
            "schemas": schemas.components,
            "responses": error_responses(),
            "headers": {
                REQUEST_ID_HEADER: {
                    "description": "The request's id, the same as the body's `request_id`.",
                    "required": true,
                    "schema": {"$ref": schema_ref(REQUEST_ID_SCHEMA)},
                },
            },
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "opq_ followed by 40 letters and digits",
                    "description": "An OpsIQ API key. Each action needs the scope its description names.",
                },
            },
        },
    })
}
/// The first route of an action is named after the action; further routes add their method
/// (`tickets.update.put`), and a number if that is taken too.
fn unique_operation_id(taken: &mut HashSet<String>, action: &Action, route: &Route) -> String {
    let method = route.method.as_str().to_ascii_lowercase();
    let candidates = [action.id.clone(), format!("{}.{method}", action.id)]
        .into_iter()
        .chain((2..).map(|i| format!("{}.{method}{i}", action.id)));
    take_operation_id(taken, candidates)
}

/// Takes the first of `candidates` (an endless list) that no operation has yet.
fn take_operation_id(
    taken: &mut HashSet<String>,
    candidates: impl IntoIterator<Item = String>,
) -> String {
    let id = candidates
        .into_iter()
        .find(|id| !taken.contains(id))
        .expect("some suffix is free");
    taken.insert(id.clone());
    id
}

fn tag_of(action: &Action) -> &str {
    action.id.split('.').next().unwrap_or(&action.id)
}

/// Every POST takes an optional `Idempotency-Key` header.
fn add_idempotency_header(paths: &mut Map<String, Value>) {
    let header = json!({
        "name": "Idempotency-Key",
        "in": "header",
        "required": false,
        "description": "Makes the POST safe to retry: a retry with the same key and the same request gets the \
                        first answer again (with `Idempotent-Replayed: true`) and changes nothing; the same key for \
                        a different request is 422 `idempotency_key_reused`; while the first is still running, 409 \
                        `idempotency_key_in_use`. Keys are kept for 24 hours, per API key.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\u0020-\\u007e]+$"},
    });
    for item in paths.values_mut() {
        if let Some(post) = item.get_mut("post").and_then(Value::as_object_mut) {
            let parameters = post.entry("parameters").or_insert_with(|| json!([]));
            if let Some(list) = parameters.as_array_mut() {
                list.push(header.clone());
            }
        }
    }
}

fn add_operation(paths: &mut Map<String, Value>, path: &str, method: &str, operation: Value) {
    let item = paths
        .entry(path.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(item) = item {
        item.insert(method.to_ascii_lowercase(), operation);
    }
}

fn scope_sentence(action: &Action) -> String {
    match action.scope {
        Some(scope) => format!("Required scope: `{scope}`."),
        None => "Required scope: none; any valid API key may call it.".to_string(),
    }
}

/// The operation of one REST route of an action.
fn route_operation(
    action: &Action,
    route: &Route,
    operation_id: String,
    io: &ActionSchemas,
    components: &Map<String, Value>,
) -> Value {
    let input = ObjectSchema::resolve(&io.input, components);
    let path_params: Vec<&str> = route.path_params().collect();
    let mut parameters: Vec<Value> = path_params
        .iter()
        .map(|name| parameter(name, "path", true, input.property(name)))
        .collect();
    let mut request_body = None;
    if route.method == Method::Get {
        parameters.extend(
            input
                .properties()
                .filter(|(name, _)| !path_params.contains(name))
                .map(|(name, schema)| {
                    let mut query = parameter(name, "query", input.is_required(name), Some(schema));
                    // `?status=&limit=` is the same as leaving them out.
                    if !input.is_required(name) {
                        query["allowEmptyValue"] = Value::Bool(true);
                    }
                    query
                }),
        );
    } else {
        request_body = input.body_without(&io.input, &path_params).map(|schema| {
            let mut media = json!({"schema": schema.schema});
            if let Some(example) = &action.example {
                media["example"] = example.clone();
            }
            json!({"required": schema.required, "content": {"application/json": media}})
        });
    }

    let description = [action.description.as_str(), &scope_sentence(action)]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
    let mut responses = Map::new();
    responses.insert(
        action.success_status.to_string(),
        json_response(
            success_description(action.success_status),
            envelope(io.output.clone(), action.paged),
        ),
    );
    add_error_responses(&mut responses);

    let mut operation = json!({
        "operationId": operation_id,
        "summary": action.summary,
        "description": description,
        "tags": [tag_of(action)],
        "x-action-id": action.id,
        "x-required-scope": action.scope.map(|s| s.as_str()),
    });
    if !parameters.is_empty() {
        operation["parameters"] = Value::Array(parameters);
    }
    if let Some(body) = request_body {
        operation["requestBody"] = body;
    }
    operation["responses"] = Value::Object(responses);
    operation
}

/// `POST /v1.php`: any action by id, its input as `params`.
fn action_endpoint(catalog: &Catalog, operation_id: &str, schemas: &Schemas) -> Value {
    let variants: Vec<Value> = catalog
        .actions()
        .iter()
        .zip(&schemas.actions)
        .map(|(action, io)| {
            // Absent and `null` params are both no params, which only some inputs accept.
            let input = ObjectSchema::resolve(&io.input, &schemas.components);
            let (required, params) = if !input.accepts_empty(&[]) {
                (vec!["action", "params"], io.input.clone())
            } else {
                (
                    vec!["action"],
                    json!({"anyOf": [io.input, {"type": "null"}]}),
                )
            };
            json!({
                "title": action.id,
                "type": "object",
                "required": required,
                "properties": {
                    "action": {"const": action.id},
                    "params": params,
                },
                "additionalProperties": false,
            })
        })
        .collect();

    // One success response per status the actions answer with, holding each distinct envelope.
    let mut by_status: Vec<(u16, Vec<Value>)> = Vec::new();
    for (action, io) in catalog.actions().iter().zip(&schemas.actions) {
        let envelope = envelope(io.output.clone(), action.paged);
        match by_status
            .iter_mut()
            .find(|(s, _)| *s == action.success_status)
        {
            Some((_, envelopes)) if envelopes.contains(&envelope) => {}
            Some((_, envelopes)) => envelopes.push(envelope),
            None => by_status.push((action.success_status, vec![envelope])),
        }
    }
    by_status.sort_by_key(|(status, _)| *status);
    let mut responses = Map::new();
    for (status, envelopes) in by_status {
        let schema = if envelopes.len() == 1 {
            envelopes.into_iter().next().unwrap_or_default()
        } else {
            json!({"anyOf": envelopes})
        };
        responses.insert(
            status.to_string(),
            json_response(success_description(status), schema),
        );
    }
    add_error_responses(&mut responses);

    let list: String = catalog
        .actions()
        .iter()
        .map(|a| {
            let scope = a
                .scope
                .map_or_else(|| "none".to_string(), |s| format!("`{s}`"));
            format!("\n- `{}` (scope {scope}): {}", a.id, a.summary)
        })
        .collect();
    json!({
        "operationId": operation_id,
        "summary": "Run any catalog action by id.",
        "description": format!(
            "The body names an action and its parameters, `{{\"action\": \"<id>\", \"params\": {{...}}}}`; \
             the answer is the same envelope as the action's REST route. An unknown action is 404 \
             `action_not_found`. The key needs the action's own scope.\n\nActions:{list}"
        ),
        "tags": ["actions"],
        "requestBody": {
            "required": true,
            "content": {"application/json": {"schema": {"oneOf": variants}}},
        },
        "responses": responses,
    })
}

fn health_operation() -> Value {
    json!({
        "operationId": "health",
        "summary": "Liveness probe.",
        "description": "Answers while the server accepts requests. No key needed.",
        "tags": ["system"],
        "security": [],
        "responses": {
            "200": json_response("The server is up.", json!({
                "type": "object",
                "required": ["status"],
                "properties": {"status": {"const": "ok"}},
                "additionalProperties": false,
            })),
        },
    })
}

fn ready_operation() -> Value {
    let check =
        json!({"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}});
    let report = json!({
        "type": "object",
        "required": ["status", "checks"],
        "properties": {
            "status": {"enum": ["ready", "unavailable"]},
            "checks": {
                "type": "object",
                "required": ["database", "migrations", "webhook_worker"],
                "properties": {"database": check, "migrations": check, "webhook_worker": check},
            },
        },
    });
    json!({
        "operationId": "ready",
        "summary": "Readiness probe.",
        "description": "The database answers a read and commits a write, its schema is current, and the webhook \
                        worker is running. No key needed. Allow more than the store's busy timeout (5 s).",
        "tags": ["system"],
        "security": [],
        "responses": {
            "200": json_response("Ready to serve.", report.clone()),
            "503": json_response("A check failed; `checks` says which.", report),
        },
    })
}

fn document_operation(operation_id: &str) -> Value {
    json!({
        "operationId": operation_id,
        "summary": "This OpenAPI 3.1 document.",
        "description": "Generated from the action catalog. No key needed.",
        "tags": ["system"],
        "security": [],
        "responses": {
            "200": json_response("The OpenAPI document.", json!({
                "type": "object",
                "required": ["openapi", "info", "paths", "components"],
                "properties": {
                    "openapi": {"const": "3.1.0"},
                    "info": {"type": "object"},
                    "paths": {"type": "object"},
                    "components": {"type": "object"},
                },
            })),
        },
    })
}

fn success_description(status: u16) -> &'static str {
    if status == 201 {
        "Created."
    } else {
        "Success."
    }
}

/// A JSON response carrying the `X-Request-Id` header.
fn json_response(description: &str, schema: Value) -> Value {
    json!({
        "description": description,
        "headers": {REQUEST_ID_HEADER: {"$ref": format!("#/components/headers/{REQUEST_ID_HEADER}")}},
        "content": {"application/json": {"schema": schema}},
    })
}

/// The success envelope around `data`; lists add `next_cursor`.
fn envelope(data: Value, paged: bool) -> Value {
    let mut properties = Map::new();
    properties.insert("success".into(), json!({"const": true}));
    properties.insert("data".into(), data);
    let mut required = vec!["success", "data"];
    if paged {
        properties.insert(
            "next_cursor".into(),
            json!({
                "type": ["string", "null"],
                "description": "Pass it back as `cursor` for the next page; `null` on the last page.",
            }),
        );
        required.push("next_cursor");
    }
    properties.insert(
        "request_id".into(),
        json!({"$ref": schema_ref(REQUEST_ID_SCHEMA)}),
    );
    required.push("request_id");
    json!({
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": false,
    })
}

fn error_schema() -> Value {
    json!({
        "description": "The error envelope.",
        "type": "object",
        "required": ["success", "error", "message", "request_id"],
        "properties": {
            "success": {"const": false},
            "error": {
                "type": "string",
                "description": "A machine-readable code, `<code>[:<detail>]` (`scope_required:tickets.write`).",
            },
            "message": {"type": "string", "description": "What is wrong, for people."},
            "field": {
                "type": "string",
                "description": "The field or parameter at fault (400 `invalid_parameter`, 422 `validation_failed`).",
            },
            "request_id": {"$ref": schema_ref(REQUEST_ID_SCHEMA)},
        },
        "additionalProperties": false,
    })
}

fn request_id_schema() -> Value {
    json!({
        "description": "The id of one API request; quote it to OpsIQ support.",
        "type": "string",
        "pattern": "^req_[0-9A-Za-z]{24}$",
    })
}

/// `components/responses`: one per documented error status.
fn error_responses() -> Map<String, Value> {
    ERROR_RESPONSES
        .iter()
        .map(|(status, name, description)| {
            let description = if *status == 413 {
                format!("{description} The limit is {MAX_BODY_BYTES} bytes.")
            } else {
                description.to_string()
            };
            let mut response =
                json_response(&description, json!({"$ref": schema_ref(ERROR_SCHEMA)}));
            if *status == 405 {
                response["headers"]["Allow"] = json!({
                    "description": "The methods the path accepts.",
                    "required": true,
                    "schema": {"type": "string"},
                });
            }
            if *status == 429 {
                response["headers"]["Retry-After"] = json!({
                    "description": "Seconds until the key may make another request.",
                    "required": true,
                    "schema": {"type": "integer", "minimum": 1},
                });
            }
            (name.to_string(), response)
        })
        .collect()
}

fn add_error_responses(responses: &mut Map<String, Value>) {
    for (status, name, _) in ERROR_RESPONSES {
        responses.insert(
            status.to_string(),
            json!({"$ref": format!("#/components/responses/{name}")}),
        );
    }
}

/// A parameter: its schema is the input property's, without `null` (a parameter that is not
/// sent is absent, never null) and with its description lifted to the parameter.
fn parameter(name: &str, location: &str, required: bool, schema: Option<&Value>) -> Value {
    let mut schema = schema
        .cloned()
        .map_or_else(|| json!({"type": "string"}), non_null);
    let description = schema.as_object_mut().and_then(|s| s.remove("description"));
    let mut parameter =
        json!({"name": name, "in": location, "required": required, "schema": schema});
    if let Some(description) = description {
        parameter["description"] = description;
    }
    parameter
}
#[cfg(test)]
mod tests {
    use super::schemas::walk_refs;
    use super::*;

    fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
        doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .iter()
                    .map(move |(method, op)| (path.clone(), method.clone(), op))
            })
            .collect()
    }

    /// Resolves a local reference (`#/a/b`) to the value it points at.
    pub(super) fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
        doc.pointer(reference.strip_prefix('#')?)
    }

    #[test]
    fn every_catalog_route_is_an_operation_with_its_scope() {
        let catalog = Catalog::builtin();
        let doc = document(&catalog);
        for action in catalog.actions() {
            for route in &action.routes {
                let method = route.method.as_str().to_ascii_lowercase();
                let op = &doc["paths"][&route.path][&method];
                assert_eq!(
                    op["x-action-id"],
                    action.id.as_str(),
                    "{method} {}",
                    route.path
                );
                assert_eq!(
                    op["x-required-scope"],
                    json!(action.scope.map(|s| s.as_str()))
                );
                let description = op["description"].as_str().unwrap();
                match action.scope {
                    Some(scope) => assert!(
                        description.contains(&format!("Required scope: `{scope}`")),
                        "{description}"
                    ),
                    None => assert!(description.contains("Required scope: none")),
                }
                for name in route.path_params() {
                    assert!(
                        op["parameters"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|p| p["name"] == name
                                && p["in"] == "path"
                                && p["required"] == true),
                        "{method} {} lacks path parameter {name}",
                        route.path
                    );
                }
                let success = &op["responses"][action.success_status.to_string()];
                assert!(success.is_object(), "{method} {}", route.path);
            }
        }
    }

    #[test]
    fn every_reference_resolves_and_no_defs_are_left() {
        let doc = document(&Catalog::builtin());
        let mut refs = Vec::new();
        walk_refs(&doc, &mut |r| refs.push(r.to_string()));
        assert!(refs.len() > 20, "{refs:?}");
        for reference in refs {
            assert!(!reference.contains("$defs"), "{reference}");
            let target = resolve(&doc, &reference);
            assert!(
                target.is_some_and(|t| !t.is_null()),
                "dangling reference {reference}"
            );
        }
    }

    #[test]
    fn operation_ids_are_unique_and_every_response_carries_the_request_id() {
        let doc = document(&Catalog::builtin());
        let mut ids = HashSet::new();
        for (path, method, op) in operations(&doc) {
            let id = op["operationId"].as_str().unwrap().to_string();
            assert!(ids.insert(id.clone()), "duplicate operationId {id}");
            let responses = op["responses"].as_object().unwrap();
            assert!(!responses.contains_key("500"), "{method} {path}");
            for (status, response) in responses {
                let response = match response.get("$ref").and_then(Value::as_str) {
                    Some(r) => resolve(&doc, r).unwrap(),
                    None => response,
                };
                assert!(
                    response["headers"][REQUEST_ID_HEADER].is_object(),
                    "{method} {path} {status}"
                );
            }
        }
    }

    #[test]
    fn get_inputs_become_query_parameters_and_other_inputs_a_body_without_path_parameters() {
        let doc = document(&Catalog::builtin());
        let list = &doc["paths"]["/api/v1/tickets"]["get"];
        let names: Vec<&str> = list["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                assert_eq!(p["in"], "query");
                p["name"].as_str().unwrap()
            })
            .collect();
        assert!(
            names.contains(&"status") && names.contains(&"limit"),
            "{names:?}"
        );
        let list_envelope = &list["responses"]["200"]["content"]["application/json"]["schema"];
        assert!(
            list_envelope["required"]
                .as_array()
                .unwrap()
                .contains(&json!("next_cursor"))
        );

        let update = &doc["paths"]["/api/v1/tickets/{id}"]["patch"];
        let body = &update["requestBody"]["content"]["application/json"];
        assert!(body["schema"]["properties"]["status"].is_object());
        assert!(body["schema"]["properties"].get("id").is_none());
        assert_eq!(body["example"]["status"], "in_progress");

        let create = &doc["paths"]["/api/v1/tickets"]["post"];
        assert_eq!(create["requestBody"]["required"], true);
        assert!(create["responses"]["201"].is_object());
    }

    #[test]
    fn the_action_endpoint_accepts_every_action() {
        let catalog = Catalog::builtin();
        let doc = document(&catalog);
        for path in ACTION_PATHS {
            let variants = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]
                ["schema"]["oneOf"]
                .as_array()
                .unwrap();
            let ids: Vec<&Value> = variants
                .iter()
                .map(|v| &v["properties"]["action"]["const"])
                .collect();
            for action in catalog.actions() {
                assert!(
                    ids.contains(&&json!(action.id)),
                    "{path} lacks {}",
                    action.id
                );
            }
        }
    }
}
