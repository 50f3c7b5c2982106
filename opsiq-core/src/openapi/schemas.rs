//! The JSON Schemas of the OpenAPI document: the catalog's schemars types and the webhook
//! events' `data` generated into `components/schemas` (inputs as they deserialize, outputs and
//! events as they serialize, shared where the two agree), `#/$defs/` references rewritten to point
//! there, and the reading of an input schema that turns it into parameters and a request body.

use std::collections::{HashMap, HashSet};

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::catalog::Catalog;
use crate::events::EventType;
use crate::types::Timestamp;

/// Every schema of the document: the components, per action its input and output schemas, and
/// the parts of the webhook payloads (usually `$ref`s into the components).
pub(super) struct Schemas {
    pub(super) components: Map<String, Value>,
    pub(super) actions: Vec<ActionSchemas>,
    pub(super) events: EventSchemas,
}

pub(super) struct ActionSchemas {
    pub(super) input: Value,
    pub(super) output: Value,
}

/// The generated parts of the webhook payloads, which are written like responses.
pub(super) struct EventSchemas {
    /// Each event type's `data`, in `EventType::ALL` order.
    pub(super) data: Vec<(EventType, Value)>,
    /// The payloads' `created_at`.
    pub(super) created_at: Value,
}

impl Schemas {
    /// Generates every schema of the catalog into `components`, which holds the hand-made
    /// schemas (their names are taken first).
    pub(super) fn generate(catalog: &Catalog, mut components: Map<String, Value>) -> Self {
        // Inputs are described as they are read and outputs as they are written: a field that
        // is always written is required in a response even when a request may leave it out.
        let mut inputs = SchemaSettings::draft2020_12()
            .for_deserialize()
            .into_generator();
        let mut outputs = SchemaSettings::draft2020_12()
            .for_serialize()
            .into_generator();
        let raw: Vec<(Value, Value)> = catalog
            .actions()
            .iter()
            .map(|a| {
                (
                    (a.input_schema)(&mut inputs).to_value(),
                    (a.output_schema)(&mut outputs).to_value(),
                )
            })
            .collect();
        let mut event_data: Vec<(EventType, Value)> = EventType::ALL
            .into_iter()
            .map(|event| (event, event.data_schema(&mut outputs).to_value()))
            .collect();
        let mut created_at = outputs.subschema_for::<Timestamp>().to_value();
        let input_defs = inputs.take_definitions(true);
        let output_defs = outputs.take_definitions(true);

        let input_names = place(&mut components, &input_defs, &Map::new(), &HashMap::new());
        let output_names = place(&mut components, &output_defs, &input_defs, &input_names);

        let actions = raw
            .into_iter()
            .map(|(mut input, mut output)| {
                rewrite_refs(&mut input, &input_names);
                rewrite_refs(&mut output, &output_names);
                ActionSchemas { input, output }
            })
            .collect();
        for (_, data) in &mut event_data {
            rewrite_refs(data, &output_names);
        }
        rewrite_refs(&mut created_at, &output_names);
        Schemas {
            components,
            actions,
            events: EventSchemas {
                data: event_data,
                created_at,
            },
        }
    }
}

/// Moves one generator's definitions into `components` and returns the component name of each.
/// A definition identical to one of `earlier`'s (and referring only to such definitions) shares
/// its component; any other gets a name of its own.
fn place(
    components: &mut Map<String, Value>,
    defs: &Map<String, Value>,
    earlier: &Map<String, Value>,
    earlier_names: &HashMap<String, String>,
) -> HashMap<String, String> {
    let mut shared: HashSet<&str> = defs
        .iter()
        .filter(|(name, schema)| earlier.get(name.as_str()) == Some(schema))
        .map(|(name, _)| name.as_str())
        .collect();
    loop {
        let unshareable: Vec<&str> = shared
            .iter()
            .copied()
            .filter(|name| {
                def_refs(&defs[*name])
                    .iter()
                    .any(|r| defs.contains_key(r) && !shared.contains(r.as_str()))
            })
            .collect();
        if unshareable.is_empty() {
            break;
        }
        for name in unshareable {
            shared.remove(name);
        }
    }

    let mut names = HashMap::new();
    for name in defs.keys() {
        let component = match earlier_names.get(name) {
            Some(earlier) if shared.contains(name.as_str()) => earlier.clone(),
            _ => {
                let component = unique_component_name(components, name);
                // Reserve the name now; the schema is filled in once every name is known.
                components.insert(component.clone(), Value::Null);
                component
            }
        };
        names.insert(name.clone(), component);
    }
    for (name, schema) in defs {
        if shared.contains(name.as_str()) && earlier_names.contains_key(name) {
            continue;
        }
        let mut schema = schema.clone();
        rewrite_refs(&mut schema, &names);
        components.insert(names[name].clone(), schema);
    }
    names
}

