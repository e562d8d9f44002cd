//! A small, generic GraphQL executor over lazily resolved objects.
//!
//! Queries are parsed with `apollo-compiler` (a real parser, not string
//! matching). Root fields are resolved by [`super::operations`]; everything
//! below them is answered generically from [`Obj`] field tables, so any field
//! selection works: the official SDK asks for dozens of fields per type, and
//! fields the simulator does not model answer `null`.

use std::collections::HashMap;

use apollo_compiler::ast;
use serde_json::{Map, Value};

/// Which kind of entity a lazy [`Val::Ref`] points to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    User,
    Team,
    State,
    Label,
    Project,
    Issue,
    Attachment,
    Comment,
    Relation,
    Session,
    Activity,
    Organization,
}

/// A value before field selection.
#[derive(Debug, Clone)]
pub enum Val {
    Null,
    /// A scalar (or JSON scalar): returned whole.
    Leaf(Value),
    Obj(Obj),
    List(Vec<Val>),
    /// An entity resolved only when selected (entities refer to each other
    /// in cycles: issue → parent → children → …).
    Ref(Kind, String),
    /// A Relay connection; `first`, `filter`, `nodes`, `edges` and
    /// `pageInfo` are handled by the executor.
    Conn(Vec<Val>),
}

impl Val {
    pub fn leaf(v: impl Into<Value>) -> Val {
        Val::Leaf(v.into())
    }
    pub fn opt_ref(kind: Kind, id: Option<&String>) -> Val {
        id.map_or(Val::Null, |id| Val::Ref(kind, id.clone()))
    }
    pub fn opt_leaf<T: Into<Value> + Clone>(v: Option<&T>) -> Val {
        v.map_or(Val::Null, |v| Val::Leaf(v.clone().into()))
    }
}

/// An object: its GraphQL type name and its fields.
#[derive(Debug, Clone)]
pub struct Obj {
    pub typename: &'static str,
    pub fields: Vec<(&'static str, Val)>,
}

impl Obj {
    pub fn new(typename: &'static str) -> Obj {
        Obj {
            typename,
            fields: Vec::new(),
        }
    }
    pub fn with(mut self, name: &'static str, val: Val) -> Obj {
        self.fields.push((name, val));
        self
    }
    pub fn get(&self, name: &str) -> Option<&Val> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

/// Turns a [`Val::Ref`] into its object; `None` when the entity is gone.
pub trait ResolveRef {
    fn resolve_ref(&self, kind: Kind, id: &str) -> Option<Obj>;
}

/// Types that are interfaces or unions in Linear's schema: a fragment on
/// them matches every object.
const ABSTRACT_TYPES: &[&str] = &[
    "Node",
    "Entity",
    "AgentActivityContent",
    "Notification",
    "ActorBot",
];

/// A parsed request: operations, fragments and coerced variables.
pub struct Request {
    pub doc: ast::Document,
    pub variables: Map<String, Value>,
}

/// Why a request could not be executed at all.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("Syntax Error: {0}")]
    Parse(String),
    #[error("{0}")]
    Validation(String),
}

impl Request {
    pub fn parse(query: &str, variables: Map<String, Value>) -> Result<Request, RequestError> {
        let doc = ast::Document::parse(query, "request.graphql")
            .map_err(|e| RequestError::Parse(e.errors.to_string()))?;
        Ok(Request { doc, variables })
    }

    /// The operation to run: the named one, or the only one.
    pub fn operation(&self, name: Option<&str>) -> Result<&ast::OperationDefinition, RequestError> {
        let ops: Vec<&ast::OperationDefinition> = self
            .doc
            .definitions
            .iter()
            .filter_map(|d| match d {
                ast::Definition::OperationDefinition(op) => Some(&**op),
                _ => None,
            })
            .collect();
        match name {
            Some(n) => ops
                .into_iter()
                .find(|op| op.name.as_ref().is_some_and(|on| on.as_str() == n))
                .ok_or_else(|| {
                    RequestError::Validation(format!("Unknown operation named \"{n}\"."))
                }),
            None if ops.len() == 1 => Ok(ops[0]),
            None if ops.is_empty() => Err(RequestError::Validation("No operation found.".into())),
            None => Err(RequestError::Validation(
                "Must provide operation name if query contains multiple operations.".into(),
            )),
        }
    }

