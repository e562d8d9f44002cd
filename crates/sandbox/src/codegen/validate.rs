//! FastAPI-style request validation: what Codegen answers with 422.

// Handlers reject with a ready `Response` (axum's idiom); it is built once per
// failed request, so boxing it would only add an allocation.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;

use axum::response::Response;
use serde_json::{Map, Value, json};

use super::errors::{Invalid, validation};

/// Parses a JSON object body.
pub fn object_body(bytes: &[u8]) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(validation(vec![
            Invalid::new(
                &["body"],
                "Input should be a valid dictionary or object to extract fields from",
                "model_attributes_type",
            )
            .with_input(other),
        ])),
        Err(e) => Err(validation(vec![Invalid {
            loc: vec![json!("body"), json!(e.column())],
            msg: "JSON decode error".to_owned(),
            kind: "json_invalid",
            input: Some(json!({})),
        }])),
    }
}

/// Collects field problems so one 422 reports them all, like pydantic.
#[derive(Default)]
pub struct BodyCheck {
    errors: Vec<Invalid>,
}

impl BodyCheck {
    pub fn required_str(&mut self, body: &Map<String, Value>, key: &str) -> String {
        match body.get(key) {
            Some(Value::String(s)) => s.clone(),
            None => {
                self.errors.push(
                    Invalid::new(&["body", key], "Field required", "missing")
                        .with_input(json!(body)),
                );
                String::new()
            }
            Some(v) => {
                self.errors.push(
                    Invalid::new(
                        &["body", key],
                        "Input should be a valid string",
                        "string_type",
                    )
                    .with_input(v.clone()),
                );
                String::new()
            }
        }
    }

    pub fn required_int(&mut self, body: &Map<String, Value>, key: &str) -> i64 {
        match body.get(key) {
            None => {
                self.errors.push(
                    Invalid::new(&["body", key], "Field required", "missing")
                        .with_input(json!(body)),
                );
                0
            }
            Some(v) => self.int(key, v).unwrap_or(0),
        }
    }

    pub fn optional_int(&mut self, body: &Map<String, Value>, key: &str) -> Option<i64> {
        match body.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => self.int(key, v),
        }
    }

    fn int(&mut self, key: &str, v: &Value) -> Option<i64> {
        // pydantic (lax mode) accepts integral floats and numeric strings.
        let parsed = match v {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        if parsed.is_none() {
            self.errors.push(
                Invalid::new(
                    &["body", key],
                    "Input should be a valid integer",
                    "int_type",
                )
                .with_input(v.clone()),
            );
        }
        parsed
    }

    pub fn optional_str(&mut self, body: &Map<String, Value>, key: &str) -> Option<String> {
        match body.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => {
                self.errors.push(
                    Invalid::new(
                        &["body", key],
                        "Input should be a valid string",
                        "string_type",
                    )
                    .with_input(v.clone()),
                );
                None
            }
        }
    }

    pub fn optional_enum(
        &mut self,
        body: &Map<String, Value>,
        key: &str,
        allowed: &[&str],
    ) -> Option<String> {
        let value = self.optional_str(body, key)?;
        if allowed.contains(&value.as_str()) {
            return Some(value);
        }
        let expected = allowed
            .iter()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(" or ");
        self.errors.push(
            Invalid::new(
                &["body", key],
                format!("Input should be {expected}"),
                "literal_error",
            )
            .with_input(json!(value)),
        );
        None
    }

    pub fn optional_object(&mut self, body: &Map<String, Value>, key: &str) -> Option<Value> {
        match body.get(key) {
            None | Some(Value::Null) => None,
            Some(v @ Value::Object(_)) => Some(v.clone()),
            Some(v) => {
                self.errors.push(
                    Invalid::new(
                        &["body", key],
                        "Input should be a valid dictionary",
                        "dict_type",
                    )
                    .with_input(v.clone()),
                );
                None
            }
        }
    }

    pub fn optional_str_list(&mut self, body: &Map<String, Value>, key: &str) {
        match body.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if !item.is_string() {
                        self.errors.push(Invalid {
                            loc: vec![json!("body"), json!(key), json!(i)],
                            msg: "Input should be a valid string".to_owned(),
                            kind: "string_type",
                            input: Some(item.clone()),
                        });
                    }
                }
            }
            Some(v) => self.errors.push(
                Invalid::new(&["body", key], "Input should be a valid list", "list_type")
                    .with_input(v.clone()),
            ),
        }
    }

    pub fn push(&mut self, e: Invalid) {
        self.errors.push(e);
    }

    pub fn finish(self) -> Result<(), Response> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(validation(self.errors))
        }
    }
}

/// `skip`/`limit` query parameters (skip ≥ 0, 1 ≤ limit ≤ 100, default 100).
pub fn paging(q: &HashMap<String, String>) -> Result<(u64, u64), Response> {
    let mut errors = Vec::new();
    let mut get = |key: &str, default: i64, min: i64, max: Option<i64>| -> i64 {
        let Some(raw) = q.get(key) else {
            return default;
        };
        match raw.trim().parse::<i64>() {
            Err(_) => {
                errors.push(
                    Invalid::new(
                        &["query", key],
                        "Input should be a valid integer, unable to parse string as an integer",
                        "int_parsing",
                    )
                    .with_input(json!(raw)),
                );
                default
            }
            Ok(v) if v < min => {
                errors.push(
                    Invalid::new(
                        &["query", key],
                        format!("Input should be greater than or equal to {min}"),
                        "greater_than_equal",
                    )
                    .with_input(json!(raw)),
                );
                default
            }
            Ok(v) if max.is_some_and(|m| v > m) => {
                errors.push(
                    Invalid::new(
                        &["query", key],
                        format!(
                            "Input should be less than or equal to {}",
                            max.unwrap_or_default()
                        ),
                        "less_than_equal",
                    )
                    .with_input(json!(raw)),
                );
                default
            }
            Ok(v) => v,
        }
    };
    let skip = get("skip", 0, 0, None);
    let limit = get("limit", 100, 1, Some(100));
    if errors.is_empty() {
        Ok((skip as u64, limit as u64))
    } else {
        Err(validation(errors))
    }
}

/// A pydantic boolean query parameter.
pub fn bool_param(q: &HashMap<String, String>, key: &str) -> Result<bool, Response> {
    match q.get(key).map(|s| s.to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) => match v.as_str() {
            "true" | "1" | "yes" | "on" | "t" | "y" => Ok(true),
            "false" | "0" | "no" | "off" | "f" | "n" => Ok(false),
            _ => Err(validation(vec![
                Invalid::new(
                    &["query", key],
                    "Input should be a valid boolean, unable to interpret input",
                    "bool_parsing",
                )
                .with_input(json!(v)),
            ])),
        },
    }
}

/// The `Page[...]` envelope (codegen-api.md §6).
pub fn page(all: Vec<Value>, skip: u64, limit: u64) -> Value {
    let total = all.len() as u64;
    let items: Vec<Value> = all
        .into_iter()
        .skip(skip as usize)
        .take(limit as usize)
        .collect();
    json!({
        "items": items,
        "total": total,
        "page": skip / limit + 1,
        "size": limit,
        "pages": total.div_ceil(limit),
    })
}