/// A component name (`[A-Za-z0-9._-]+`, as OpenAPI requires) not yet taken.
fn unique_component_name(components: &Map<String, Value>, name: &str) -> String {
    let base: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !components.contains_key(&base) {
        return base;
    }
    (2..)
        .map(|i| format!("{base}{i}"))
        .find(|candidate| !components.contains_key(candidate))
        .expect("some suffix is free")
}

/// The definition names a generated schema refers to (`#/$defs/<name>`).
fn def_refs(schema: &Value) -> Vec<String> {
    let mut refs = Vec::new();
    walk_refs(schema, &mut |r| {
        if let Some(name) = r.strip_prefix("#/$defs/") {
            refs.push(decode_pointer_segment(name));
        }
    });
    refs
}

pub(super) fn walk_refs(value: &Value, f: &mut impl FnMut(&str)) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                f(r);
            }
            map.values().for_each(|v| walk_refs(v, f));
        }
        Value::Array(items) => items.iter().for_each(|v| walk_refs(v, f)),
        _ => {}
    }
}

/// Points every `#/$defs/<name>` reference at its component, `#/components/schemas/<component>`.
fn rewrite_refs(value: &mut Value, names: &HashMap<String, String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get_mut("$ref")
                && let Some(name) = r.strip_prefix("#/$defs/")
                && let Some(component) = names.get(&decode_pointer_segment(name))
            {
                *r = schema_ref(component);
            }
            map.values_mut().for_each(|v| rewrite_refs(v, names));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite_refs(v, names)),
        _ => {}
    }
}

/// Undoes schemars' reference encoding: JSON Pointer escapes and URI percent-encoding.
fn decode_pointer_segment(segment: &str) -> String {
    let mut bytes = Vec::with_capacity(segment.len());
    let mut rest = segment.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        let hex = tail
            .get(..2)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(decoded)) => {
                bytes.push(decoded);
                rest = &tail[2..];
            }
            _ => {
                bytes.push(b);
                rest = tail;
            }
        }
    }
    String::from_utf8_lossy(&bytes)
        .replace("~1", "/")
        .replace("~0", "~")
}

pub(super) fn schema_ref(component: &str) -> String {
    format!("#/components/schemas/{component}")
}

/// Drops the `null` alternative of an optional value: `["string", "null"]` becomes `"string"`,
/// `anyOf: [X, {"type": "null"}]` becomes `X` (keeping the schema's other keywords), and a
/// `null` default goes.
pub(super) fn non_null(schema: Value) -> Value {
    let Value::Object(mut map) = schema else {
        return schema;
    };
    if map.get("default") == Some(&Value::Null) {
        map.remove("default");
    }
    if let Some(Value::Array(types)) = map.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            map.insert("type".into(), only);
        }
    }
    for keyword in ["anyOf", "oneOf"] {
        let Some(Value::Array(branches)) = map.get_mut(keyword) else {
            continue;
        };
        branches.retain(|b| b != &json!({"type": "null"}));
        if branches.len() == 1 {
            let only = branches.remove(0);
            map.remove(keyword);
            if let Value::Object(only) = non_null(only) {
                for (k, v) in only {
                    map.entry(k).or_insert(v);
                }
            }
        }
    }
    Value::Object(map)
}