    pub fn fragments(&self) -> HashMap<&str, &ast::FragmentDefinition> {
        self.doc
            .definitions
            .iter()
            .filter_map(|d| match d {
                ast::Definition::FragmentDefinition(f) => Some((f.name.as_str(), &**f)),
                _ => None,
            })
            .collect()
    }
}

/// How the SDK and our client name an operation in statistics: the
/// operation's name, else its first root field.
pub fn operation_label(op: &ast::OperationDefinition) -> String {
    if let Some(name) = &op.name {
        return name.to_string();
    }
    op.selection_set
        .iter()
        .find_map(|s| match s {
            ast::Selection::Field(f) => Some(f.name.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| "anonymous".into())
}

/// Evaluates `value` with `$variables` substituted (operation defaults
/// apply to absent variables).
pub fn to_json(
    value: &ast::Value,
    variables: &Map<String, Value>,
    op: &ast::OperationDefinition,
) -> Value {
    match value {
        ast::Value::Null => Value::Null,
        ast::Value::Enum(e) => Value::String(e.to_string()),
        ast::Value::Variable(name) => match variables.get(name.as_str()) {
            Some(v) => v.clone(),
            None => op
                .variables
                .iter()
                .find(|d| d.name == *name)
                .and_then(|d| d.default_value.as_ref())
                .map_or(Value::Null, |d| to_json(d, variables, op)),
        },
        ast::Value::String(s) => Value::String(s.clone()),
        ast::Value::Float(f) => f.try_to_f64().map_or(Value::Null, Value::from),
        ast::Value::Int(i) => i.as_str().parse::<i64>().map_or_else(
            |_| i.try_to_f64().map_or(Value::Null, Value::from),
            Value::from,
        ),
        ast::Value::Boolean(b) => Value::Bool(*b),
        ast::Value::List(items) => {
            Value::Array(items.iter().map(|v| to_json(v, variables, op)).collect())
        }
        ast::Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), to_json(v, variables, op)))
                .collect(),
        ),
    }
}

/// Field arguments as a JSON object.
pub fn arguments(
    field: &ast::Field,
    variables: &Map<String, Value>,
    op: &ast::OperationDefinition,
) -> Map<String, Value> {
    field
        .arguments
        .iter()
        .map(|a| (a.name.to_string(), to_json(&a.value, variables, op)))
        .collect()
}

/// Applies selection sets to resolved values.
pub struct Selector<'a, R: ResolveRef> {
    pub resolver: &'a R,
    pub op: &'a ast::OperationDefinition,
    pub variables: &'a Map<String, Value>,
    pub fragments: HashMap<&'a str, &'a ast::FragmentDefinition>,
}

