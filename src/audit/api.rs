//! SQL functions behind the security audit's Rust-side facts and rules, and its report.

use pgrx::prelude::*;

use crate::error::{Code, Error, raise};
use crate::pgutil::setting;
use pgops_core::audit::{cis, report};

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

/// CIS 6.10: the terms of a cipher list outside the benchmark's forward-secret AEAD suites.
#[pg_extern(immutable, strict, parallel_safe)]
fn _weak_cipher_terms(ciphers: &str) -> Vec<String> {
    cis::weak_cipher_terms(ciphers)
}

/// CIS 3.1.24: what `log_line_prefix` lacks.
#[pg_extern(immutable, strict, parallel_safe)]
fn _log_line_prefix_missing(prefix: &str) -> Vec<String> {
    cis::log_line_prefix_missing(prefix)
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// CIS 5.9: log2 of the number of addresses a netmask admits; NULL when it is not a prefix.
#[pg_extern(immutable, strict, parallel_safe)]
fn _address_bits(netmask: &str) -> Option<i32> {
    cis::address_bits(netmask).map(|b| b as i32)
}

/// CIS 3.1.26: the zone is UTC under one of its names.
#[pg_extern(immutable, strict, parallel_safe)]
fn _is_utc_zone(zone: &str) -> bool {
    cis::is_utc_zone(zone)
}

/// The schemas of a search_path value, in order and unquoted.
#[pg_extern(immutable, strict, parallel_safe)]
fn _search_path_schemas(value: &str) -> Vec<String> {
    cis::search_path_schemas(value)
}

/// PostgreSQL's share directory, as `pg_config --sharedir` prints it.
fn sharedir() -> String {
    let mut buf = [0 as std::ffi::c_char; pg_sys::MAXPGPATH as usize];
    // SAFETY: my_exec_path is the server's executable path (set at start); get_share_path writes
    // a NUL-terminated path of at most MAXPGPATH bytes into buf.
    unsafe {
        pg_sys::get_share_path(std::ptr::addr_of!(pg_sys::my_exec_path).cast(), buf.as_mut_ptr());
        std::ffi::CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned()
    }
}

/// The file-system facts (certificate, key mode, socket and data directory modes, pg_hba.conf,
/// WAL, tablespaces, logs, the extension directory, FIPS), as jsonb. SECURITY DEFINER in the
/// install script, executable by superusers and pgops_admin only.
#[pg_extern(volatile, parallel_unsafe)]
fn _audit_files() -> pgrx::JsonB {
    let (log_directory, sharedir) = (setting("log_directory"), sharedir());
    let facts = super::files::collect(&super::files::Inputs {
        ssl: setting("ssl") == "on",
        cert_file: &setting("ssl_cert_file"),
        key_file: &setting("ssl_key_file"),
        socket_dirs: &setting("unix_socket_directories"),
        data_directory: &setting("data_directory"),
        hba_file: &setting("hba_file"),
        log_directory: if setting("logging_collector") == "on" {
            &log_directory
        } else {
            ""
        },
        sharedir: &sharedir,
        now_unix: chrono::Utc::now().timestamp(),
    });
    pgrx::JsonB(serde_json::to_value(facts).unwrap_or_default())
}

/// Renders `pgops.security_report()`'s document (built in SQL from the audit) as Markdown or HTML.
#[pg_extern(immutable, strict, parallel_safe)]
fn _security_report_render(doc: pgrx::JsonB, format: &str) -> String {
    let f = report::Format::parse(format).unwrap_or_else(|e| {
        raise(Error::new(
            Code::InvalidParameterValue,
            format!("pgops.security_report: {e}"),
        ))
    });
    let r: report::Report = serde_json::from_value(doc.0).unwrap_or_else(|e| {
        raise(Error::new(
            Code::Internal,
            format!("pgops.security_report: the audit document does not parse: {e}"),
        ))
    });
    report::render(&r, f)
}
