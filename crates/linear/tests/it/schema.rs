//! Every GraphQL document we send must validate against Linear's SDL.

use apollo_compiler::{ExecutableDocument, Schema};
use cyrus_linear::operations;

#[test]
fn every_operation_validates_against_linear_schema() {
    let Some(sdl) = cyrus_sandbox::shared::read("contracts/linear-schema.graphql") else {
        return;
    };
    let schema = Schema::parse_and_validate(sdl, "linear-schema.graphql")
        .unwrap_or_else(|e| panic!("Linear SDL does not validate:\n{}", e.errors));
    let mut failures = Vec::new();
    for op in operations::ALL {
        if let Err(e) = ExecutableDocument::parse_and_validate(
            &schema,
            op.document,
            format!("{}.graphql", op.name),
        ) {
            failures.push(format!("--- {} ---\n{}", op.name, e.errors));
        }
    }
    assert!(
        failures.is_empty(),
        "invalid documents:\n{}",
        failures.join("\n")
    );
    // Every document on disk is in `ALL` (and so validated above).
    let on_disk = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/graphql"))
        .expect("graphql directory")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "graphql"))
        })
        .count();
    assert_eq!(operations::ALL.len(), on_disk);
}

#[test]
fn operation_names_are_unique_and_documents_non_empty() {
    let mut names: Vec<_> = operations::ALL.iter().map(|o| o.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), operations::ALL.len());
    for op in operations::ALL {
        assert!(op.document.contains('{'), "{} is empty", op.name);
    }
}
