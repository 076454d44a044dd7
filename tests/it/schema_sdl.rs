//! `schema.graphql` is generated from the code; this fails when the two drift apart.

#[test]
fn schema_graphql_matches_the_code() {
    let expected = tally::graphql::sdl();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        on_disk == expected,
        "schema.graphql is out of date: run `cargo run -- schema > schema.graphql`"
    );
}
