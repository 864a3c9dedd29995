//! Heuristics over setting text: a secret written inline (a password in a connection string, a
//! key in an archive command), a cipher list that lets NULL or anonymous ciphers through. Pure;
//! they say *what kind* of secret was seen, never the secret.

/// Keys whose value is a secret when given inline (`key=value`, case-insensitive).
const SECRET_KEYS: [&str; 11] = [
    "password",
    "passwd",
    "pgpassword",
    "secret",
    "secret-key",
    "secret_key",
    "secret_access_key",
    "aws_secret_access_key",
    "s3-key-secret",
    "access-key",
    "api-key",
];

/// Options that take a secret as their next word (`--password hunter2`).
const SECRET_OPTIONS: [&str; 3] = ["--password", "--passwd", "--secret"];

/// Splits like libpq reads a conninfo and a shell reads a command: whitespace and `; & |` separate
/// words outside quotes, single and double quotes group (and are removed), a backslash escapes
/// the next character, and spaces around `=` are dropped (`password = x` is `password=x`).
fn words(text: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut started = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                started = true;
            }
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                started = true;
            }
            (None, c) if c.is_whitespace() || c == ';' || c == '&' || c == '|' => {
                // `key = value`: keep going when the next non-blank character, or this word's
                // last one, is `=`.
                while chars.peek().is_some_and(|n| n.is_whitespace()) {
                    chars.next();
                }
                let joins = cur.ends_with('=') || chars.peek() == Some(&'=');
                if !joins && (started || !cur.is_empty()) {
                    out.push(std::mem::take(&mut cur));
                    started = false;
                }
            }
            (None, c) => {
                cur.push(c);
                started = true;
            }
        }
    }
    if started || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A value that points elsewhere rather than being the secret: an environment variable or a file.
fn is_reference(value: &str) -> bool {
    value.is_empty()
        || value.starts_with('$')
        || value.starts_with('/')
        || value.starts_with('@')
        || value.starts_with('%')
}

/// Whether `text` (a conninfo, a URL, a shell command) carries a secret inline; returns what kind.
pub fn inline_secret(text: &str) -> Option<String> {
    // URLs with user:password@host
    for (i, _) in text.match_indices("://") {
        let rest = &text[i + 3..];
        let authority = rest
            .split(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '\'' || c == '"')
            .next()
            .unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            if let Some((_, pw)) = userinfo.split_once(':') {
                if !pw.is_empty() {
                    return Some("a URL with user:password@".into());
                }
            }
        }
    }
    let ws = words(text);
    for (i, w) in ws.iter().enumerate() {
        let lower = w.to_ascii_lowercase();
        if let Some(eq) = w.find('=') {
            let key = lower[..eq].trim_start_matches('-');
            let named = SECRET_KEYS
                .iter()
                .any(|s| key == *s || key.ends_with(&format!("-{s}")) || key.ends_with(&format!("_{s}")));
            if named && !is_reference(&w[eq + 1..]) {
                return Some(format!("{key}=…"));
            }
        }
        if SECRET_OPTIONS.contains(&lower.as_str()) {
            if let Some(next) = ws.get(i + 1) {
                if !next.starts_with('-') && !is_reference(next) {
                    return Some(format!("{lower} …"));
                }
            }
        }
    }
    None
}

