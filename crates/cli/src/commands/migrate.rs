//! `cyrus migrate --from-cyrus PATH [--out PATH] [--force] [--json]`:
//! converts a TypeScript Cyrus `~/.cyrus/config.json` into this Cyrus's
//! format and says what could not be carried over and why.
//!
//! The mapping is pure ([`convert`]); the command around it reads, writes
//! (atomic, 0600, never over an existing file without `--force`) and reports.
//! Exit codes: 0 written; 1 write failed; 2 unreadable input or refused
//! output.

use crate::config_file;
use crate::config_loader;
use crate::ui::{self, EXIT_FAILURE, EXIT_USAGE, Style};
use clap::Args;
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The TypeScript Cyrus configuration (usually ~/.cyrus/config.json).
    #[arg(long, value_name = "PATH")]
    from_cyrus: PathBuf,
    /// Where to write (default: $XDG_CONFIG_HOME/cyrus/config.json).
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// Overwrite an existing output file.
    #[arg(long)]
    force: bool,
    /// Print the stable JSON report (docs/cli.md).
    #[arg(long)]
    json: bool,
}

/// A setting that was not carried over.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unmapped {
    /// JSON path in the TypeScript config, e.g. `repositories[0].baseBranch`.
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct MigrateReport {
    out: PathBuf,
    repositories: usize,
    unmapped: Vec<Unmapped>,
    next_steps: Vec<String>,
}

/// Task types this Cyrus knows (keys of `labelPrompts`).
const TASK_TYPES: [&str; 4] = ["debugger", "builder", "scoper", "orchestrator"];

pub fn run(args: MigrateArgs) -> ExitCode {
    let env = config_loader::process_env();
    let out = match args.out.clone().or_else(|| default_out(&env)) {
        Some(p) => p,
        None => {
            eprintln!("error: nowhere to write: pass --out PATH");
            return ui::exit(EXIT_USAGE);
        }
    };
    if same_file(&out, &args.from_cyrus) {
        eprintln!(
            "error: --out {} is the file being migrated; choose another path",
            out.display()
        );
        return ui::exit(EXIT_USAGE);
    }
    let source = match config_file::read_object(&args.from_cyrus) {
        Ok(map) if map.is_empty() && !args.from_cyrus.exists() => {
            eprintln!("error: {} does not exist", args.from_cyrus.display());
            return ui::exit(EXIT_USAGE);
        }
        Ok(map) => map,
        Err(e) => {
            eprintln!("error: {e}");
            return ui::exit(EXIT_USAGE);
        }
    };
    let (converted, unmapped) = convert(&source);
    let repositories = converted["repositories"].as_array().map_or(0, Vec::len);
    if let Err(e) = config_file::write_atomic(&out, &config_file::to_text(&converted), args.force) {
        eprintln!("error: {e}");
        return ui::exit(match e {
            config_file::ConfigFileError::Exists { .. } => EXIT_USAGE,
            _ => EXIT_FAILURE,
        });
    }
    let report = MigrateReport {
        next_steps: vec![
            format!(
                "cyrus codegen setup --config {}   (Codegen org id and token, codegenRepoId per repository, webhook secret)",
                out.display()
            ),
            format!("cyrus doctor --config {}", out.display()),
        ],
        out,
        repositories,
        unmapped,
    };
    if args.json {
        return match ui::print_json(&report) {
            Ok(()) => ExitCode::SUCCESS,
            Err(code) => code,
        };
    }
    let s = Style::detect();
    println!(
        "{} wrote {} with {} repositor{} (mode 0600)",
        s.ok(),
        report.out.display(),
        report.repositories,
        if report.repositories == 1 { "y" } else { "ies" }
    );
    if !report.unmapped.is_empty() {
        println!("{} not carried over:", s.warn());
        for u in &report.unmapped {
            println!("  - {}: {}", u.path, u.reason);
        }
    }
    println!("Next:");
    for step in &report.next_steps {
        println!("  {step}");
    }
    ExitCode::SUCCESS
}