/// An input schema resolved to its object definition.
pub(super) struct ObjectSchema<'a> {
    schema: Option<&'a Map<String, Value>>,
}

/// A request body: its schema and whether it must be sent.
pub(super) struct Body {
    pub(super) schema: Value,
    pub(super) required: bool,
}

impl<'a> ObjectSchema<'a> {
    pub(super) fn resolve(schema: &'a Value, components: &'a Map<String, Value>) -> Self {
        let target = schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
            .and_then(|name| components.get(name))
            .unwrap_or(schema);
        ObjectSchema {
            schema: target.as_object(),
        }
    }

    pub(super) fn properties(&self) -> impl Iterator<Item = (&'a str, &'a Value)> {
        self.schema
            .and_then(|s| s.get("properties"))
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v))
    }

    pub(super) fn property(&self, name: &str) -> Option<&'a Value> {
        self.properties().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    fn required(&self) -> impl Iterator<Item = &'a str> {
        self.schema
            .and_then(|s| s.get("required"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
    }

    pub(super) fn is_required(&self, name: &str) -> bool {
        self.required().any(|r| r == name)
    }

    /// Whether `{}` plus the `given` properties (path parameters) is a valid input. Any
    /// combinator or property count at the top counts as a demand for more.
    pub(super) fn accepts_empty(&self, given: &[&str]) -> bool {
        self.schema.is_some_and(|schema| {
            !self.required().any(|r| !given.contains(&r))
                && !["anyOf", "oneOf", "allOf", "not", "if", "minProperties"]
                    .iter()
                    .any(|k| schema.contains_key(*k))
        })
    }

    /// The body of a route: the input without the path parameters (the path supplies them).
    /// `None` when nothing is left to send.
    pub(super) fn body_without(&self, original: &Value, path_params: &[&str]) -> Option<Body> {
        let Some(object) = self.schema else {
            return Some(Body {
                schema: original.clone(),
                required: true,
            });
        };
        let required = !self.accepts_empty(path_params);
        if self
            .properties()
            .all(|(name, _)| path_params.contains(&name))
        {
            return None;
        }
        if path_params.iter().all(|p| self.property(p).is_none()) {
            return Some(Body {
                schema: original.clone(),
                required,
            });
        }
        let mut object = object.clone();
        if let Some(Value::Object(properties)) = object.get_mut("properties") {
            properties.retain(|name, _| !path_params.contains(&name.as_str()));
        }
        if let Some(Value::Array(names)) = object.get_mut("required") {
            names.retain(|n| !n.as_str().is_some_and(|n| path_params.contains(&n)));
            if names.is_empty() {
                object.remove("required");
            }
        }
        Some(Body {
            schema: Value::Object(object),
            required,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_parameters_drop_null() {
        assert_eq!(
            non_null(json!({"type": ["string", "null"], "description": "d"})),
            json!({"type": "string", "description": "d"})
        );
        assert_eq!(
            non_null(json!({"anyOf": [{"$ref": "#/x"}, {"type": "null"}], "description": "d"})),
            json!({"description": "d", "$ref": "#/x"})
        );
    }

    #[test]
    fn a_body_or_params_are_required_when_the_input_demands_more_than_the_path_gives() {
        let components = Map::new();
        let check = |schema: Value, given: &[&str]| {
            ObjectSchema::resolve(&schema, &components).accepts_empty(given)
        };
        let update =
            json!({"type": "object", "required": ["id"], "properties": {"id": {}, "a": {}}});
        assert!(check(update.clone(), &["id"]));
        assert!(!check(update, &[]));
        let at_least_one = json!({
            "type": "object",
            "properties": {"a": {}, "b": {}},
            "anyOf": [{"required": ["a"]}, {"required": ["b"]}],
        });
        assert!(!check(at_least_one, &[]));
        assert!(check(json!({"type": "object", "properties": {}}), &[]));
    }

    #[test]
    fn reference_names_are_decoded() {
        assert_eq!(decode_pointer_segment("A~1B%3Cc%3E~0"), "A/B<c>~");
    }
}
