//! A small typed reader over `serde_json::Value` that remembers which keys it
//! consumed and the path of every value. Derived `Deserialize` stops at the
//! first error and loses unknown keys; walking by hand lets validation report
//! every problem with its path and warn about every unknown key.

use super::diagnostics::Diagnostics;
use serde_json::{Map, Value};

/// Joins a parent path and a key (`codegen` + `orgId` → `codegen.orgId`).
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// A short rendering of a value for messages: JSON text, cut so a pasted blob
/// does not flood the terminal.
pub(crate) fn show(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 {
        let cut: String = text.chars().take(57).collect();
        format!("{cut}...")
    } else {
        text
    }
}

/// A JSON object being read, with the keys read so far.
pub(crate) struct Obj<'a> {
    path: String,
    map: &'a Map<String, Value>,
    used: Vec<&'static str>,
}

impl<'a> Obj<'a> {
    /// Reads `value` as an object, reporting a problem when it is not one.
    pub fn new(path: String, value: &'a Value, d: &mut Diagnostics) -> Option<Obj<'a>> {
        match value {
            Value::Object(map) => Some(Obj {
                path,
                map,
                used: Vec::new(),
            }),
            other => {
                d.problem(path, format!("must be an object (got {})", show(other)));
                None
            }
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn child(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The raw value of `key`; JSON `null` counts as absent so that
    /// `"publicUrl": null` means "not set".
    pub fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.used.push(key);
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub fn string(&mut self, key: &'static str, d: &mut Diagnostics) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            other => {
                d.problem(
                    self.child(key),
                    format!("must be a string (got {})", show(other)),
                );
                None
            }
        }
    }

    pub fn bool(&mut self, key: &'static str, d: &mut Diagnostics) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            other => {
                d.problem(
                    self.child(key),
                    format!("must be true or false (got {})", show(other)),
                );
                None
            }
        }
    }

    pub fn number(&mut self, key: &'static str, d: &mut Diagnostics) -> Option<f64> {
        match self.get(key)? {
            Value::Number(n) => n.as_f64(),
            other => {
                d.problem(
                    self.child(key),
                    format!("must be a number (got {})", show(other)),
                );
                None
            }
        }
    }

    /// A non-negative whole number.
    pub fn count(&mut self, key: &'static str, d: &mut Diagnostics) -> Option<u64> {
        match self.get(key)? {
            Value::Number(n) if n.as_u64().is_some() => n.as_u64(),
            other => {
                d.problem(
                    self.child(key),
                    format!("must be a whole number, 0 or more (got {})", show(other)),
                );
                None
            }
        }
    }

    /// A list of strings; absent means empty.
    pub fn strings(&mut self, key: &'static str, d: &mut Diagnostics) -> Vec<String> {
        let Some(value) = self.get(key) else {
            return Vec::new();
        };
        strings_at(&self.child(key), value, d)
    }

    pub fn obj(&mut self, key: &'static str, d: &mut Diagnostics) -> Option<Obj<'a>> {
        let value = self.get(key)?;
        Obj::new(self.child(key), value, d)
    }

    /// Every entry not read by name, for objects whose keys are data (model
    /// names, task types) rather than fixed field names. Consumes the reader:
    /// the caller judges those keys itself.
    pub fn into_rest(self) -> Vec<(&'a String, &'a Value)> {
        self.map
            .iter()
            .filter(|(k, _)| !self.used.contains(&k.as_str()))
            .collect()
    }

    /// Warns about every key nobody read: almost always a typo.
    pub fn finish(self, d: &mut Diagnostics) {
        for key in self.map.keys() {
            if !self.used.contains(&key.as_str()) {
                d.warning(
                    join(&self.path, key),
                    "unknown key, ignored (is it misspelled?)",
                );
            }
        }
    }
}

/// Reads a list of strings at `path`.
pub(crate) fn strings_at(path: &str, value: &Value, d: &mut Diagnostics) -> Vec<String> {
    let Value::Array(items) = value else {
        d.problem(
            path,
            format!("must be a list of strings (got {})", show(value)),
        );
        return Vec::new();
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::String(s) => out.push(s.clone()),
            other => d.problem(
                format!("{path}[{i}]"),
                format!("must be a string (got {})", show(other)),
            ),
        }
    }
    out
}