fn default_out(env: &std::collections::BTreeMap<String, String>) -> Option<PathBuf> {
    let home = config_loader::home_dir(env);
    let xdg = env
        .get("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| home.map(|h| h.join(".config")))?;
    Some(xdg.join("cyrus").join("config.json"))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The new configuration and everything that was left behind.
pub fn convert(source: &Map<String, Value>) -> (Map<String, Value>, Vec<Unmapped>) {
    let mut unmapped = Vec::new();
    let mut repositories = Vec::new();
    let mut models: Vec<(String, String)> = Vec::new();
    for (key, value) in source {
        if key != "repositories" {
            unmapped.push(Unmapped {
                path: key.clone(),
                reason: top_level_reason(key, value),
            });
        }
    }
    let list = source
        .get("repositories")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if list.is_empty() {
        unmapped.push(Unmapped {
            path: "repositories".into(),
            reason: "no repositories found; add them with `cyrus codegen setup --repo-map`".into(),
        });
    }
    for (i, repo) in list.iter().enumerate() {
        let at = format!("repositories[{i}]");
        let Some(repo) = repo.as_object() else {
            unmapped.push(Unmapped {
                path: at,
                reason: "not an object".into(),
            });
            continue;
        };
        if repo.get("isActive").and_then(Value::as_bool) == Some(false) {
            unmapped.push(Unmapped {
                path: at.clone(),
                reason: "inactive (`isActive: false`) repository, not migrated".into(),
            });
            continue;
        }
        let mut out = Map::new();
        for (key, value) in repo {
            let path = format!("{at}.{key}");
            match key.as_str() {
                "id" | "name" | "repositoryPath" | "linearWorkspaceId" | "linearToken"
                | "teamKeys" | "projectKeys" | "routingLabels" | "allowedTools" => {
                    out.insert(key.clone(), value.clone());
                }
                "labelPrompts" => {
                    let (prompts, lost) = label_prompts(value, &path);
                    if !prompts.is_empty() {
                        out.insert(key.clone(), Value::Object(prompts));
                    }
                    unmapped.extend(lost);
                }
                "model" => {
                    if let Some(m) = value.as_str().filter(|m| !m.is_empty()) {
                        models.push((path, m.to_owned()));
                    }
                }
                "isActive" => {}
                _ => unmapped.push(Unmapped {
                    reason: repository_reason(key),
                    path,
                }),
            }
        }
        if !out.contains_key("name")
            && let Some(id) = out.get("id").cloned()
        {
            out.insert("name".into(), id);
        }
        repositories.push(Value::Object(out));
    }
    let mut codegen = Map::new();
    if let Some((_, first)) = models.first() {
        codegen.insert("defaultModel".into(), json!(first));
        for (path, model) in models.iter().skip(1).filter(|(_, m)| m != first) {
            unmapped.push(Unmapped {
                path: path.clone(),
                reason: format!(
                    "model `{model}` differs from the default `{first}`; models are chosen per task type (`codegen.modelByTaskType`) or by a model label, not per repository"
                ),
            });
        }
    }
    let mut converted = Map::new();
    converted.insert("repositories".into(), Value::Array(repositories));
    converted.insert("codegen".into(), Value::Object(codegen));
    (converted, unmapped)
}

/// `labelPrompts` values are either a list of labels or `{labels: [...]}`
/// (newer TypeScript releases, which may also carry per-type tools).
fn label_prompts(value: &Value, path: &str) -> (Map<String, Value>, Vec<Unmapped>) {
    let mut out = Map::new();
    let mut lost = Vec::new();
    let Some(map) = value.as_object() else {
        lost.push(Unmapped {
            path: path.to_owned(),
            reason: "not an object of task type → labels".into(),
        });
        return (out, lost);
    };
    for (task_type, spec) in map {
        let at = format!("{path}.{task_type}");
        if !TASK_TYPES.contains(&task_type.as_str()) {
            lost.push(Unmapped {
                path: at,
                reason: format!(
                    "unknown task type `{task_type}` (known: {})",
                    TASK_TYPES.join(", ")
                ),
            });
            continue;
        }
        let labels = match spec {
            Value::Array(_) => Some(spec.clone()),
            Value::Object(o) => {
                for key in o.keys().filter(|k| *k != "labels") {
                    lost.push(Unmapped {
                        path: format!("{at}.{key}"),
                        reason: "per-task-type settings other than labels are not supported; tools are set per repository (`allowedTools`)".into(),
                    });
                }
                o.get("labels").cloned()
            }
            _ => None,
        };
        match labels {
            Some(l) => {
                out.insert(task_type.clone(), l);
            }
            None => lost.push(Unmapped {
                path: at,
                reason: "expected a list of labels".into(),
            }),
        }
    }
    (out, lost)
}

fn repository_reason(key: &str) -> String {
    match key {
        "baseBranch" => "Codegen picks the branch in its own sandbox; a branch can be named in the issue (`[branch=…]`)".into(),
        "workspaceBaseDir" => "git worktrees are not needed: Codegen works in its own cloud sandbox".into(),
        "mcpConfigPath" => "MCP servers are configured in Codegen's settings; list their names in `mcpServers`".into(),
        "promptTemplatePath" => "prompt templates are built in per task type; review them before relying on custom wording".into(),
        "disallowedTools" => "only `allowedTools` is passed to Codegen".into(),
        "linearWorkspaceName" => "informational only".into(),
        _ => "unknown to this Cyrus".into(),
    }
}

fn top_level_reason(key: &str, _value: &Value) -> String {
    match key {
        "ngrokAuthToken" => {
            "no tunnel is built in; expose `server.listen` and set `server.publicUrl`".into()
        }
        "stripeCustomerId" => "billing of the hosted TypeScript service does not apply".into(),
        _ => "not a repository setting; nothing equivalent".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_repositories_and_reports_the_rest() {
        let source: Map<String, Value> = serde_json::from_value(json!({
            "repositories": [
                {"id": "r1", "name": "api", "repositoryPath": "/src/api", "baseBranch": "main",
                 "linearWorkspaceId": "org-1", "linearToken": "lin_api_x", "isActive": true,
                 "teamKeys": ["ENG"], "labelPrompts": {"debugger": ["Bug"], "builder": {"labels": ["Feature"], "allowedTools": ["Read"]}, "poet": ["Poem"]},
                 "model": "opus", "workspaceBaseDir": "/ws"},
                {"id": "r2", "isActive": false},
                {"id": "r3", "linearWorkspaceId": "org-1", "model": "sonnet"}
            ],
            "ngrokAuthToken": "t"
        }))
        .unwrap();
        let (out, lost) = convert(&source);
        let repos = out["repositories"].as_array().unwrap();
        assert_eq!(repos.len(), 2);
        assert_eq!(
            repos[0]["labelPrompts"],
            json!({"debugger": ["Bug"], "builder": ["Feature"]})
        );
        assert_eq!(repos[1]["name"], "r3");
        assert_eq!(out["codegen"]["defaultModel"], "opus");
        let paths: Vec<&str> = lost.iter().map(|u| u.path.as_str()).collect();
        for expected in [
            "ngrokAuthToken",
            "repositories[0].baseBranch",
            "repositories[0].workspaceBaseDir",
            "repositories[0].labelPrompts.builder.allowedTools",
            "repositories[0].labelPrompts.poet",
            "repositories[1]",
            "repositories[2].model",
        ] {
            assert!(
                paths.contains(&expected),
                "{expected} missing from {paths:?}"
            );
        }
    }
}
