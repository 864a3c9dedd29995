//! Quoting for dynamic SQL. Every identifier pgops puts in a statement goes through `ident`,
//! every value through `literal`.

/// A double-quoted identifier (`"` doubled). Always quoted, so case, spaces, keywords and
/// hostile names are all safe.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A string literal: `'…'` with `'` doubled; `E'…'` with backslashes doubled when there are any
/// (correct whatever standard_conforming_strings is).
pub fn literal(value: &str) -> String {
    let body = value.replace('\'', "''");
    if body.contains('\\') {
        format!("E'{}'", body.replace('\\', "\\\\"))
    } else {
        format!("'{body}'")
    }
}

/// A role specification: `PUBLIC` stays a keyword, anything else is quoted.
pub fn role(name: &str) -> String {
    if name == "PUBLIC" { "PUBLIC".into() } else { ident(name) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_literals_are_always_safe() {
        assert_eq!(ident("app"), "\"app\"");
        assert_eq!(ident("\"; DROP ROLE postgres; --"), "\"\"\"; DROP ROLE postgres; --\"");
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(literal(r"a\b'"), r"E'a\\b'''");
        assert_eq!(role("PUBLIC"), "PUBLIC");
        assert_eq!(role("public"), "\"public\"");
    }
}
