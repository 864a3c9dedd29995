//! What the security audit learns from the file system, read with the server's permissions: the
//! server certificate (expiry, self-signed), the private key's mode and owner, the socket
//! directories' modes, the data directory's mode. The certificate is parsed with x509-parser.

use std::os::unix::fs::MetadataExt;

use serde::Serialize;

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Cert {
    pub path: String,
    pub error: Option<String>,
    pub subject: Option<String>,
    pub issuer: Option<String>,
    /// RFC 3339.
    pub not_after: Option<String>,
    pub days_left: Option<f64>,
    pub self_signed: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FileMode {
    pub path: String,
    pub error: Option<String>,
    /// Octal, e.g. "0600".
    pub mode: Option<String>,
    pub owner_uid: Option<u32>,
    /// The verdict of the check that reads this file (see each function).
    pub ok: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Facts {
    pub server_uid: u32,
    pub cert: Option<Cert>,
    pub key: Option<FileMode>,
    pub socket_dirs: Vec<FileMode>,
    pub data_directory: Option<FileMode>,
}

/// The leaf certificate of a PEM file (the first certificate in it).
pub fn cert_facts(path: &str, pem: &[u8], now_unix: i64) -> Cert {
    let mut c = Cert {
        path: path.into(),
        ..Cert::default()
    };
    let parsed = x509_parser::pem::parse_x509_pem(pem)
        .map_err(|e| format!("not a PEM certificate: {e}"))
        .and_then(|(_, p)| {
            p.parse_x509()
                .map(|x| {
                    (
                        x.subject().to_string(),
                        x.issuer().to_string(),
                        x.validity().not_after.timestamp(),
                    )
                })
                .map_err(|e| format!("not an X.509 certificate: {e}"))
        });
    match parsed {
        Ok((subject, issuer, not_after)) => {
            c.self_signed = Some(subject == issuer);
            c.subject = Some(subject);
            c.issuer = Some(issuer);
            c.not_after = chrono::DateTime::from_timestamp(not_after, 0).map(|t| t.to_rfc3339());
            c.days_left = Some((not_after - now_unix) as f64 / 86_400.0);
        }
        Err(e) => c.error = Some(e),
    }
    c
}

fn stat(path: &str) -> Result<(u32, u32), String> {
    std::fs::metadata(path)
        .map(|m| (m.mode() & 0o7777, m.uid()))
        .map_err(|e| e.to_string())
}

fn file_mode(path: &str, verdict: impl Fn(u32, u32) -> bool) -> FileMode {
    match stat(path) {
        Ok((mode, uid)) => FileMode {
            path: path.into(),
            error: None,
            mode: Some(format!("{mode:04o}")),
            owner_uid: Some(uid),
            ok: Some(verdict(mode, uid)),
        },
        Err(e) => FileMode {
            path: path.into(),
            error: Some(e),
            ..FileMode::default()
        },
    }
}

/// PostgreSQL's own rule for ssl_key_file: owned by the server user and not accessible by group
/// or others, or owned by root and not writable by the group nor accessible by others.
pub fn key_mode_ok(mode: u32, owner: u32, server_uid: u32) -> bool {
    (owner == server_uid && mode & 0o077 == 0) || (owner == 0 && mode & 0o037 == 0)
}

/// A socket directory others can write to lets anyone put a fake server's socket there.
pub fn socket_dir_ok(mode: u32) -> bool {
    mode & 0o002 == 0
}

/// PostgreSQL refuses to start when the data directory is writable by its group or accessible
/// by others (its PG_MODE_MASK_GROUP); 0700, 0750 and 0740 are fine.
pub fn data_dir_ok(mode: u32) -> bool {
    mode & 0o027 == 0
}

/// Reads everything; `ssl` says whether the certificate and key are in use.
pub fn collect(
    ssl: bool,
    cert_file: &str,
    key_file: &str,
    socket_dirs: &str,
    data_directory: &str,
    now_unix: i64,
) -> Facts {
    // SAFETY: getuid cannot fail.
    let server_uid = unsafe { libc::getuid() };
    let cert = ssl.then(|| match std::fs::read(cert_file) {
        Ok(pem) => cert_facts(cert_file, &pem, now_unix),
        Err(e) => Cert {
            path: cert_file.into(),
            error: Some(e.to_string()),
            ..Cert::default()
        },
    });
    let key = ssl.then(|| file_mode(key_file, |m, u| key_mode_ok(m, u, server_uid)));
    let socket_dirs = socket_dirs
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty() && !d.starts_with('@')) // '@…' is Linux's abstract namespace: no directory
        .map(|d| file_mode(d, |m, _| socket_dir_ok(m)))
        .collect();
    Facts {
        server_uid,
        cert,
        key,
        socket_dirs,
        data_directory: Some(file_mode(data_directory, |m, _| data_dir_ok(m))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn openssl_cert(dir: &std::path::Path, days: &str, name: &str) -> Vec<u8> {
        let out = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                days,
                "-subj",
                "/CN=db1.example.com",
            ])
            .arg("-keyout")
            .arg(dir.join(format!("{name}.key")))
            .arg("-out")
            .arg(dir.join(format!("{name}.crt")))
            .output()
            .expect("openssl must be on PATH");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        std::fs::read(dir.join(format!("{name}.crt"))).unwrap()
    }

    #[test]
    fn certificate_expiry_and_self_signed() {
        let dir = std::env::temp_dir().join(format!("pgops-audit-cert-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let now = chrono::Utc::now().timestamp();
        let c = cert_facts("server.crt", &openssl_cert(&dir, "10", "ten"), now);
        assert_eq!(c.error, None);
        let days = c.days_left.unwrap();
        assert!((9.9..=10.01).contains(&days), "{days}");
        assert_eq!(c.self_signed, Some(true));
        assert!(c.subject.as_deref().unwrap().contains("db1.example.com"));
        // A day after expiry the days left are negative.
        let later = cert_facts("server.crt", &openssl_cert(&dir, "1", "one"), now + 2 * 86_400);
        assert!(later.days_left.unwrap() < 0.0);
        let bad = cert_facts("x.crt", b"not a certificate", now);
        assert!(bad.error.unwrap().contains("not a PEM certificate"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn modes_as_postgres_judges_them() {
        assert!(key_mode_ok(0o600, 1000, 1000));
        assert!(key_mode_ok(0o400, 1000, 1000));
        assert!(!key_mode_ok(0o644, 1000, 1000));
        assert!(
            !key_mode_ok(0o640, 1000, 1000),
            "group access for a file the server owns"
        );
        assert!(key_mode_ok(0o640, 0, 1000), "root-owned, group-readable: allowed");
        assert!(!key_mode_ok(0o660, 0, 1000));
        assert!(!key_mode_ok(0o600, 1001, 1000), "owned by someone else");
        assert!(socket_dir_ok(0o755) && socket_dir_ok(0o700));
        assert!(!socket_dir_ok(0o1777) && !socket_dir_ok(0o777));
        assert!(data_dir_ok(0o700) && data_dir_ok(0o750) && data_dir_ok(0o740) && data_dir_ok(0o2700));
        assert!(!data_dir_ok(0o755) && !data_dir_ok(0o777) && !data_dir_ok(0o770) && !data_dir_ok(0o701));
    }

    #[test]
    fn collect_reads_files_and_names_missing_ones() {
        let dir = std::env::temp_dir().join(format!("pgops-audit-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        openssl_cert(&dir, "30", "server");
        let key = dir.join("server.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let d = dir.to_string_lossy();
        let f = collect(
            true,
            &format!("{d}/server.crt"),
            &format!("{d}/server.key"),
            &format!("{d}, /nonexistent-socket-dir, @abstract"),
            &d,
            chrono::Utc::now().timestamp(),
        );
        assert_eq!(f.cert.as_ref().unwrap().self_signed, Some(true));
        let k = f.key.unwrap();
        assert_eq!((k.mode.as_deref(), k.ok), (Some("0644"), Some(false)));
        assert_eq!(f.socket_dirs.len(), 2, "the abstract socket is skipped");
        assert_eq!(f.socket_dirs[0].ok, Some(true));
        assert!(f.socket_dirs[1].error.is_some());
        assert_eq!(f.data_directory.unwrap().mode.as_deref(), Some("0700"));
        let off = collect(false, "x", "y", "", &d, 0);
        assert!(
            off.cert.is_none() && off.key.is_none(),
            "ssl off: certificate and key not read"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
