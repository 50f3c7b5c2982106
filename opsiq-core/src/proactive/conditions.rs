//! The condition evaluator: pure functions over an event's JSON properties.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::{Condition, Op};

impl Condition {
    /// Whether the condition holds for an event's properties. A missing property matches only
    /// nothing (not even `ne`), and neither does a type mismatch: numbers compare numerically,
    /// strings lexically, `contains` looks into strings and arrays.
    pub fn matches(&self, properties: &Map<String, Value>) -> bool {
        let Some(actual) = lookup(properties, &self.property) else {
            return false;
        };
        let expected = self.value.as_ref().unwrap_or(&Value::Null);
        match self.op {
            Op::Exists => !actual.is_null(),
            Op::Eq => equal(actual, expected) == Some(true),
            Op::Ne => equal(actual, expected) == Some(false),
            Op::Gt => order(actual, expected) == Some(Ordering::Greater),
            Op::Gte => order(actual, expected).is_some_and(Ordering::is_ge),
            Op::Lt => order(actual, expected) == Some(Ordering::Less),
            Op::Lte => order(actual, expected).is_some_and(Ordering::is_le),
            Op::Contains => match (actual, expected) {
                (Value::String(s), Value::String(part)) => s.contains(part.as_str()),
                (Value::Array(items), wanted) => {
                    items.iter().any(|item| equal(item, wanted) == Some(true))
                }
                _ => false,
            },
        }
    }
}

/// Whether every condition holds (a rule without conditions matches every event).
pub fn conditions_hold(conditions: &[Condition], properties: &Map<String, Value>) -> bool {
    conditions.iter().all(|c| c.matches(properties))
}

/// Reads a property by dotted path: `cart.total` is `{"cart":{"total":..}}`, and a numeric
/// segment indexes an array (`items.0.sku`).
pub fn lookup<'a>(properties: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut segments = path.split('.');
    let mut current = properties.get(segments.next()?)?;
    for segment in segments {
        current = match current {
            Value::Object(map) => map.get(segment)?,
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}

/// Equality of two values of the same JSON type (numbers numerically); `None` when the types
/// differ.
fn equal(a: &Value, b: &Value) -> Option<bool> {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => order(a, b).map(Ordering::is_eq),
        (Value::String(x), Value::String(y)) => Some(x == y),
        (Value::Bool(x), Value::Bool(y)) => Some(x == y),
        (Value::Null, Value::Null) => Some(true),
        (Value::Array(_), Value::Array(_)) | (Value::Object(_), Value::Object(_)) => Some(a == b),
        _ => None,
    }
}

/// The order of two numbers or two strings; `None` for anything else.
fn order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => Some(x.cmp(&y)),
            _ => x.as_f64()?.partial_cmp(&y.as_f64()?),
        },
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn props() -> Map<String, Value> {
        match json!({
            "cart_total": 129.50,
            "items": 3,
            "currency": "USD",
            "plan": null,
            "returning": true,
            "skus": ["A-1", "B-2", 7],
            "cart": {"total": 129.5, "coupon": {"code": "SPRING"}},
            "lines": [{"sku": "A-1", "qty": 2}]
        }) {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    /// `check(property, op, value, expected)`: one condition against [`props`].
    #[track_caller]
    fn check(property: &str, op: Op, value: Option<Value>, expected: bool) {
        let condition = Condition {
            property: property.to_string(),
            op,
            value: value.clone(),
        };
        assert_eq!(
            condition.matches(&props()),
            expected,
            "{property} {op} {value:?}"
        );
    }

    #[test]
    fn eq_and_ne_compare_numbers_numerically_and_refuse_type_mismatches() {
        check("cart_total", Op::Eq, Some(json!(129.5)), true);
        check("items", Op::Eq, Some(json!(3.0)), true);
        check("currency", Op::Eq, Some(json!("USD")), true);
        check("currency", Op::Eq, Some(json!("usd")), false);
        check("returning", Op::Eq, Some(json!(true)), true);
        check("skus", Op::Eq, Some(json!(["A-1", "B-2", 7])), true);
        check("currency", Op::Ne, Some(json!("EUR")), true);
        check("currency", Op::Ne, Some(json!("USD")), false);
        check("items", Op::Eq, Some(json!("3")), false);
        check("items", Op::Ne, Some(json!("3")), false);
        check("missing", Op::Ne, Some(json!("x")), false);
    }

    #[test]
    fn ordering_ops_compare_numbers_and_strings() {
        check("cart_total", Op::Gt, Some(json!(100)), true);
        check("cart_total", Op::Gt, Some(json!(129.5)), false);
        check("cart_total", Op::Gte, Some(json!(129.5)), true);
        check("cart_total", Op::Lt, Some(json!(200)), true);
        check("cart_total", Op::Lte, Some(json!(129.5)), true);
        check("cart_total", Op::Lte, Some(json!(129)), false);
        check("items", Op::Gt, Some(json!(2)), true);
        check("currency", Op::Gt, Some(json!("EUR")), true);
        check("currency", Op::Lt, Some(json!("EUR")), false);
        check("currency", Op::Gte, Some(json!("USD")), true);
    }

    #[test]
    fn ordering_ops_do_not_match_across_types() {
        check("cart_total", Op::Gt, Some(json!("100")), false);
        check("currency", Op::Lt, Some(json!(5)), false);
        check("returning", Op::Gt, Some(json!(0)), false);
        check("skus", Op::Gte, Some(json!(1)), false);
        check("plan", Op::Lt, Some(json!(1)), false);
    }

    #[test]
    fn contains_looks_into_strings_and_arrays() {
        check("currency", Op::Contains, Some(json!("SD")), true);
        check("currency", Op::Contains, Some(json!("sd")), false);
        check("skus", Op::Contains, Some(json!("B-2")), true);
        check("skus", Op::Contains, Some(json!(7.0)), true);
        check("skus", Op::Contains, Some(json!("C-3")), false);
        check("cart_total", Op::Contains, Some(json!(1)), false);
        check("currency", Op::Contains, Some(json!(5)), false);
    }

    #[test]
    fn exists_needs_a_non_null_property() {
        check("currency", Op::Exists, None, true);
        check("cart.coupon", Op::Exists, None, true);
        check("plan", Op::Exists, None, false);
        check("missing", Op::Exists, None, false);
    }

    #[test]
    fn dotted_paths_read_nested_objects_and_array_indexes() {
        check("cart.total", Op::Gt, Some(json!(100)), true);
        check("cart.coupon.code", Op::Eq, Some(json!("SPRING")), true);
        check("lines.0.qty", Op::Gte, Some(json!(2)), true);
        check("lines.1.qty", Op::Exists, None, false);
        check("cart.total.value", Op::Exists, None, false);
        check("currency.code", Op::Exists, None, false);
        check("lines.first.sku", Op::Exists, None, false);
    }

    #[test]
    fn a_rule_without_conditions_matches_and_all_conditions_must_hold() {
        let gt = |v: i64| Condition {
            property: "cart_total".into(),
            op: Op::Gt,
            value: Some(json!(v)),
        };
        assert!(conditions_hold(&[], &props()));
        assert!(conditions_hold(&[gt(100), gt(50)], &props()));
        assert!(!conditions_hold(&[gt(100), gt(500)], &props()));
    }
}
