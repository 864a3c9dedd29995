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

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == '\'' || c == '"' || c == ';' || c == '&' || c == '|')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// A value that points elsewhere rather than being the secret: an environment variable or a file.
fn is_reference(value: &str) -> bool {
    value.is_empty() || value.starts_with('$') || value.starts_with('/') || value.starts_with('@') || value.starts_with('%')
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

/// The first term of an OpenSSL cipher list that allows NULL (no encryption) or anonymous (no
/// authentication) ciphers: a term naming NULL that is not excluded with `!` or `-`.
pub fn null_cipher_term(ciphers: &str) -> Option<String> {
    ciphers
        .split([':', ',', ' '])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .find(|t| !t.starts_with('!') && !t.starts_with('-') && t.to_ascii_uppercase().contains("NULL"))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_inline_secrets_and_says_which_kind_only() {
        for (text, kind) in [
            ("host=10.0.0.1 user=replicator password=S3cret application_name=pg-2", "password=…"),
            ("postgresql://replicator:S3cret@10.0.0.1:5432/postgres", "a URL with user:password@"),
            ("PGPASSWORD=S3cret pg_receivewal -h primary", "pgpassword=…"),
            ("pgbackrest --stanza=main --repo1-s3-key-secret=abcd archive-push %p", "repo1-s3-key-secret=…"),
            ("AWS_SECRET_ACCESS_KEY=abcd aws s3 cp %p s3://bucket/%f", "aws_secret_access_key=…"),
            ("wal-g wal-push %p --password hunter2", "--password …"),
            ("curl -T %p https://backup:pw@store.example.com/wal/%f", "a URL with user:password@"),
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
    fn null_and_anonymous_ciphers_are_found_unless_excluded() {
        assert_eq!(null_cipher_term("HIGH:MEDIUM:+3DES:!aNULL"), None, "the default");
        assert_eq!(null_cipher_term("HIGH:!aNULL:!eNULL"), None);
        assert_eq!(null_cipher_term("HIGH:-NULL"), None);
        assert_eq!(null_cipher_term("HIGH:NULL").as_deref(), Some("NULL"));
        assert_eq!(null_cipher_term("ALL:eNULL").as_deref(), Some("eNULL"));
        assert_eq!(null_cipher_term("HIGH:+aNULL").as_deref(), Some("+aNULL"));
        assert_eq!(null_cipher_term("NULL-SHA256").as_deref(), Some("NULL-SHA256"));
    }
}