impl<R: ResolveRef> Selector<'_, R> {
    /// Selects `selection` from `val`; `args` are the field's arguments
    /// (used by connections).
    pub fn select(
        &self,
        val: &Val,
        args: &Map<String, Value>,
        selection: &[ast::Selection],
    ) -> Value {
        match val {
            Val::Null => Value::Null,
            Val::Leaf(v) => v.clone(),
            Val::List(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.select(v, &Map::new(), selection))
                    .collect(),
            ),
            Val::Ref(kind, id) => match self.resolver.resolve_ref(*kind, id) {
                Some(obj) => self.select_obj(&obj, selection),
                None => Value::Null,
            },
            Val::Obj(obj) => self.select_obj(obj, selection),
            Val::Conn(nodes) => {
                let conn = self.connection(nodes, args);
                self.select_obj(&conn, selection)
            }
        }
    }

    fn deref(&self, val: &Val) -> Option<Obj> {
        match val {
            Val::Obj(o) => Some(o.clone()),
            Val::Ref(kind, id) => self.resolver.resolve_ref(*kind, id),
            _ => None,
        }
    }

    /// Builds `{nodes, edges, pageInfo}` after `filter`, `after` and
    /// `first`/`last` (default page size 50, like Linear).
    fn connection(&self, nodes: &[Val], args: &Map<String, Value>) -> Obj {
        let mut objs: Vec<Obj> = nodes.iter().filter_map(|v| self.deref(v)).collect();
        if let Some(filter) = args.get("filter").filter(|f| f.is_object()) {
            objs.retain(|o| self.matches(o, filter));
        }
        if let Some(after) = args.get("after").and_then(Value::as_str)
            && let Some(pos) = objs.iter().position(|o| id_of(o) == after)
        {
            objs.drain(..=pos);
        }
        let total = objs.len();
        let first = args
            .get("first")
            .and_then(Value::as_u64)
            .or_else(|| args.get("last").and_then(Value::as_u64))
            .unwrap_or(50) as usize;
        if args.get("last").is_some() && args.get("first").is_none() {
            let skip = total.saturating_sub(first);
            objs.drain(..skip);
        } else {
            objs.truncate(first);
        }
        let has_next = total > objs.len();
        let start = objs.first().map(|o| Value::String(id_of(o)));
        let end = objs.last().map(|o| Value::String(id_of(o)));
        let page_info = Obj::new("PageInfo")
            .with("hasNextPage", Val::leaf(has_next))
            .with("hasPreviousPage", Val::leaf(false))
            .with("startCursor", start.map_or(Val::Null, Val::Leaf))
            .with("endCursor", end.map_or(Val::Null, Val::Leaf));
        let edges = objs
            .iter()
            .map(|o| {
                Val::Obj(
                    Obj::new("Edge")
                        .with("node", Val::Obj(o.clone()))
                        .with("cursor", Val::leaf(id_of(o))),
                )
            })
            .collect();
        Obj::new("Connection")
            .with("nodes", Val::List(objs.into_iter().map(Val::Obj).collect()))
            .with("edges", Val::List(edges))
            .with("pageInfo", Val::Obj(page_info))
    }

    /// Linear's filter language, the parts agents use: `eq`, `neq`, `in`,
    /// `nin`, `eqIgnoreCase`, `containsIgnoreCase`, `null`, nesting into
    /// related objects, and `and`/`or`.
    fn matches(&self, obj: &Obj, filter: &Value) -> bool {
        let Some(conds) = filter.as_object() else {
            return true;
        };
        conds.iter().all(|(key, cond)| match key.as_str() {
            "and" => cond
                .as_array()
                .is_none_or(|fs| fs.iter().all(|f| self.matches(obj, f))),
            "or" => cond
                .as_array()
                .is_none_or(|fs| fs.iter().any(|f| self.matches(obj, f))),
            _ => {
                let field = obj.get(key).cloned().unwrap_or(Val::Null);
                self.matches_field(&field, cond)
            }
        })
    }

    fn matches_field(&self, field: &Val, cond: &Value) -> bool {
        let Some(conds) = cond.as_object() else {
            return true;
        };
        if let Some(obj) = self.deref(field) {
            return self.matches(&obj, cond);
        }
        let actual = match field {
            Val::Leaf(v) => v.clone(),
            _ => Value::Null,
        };
        conds.iter().all(|(op, expected)| match op.as_str() {
            "eq" => actual == *expected,
            "neq" => actual != *expected,
            "in" => expected.as_array().is_some_and(|a| a.contains(&actual)),
            "nin" => expected.as_array().is_none_or(|a| !a.contains(&actual)),
            "null" => expected.as_bool() == Some(actual.is_null()),
            "eqIgnoreCase" => match (actual.as_str(), expected.as_str()) {
                (Some(a), Some(e)) => a.eq_ignore_ascii_case(e),
                _ => false,
            },
            "containsIgnoreCase" => match (actual.as_str(), expected.as_str()) {
                (Some(a), Some(e)) => a.to_lowercase().contains(&e.to_lowercase()),
                _ => false,
            },
            // Unknown comparators are not filtered on rather than
            // silently dropping every node.
            _ => true,
        })
    }

    fn select_obj(&self, obj: &Obj, selection: &[ast::Selection]) -> Value {
        let mut out = Map::new();
        self.collect(obj, selection, &mut out);
        Value::Object(out)
    }

    fn collect(&self, obj: &Obj, selection: &[ast::Selection], out: &mut Map<String, Value>) {
        for sel in selection {
            match sel {
                ast::Selection::Field(field) => {
                    let key = field.alias.as_ref().unwrap_or(&field.name).to_string();
                    let value = if field.name == "__typename" {
                        Value::String(obj.typename.into())
                    } else {
                        let args = arguments(field, self.variables, self.op);
                        match obj.get(field.name.as_str()) {
                            Some(v) => self.select(v, &args, &field.selection_set),
                            None => Value::Null,
                        }
                    };
                    merge(out, key, value);
                }
                ast::Selection::FragmentSpread(spread) => {
                    if let Some(frag) = self.fragments.get(spread.fragment_name.as_str())
                        && type_matches(obj, frag.type_condition.as_str())
                    {
                        self.collect(obj, &frag.selection_set, out);
                    }
                }
                ast::Selection::InlineFragment(inline) => {
                    let applies = inline
                        .type_condition
                        .as_ref()
                        .is_none_or(|t| type_matches(obj, t.as_str()));
                    if applies {
                        self.collect(obj, &inline.selection_set, out);
                    }
                }
            }
        }
    }
}

