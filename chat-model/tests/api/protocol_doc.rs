//! docs/protocol.md is the contract clients are written against, so every frame
//! type and error code the code knows must be documented there, in the forms
//! the page uses throughout: a `### `<type>`` heading per frame type under
//! "## Client frames" or "## Server frames", and a `| `<code>` |` table row
//! per error code under "## Error codes".

use chat_model::protocol::{CLIENT_FRAME_TYPES, ErrorCode, SERVER_FRAME_TYPES};

const DOC: &str = include_str!("../../../docs/protocol.md");

/// The text of the section headed `## <title>`, up to the next `## ` heading.
fn section(title: &str) -> &'static str {
    let heading = format!("\n## {title}\n");
    let start = DOC
        .find(&heading)
        .unwrap_or_else(|| panic!("docs/protocol.md has no section {heading:?}"));
    let body = &DOC[start + heading.len()..];
    body.find("\n## ").map_or(body, |end| &body[..end])
}

/// The names whose `form` does not occur in section `title`.
fn undocumented<'a>(
    names: impl IntoIterator<Item = &'a str>,
    title: &str,
    form: impl Fn(&str) -> String,
) -> Vec<&'a str> {
    let text = section(title);
    names
        .into_iter()
        .filter(|name| !text.contains(&form(name)))
        .collect()
}

#[test]
fn every_client_frame_type_has_a_heading() {
    assert!(!CLIENT_FRAME_TYPES.is_empty());
    let missing = undocumented(CLIENT_FRAME_TYPES.iter().copied(), "Client frames", |t| {
        format!("\n### `{t}`\n")
    });
    assert!(
        missing.is_empty(),
        "docs/protocol.md, Client frames, has no `### `<type>`` heading for {missing:?}"
    );
}

#[test]
fn every_server_frame_type_has_a_heading() {
    assert!(!SERVER_FRAME_TYPES.is_empty());
    let missing = undocumented(SERVER_FRAME_TYPES.iter().copied(), "Server frames", |t| {
        format!("\n### `{t}`\n")
    });
    assert!(
        missing.is_empty(),
        "docs/protocol.md, Server frames, has no `### `<type>`` heading for {missing:?}"
    );
}

#[test]
fn every_error_code_has_a_table_row() {
    assert!(!ErrorCode::ALL.is_empty());
    let missing = undocumented(
        ErrorCode::ALL.iter().map(|c| c.as_str()),
        "Error codes",
        |c| format!("\n| `{c}` |"),
    );
    assert!(
        missing.is_empty(),
        "docs/protocol.md, Error codes, has no `| `<code>` |` row for {missing:?}"
    );
}

#[test]
fn error_codes_go_on_the_wire_as_documented() {
    // The names checked above are the ones frames carry.
    for code in ErrorCode::ALL.iter() {
        assert_eq!(
            serde_json::to_value(code).unwrap(),
            serde_json::Value::from(code.as_str()),
        );
    }
}