/// Why an OpenSSL cipher list lets NULL (no encryption) or anonymous (no authentication) ciphers
/// through, or None: a term that enables them explicitly (`NULL`, `eNULL`, `aNULL`, `ADH`…), or
/// a broad group (`HIGH`, `MEDIUM`, `LOW`, `ALL`) without `!aNULL` — those groups include the
/// anonymous suites, which is why PostgreSQL's default is `HIGH:MEDIUM:+3DES:!aNULL`.
pub fn null_cipher_term(ciphers: &str) -> Option<String> {
    let terms: Vec<&str> = ciphers
        .split([':', ',', ' '])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    let upper = |t: &str| t.to_ascii_uppercase();
    if let Some(t) = terms.iter().find(|t| {
        let u = upper(t);
        !t.starts_with(['!', '-', '+']) && (u.contains("NULL") || u.starts_with("ADH") || u.starts_with("AECDH"))
    }) {
        return Some(format!("the term {t} enables NULL or anonymous ciphers"));
    }
    let excluded = terms
        .iter()
        .any(|t| matches!(upper(t).as_str(), "!ANULL" | "!ADH" | "!NULL:!ANULL"));
    let broad = terms
        .iter()
        .find(|t| matches!(upper(t).as_str(), "HIGH" | "MEDIUM" | "LOW" | "ALL"));
    match broad {
        Some(b) if !excluded => Some(format!("{b} includes anonymous ciphers unless !aNULL follows")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_inline_secrets_and_says_which_kind_only() {
        for (text, kind) in [
            (
                "host=10.0.0.1 user=replicator password=S3cret application_name=pg-2",
                "password=…",
            ),
            (
                "postgresql://replicator:S3cret@10.0.0.1:5432/postgres",
                "a URL with user:password@",
            ),
            ("PGPASSWORD=S3cret pg_receivewal -h primary", "pgpassword=…"),
            (
                "pgbackrest --stanza=main --repo1-s3-key-secret=abcd archive-push %p",
                "repo1-s3-key-secret=…",
            ),
            (
                "AWS_SECRET_ACCESS_KEY=abcd aws s3 cp %p s3://bucket/%f",
                "aws_secret_access_key=…",
            ),
            ("wal-g wal-push %p --password hunter2", "--password …"),
            (
                "curl -T %p https://backup:pw@store.example.com/wal/%f",
                "a URL with user:password@",
            ),
        ] {
            let found = inline_secret(text);
            assert_eq!(found.as_deref(), Some(kind), "{text}");
            assert!(!found.unwrap().contains("S3cret"));
        }
    }

    #[test]
    fn references_and_ordinary_commands_are_not_secrets() {
        for text in [
            "",
            "host=10.0.0.1 user=replicator passfile=/var/lib/postgresql/.pgpass",
            "test ! -f /archive/%f && cp %p /archive/%f",
            "pgbackrest --stanza=pg-meta archive-push %p",
            "password=$PGPASS_FROM_ENV",
            "postgresql://replicator@10.0.0.1/postgres",
            "wal-g wal-push %p --password-file /etc/walg.pw",
            "https://store.example.com/wal/%f",
        ] {
            assert_eq!(inline_secret(text), None, "{text}");
        }
    }

    #[test]
    fn quoted_and_spaced_values_are_still_secrets() {
        for (text, kind) in [
            (
                "host=10.0.0.1 user=replicator password='S3cret! x' sslmode=require",
                "password=…",
            ),
            ("host=10.0.0.1 password = S3cret", "password=…"),
            ("user=r password=\\'quoted\\'", "password=…"),
            (
                "pgbackrest --repo1-s3-key-secret=\"a b\" archive-push %p",
                "repo1-s3-key-secret=…",
            ),
        ] {
            assert_eq!(inline_secret(text).as_deref(), Some(kind), "{text}");
        }
        assert_eq!(inline_secret("password=''"), None, "an empty password is no secret");
        assert_eq!(words("a = b 'c d' e\\ f"), vec!["a=b", "c d", "e f"]);
    }

    #[test]
    fn null_and_anonymous_ciphers_are_found_unless_excluded() {
        assert_eq!(null_cipher_term("HIGH:MEDIUM:+3DES:!aNULL"), None, "the default");
        assert_eq!(null_cipher_term("HIGH:!aNULL:!eNULL"), None);
        assert_eq!(
            null_cipher_term("ECDHE+AESGCM:DHE+AESGCM"),
            None,
            "no broad group, no NULL"
        );
        assert_eq!(
            null_cipher_term("DEFAULT"),
            None,
            "DEFAULT excludes the anonymous suites"
        );
        for (list, why) in [
            ("HIGH:NULL", "the term NULL"),
            ("ALL:eNULL", "the term eNULL"),
            ("aNULL", "the term aNULL"),
            ("NULL-SHA256", "the term NULL-SHA256"),
            ("HIGH", "HIGH includes anonymous ciphers"),
            ("HIGH:-NULL", "HIGH includes anonymous ciphers"),
            ("HIGH:+aNULL", "HIGH includes anonymous ciphers"),
        ] {
            let found = null_cipher_term(list);
            assert!(
                found.as_deref().is_some_and(|f| f.starts_with(why)),
                "{list}: {found:?}"
            );
        }
    }
}