fn type_matches(obj: &Obj, condition: &str) -> bool {
    obj.typename == condition
        || ABSTRACT_TYPES.contains(&condition)
        // Payload and connection objects are typed by their field, which
        // the executor does not track; fragments on them apply.
        || obj.typename == "Connection"
        || obj.typename == "Payload"
}

fn id_of(obj: &Obj) -> String {
    match obj.get("id") {
        Some(Val::Leaf(Value::String(s))) => s.clone(),
        _ => String::new(),
    }
}

/// Sets `key`, deep-merging objects selected twice (fragments overlap).
fn merge(out: &mut Map<String, Value>, key: String, value: Value) {
    match (out.get_mut(&key), value) {
        (Some(Value::Object(existing)), Value::Object(new)) => {
            for (k, v) in new {
                merge(existing, k, v);
            }
        }
        (Some(Value::Array(existing)), Value::Array(new)) if existing.len() == new.len() => {
            for (e, n) in existing.iter_mut().zip(new) {
                match (e, n) {
                    (Value::Object(eo), Value::Object(no)) => {
                        for (k, v) in no {
                            merge(eo, k, v);
                        }
                    }
                    (e, n) => *e = n,
                }
            }
        }
        (_, value) => {
            out.insert(key, value);
        }
    }
}

/// Linear's complexity estimate: each property 0.1, each object 1, and a
/// connection multiplies its children by `first` (default 50); rounded up.
pub fn complexity(
    selection: &[ast::Selection],
    fragments: &HashMap<&str, &ast::FragmentDefinition>,
    variables: &Map<String, Value>,
    op: &ast::OperationDefinition,
) -> u64 {
    fn walk(
        selection: &[ast::Selection],
        fragments: &HashMap<&str, &ast::FragmentDefinition>,
        variables: &Map<String, Value>,
        op: &ast::OperationDefinition,
        depth: usize,
    ) -> f64 {
        if depth > 32 {
            return 0.0;
        }
        selection
            .iter()
            .map(|sel| match sel {
                ast::Selection::Field(f) if f.selection_set.is_empty() => 0.1,
                ast::Selection::Field(f) => {
                    let args = arguments(f, variables, op);
                    let is_connection = f.selection_set.iter().any(|s| {
                        matches!(s, ast::Selection::Field(c) if c.name == "nodes" || c.name == "edges")
                    });
                    let inner = walk(&f.selection_set, fragments, variables, op, depth + 1);
                    if is_connection {
                        let first = args
                            .get("first")
                            .or_else(|| args.get("last"))
                            .and_then(Value::as_f64)
                            .unwrap_or(50.0);
                        1.0 + first * inner
                    } else {
                        1.0 + inner
                    }
                }
                ast::Selection::FragmentSpread(s) => fragments
                    .get(s.fragment_name.as_str())
                    .map_or(0.0, |f| walk(&f.selection_set, fragments, variables, op, depth + 1)),
                ast::Selection::InlineFragment(i) => {
                    walk(&i.selection_set, fragments, variables, op, depth + 1)
                }
            })
            .sum()
    }
    walk(selection, fragments, variables, op, 0).ceil() as u64
}
