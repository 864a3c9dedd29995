//! SQL functions behind the security audit's Rust-side facts.

use pgrx::prelude::*;

use crate::pgutil::setting;

/// What kind of secret `text` carries inline (`password=…`, a URL with user:password@, …), or
/// NULL. Never returns the secret itself.
#[pg_extern(immutable, strict, parallel_safe)]
fn _inline_secret(text: &str) -> Option<String> {
    super::text::inline_secret(text)
}

/// The first term of an OpenSSL cipher list that lets NULL or anonymous ciphers through, or NULL.
#[pg_extern(immutable, strict, parallel_safe)]
fn _null_cipher_term(ciphers: &str) -> Option<String> {
    super::text::null_cipher_term(ciphers)
}

/// The file-system facts (certificate, key mode, socket and data directory modes), as jsonb.
/// SECURITY DEFINER in the install script, executable by superusers and pgops_admin only.
#[pg_extern(volatile, parallel_unsafe)]
fn _audit_files() -> pgrx::JsonB {
    let facts = super::files::collect(
        setting("ssl") == "on",
        &setting("ssl_cert_file"),
        &setting("ssl_key_file"),
        &setting("unix_socket_directories"),
        &setting("data_directory"),
        chrono::Utc::now().timestamp(),
    );
    pgrx::JsonB(serde_json::to_value(facts).unwrap_or_default())
}
