//! What the security audit learns from the file system, read with the server's permissions: the
//! server certificate (expiry, self-signed), the private key's mode and owner, the socket
//! directories' modes, the data directory's mode and contents, pg_hba.conf's mode, where WAL,
//! tablespaces and logs live (and on which device), the log files' modes, the extension
//! directory's owner and mode, the kernel's FIPS flag. The certificate is parsed with
//! x509-parser.

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

/// A directory the server writes to, and where it really is.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Location {
    /// What the server names it by (`pg_wal`, `pg_tblspc/16390`, the log directory).
    pub name: String,
    /// The path it resolves to (a symbolic link followed).
    pub path: String,
    pub error: Option<String>,
    /// It is a symbolic link (to `path`).
    pub link: bool,
    /// Its resolved path is the data directory or below it.
    pub inside_data: Option<bool>,
    /// It is on the data directory's file system (same device).
    pub same_device: Option<bool>,
}

/// The log files the server wrote (`log_directory`), and those others may read.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LogFiles {
    pub path: String,
    pub error: Option<String>,
    pub files: usize,
    /// Files readable or writable by group or others (at most 20 named).
    pub open: Vec<FileMode>,
}

/// The data directory's top-level entries PostgreSQL does not create, and its symbolic links.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DataEntries {
    pub error: Option<String>,
    pub unexpected: Vec<String>,
    /// `name -> target`.
    pub links: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Facts {
    pub server_uid: u32,
    pub cert: Option<Cert>,
    pub key: Option<FileMode>,
    pub socket_dirs: Vec<FileMode>,
    pub data_directory: Option<FileMode>,
    /// pg_hba.conf: readable by the owner (and the group at most), written by the owner only.
    pub hba_file: Option<FileMode>,
    /// The data directory's PG_VERSION (trimmed), or the error reading it.
    pub pg_version: Option<String>,
    pub pg_version_error: Option<String>,
    /// The data directory has a `base` directory (initdb ran).
    pub base_dir: bool,
    pub wal: Location,
    pub tablespaces: Vec<Location>,
    /// Where the collector writes; None when it is off.
    pub log_dir: Option<Location>,
    pub log_files: Option<LogFiles>,
    /// `SHAREDIR/extension`: root-owned, writable by root only.
    pub extension_dir: Option<FileMode>,
    pub data_entries: DataEntries,
    /// `/proc/sys/crypto/fips_enabled`; None where the kernel has no such flag.
    pub fips: Option<bool>,
    /// The server's own environment (inherited from whoever started it) holds PGPASSWORD.
    pub env_pgpassword: bool,
}

/// What `collect` reads from: the server's settings.
#[derive(Clone, Debug, Default)]
pub struct Inputs<'a> {
    pub ssl: bool,
    pub cert_file: &'a str,
    pub key_file: &'a str,
    pub socket_dirs: &'a str,
    pub data_directory: &'a str,
    pub hba_file: &'a str,
    /// Empty when the logging collector is off.
    pub log_directory: &'a str,
    /// PostgreSQL's share directory (`pg_config --sharedir`); empty when unknown.
    pub sharedir: &'a str,
    pub now_unix: i64,
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

/// CIS 2.5: pg_hba.conf readable by its owner (and group at most), writable by the owner only,
/// owned by the server user or root.
pub fn hba_mode_ok(mode: u32, owner: u32, server_uid: u32) -> bool {
    mode & 0o137 == 0 && (owner == server_uid || owner == 0)
}

/// CIS 2.2: the extension directory owned by root and writable by nobody else (who can write
/// there can add a trusted extension whose script a database owner then runs as superuser).
pub fn extension_dir_ok(mode: u32, owner: u32) -> bool {
    owner == 0 && mode & 0o022 == 0
}

/// What PostgreSQL itself puts at the top of a data directory (initdb, the server, its tools).
const DATA_ENTRIES: [&str; 34] = [
    "PG_VERSION",
    "base",
    "global",
    "pg_commit_ts",
    "pg_dynshmem",
    "pg_logical",
    "pg_multixact",
    "pg_notify",
    "pg_replslot",
    "pg_serial",
    "pg_snapshots",
    "pg_stat",
    "pg_stat_tmp",
    "pg_subtrans",
    "pg_tblspc",
    "pg_twophase",
    "pg_wal",
    "pg_xact",
    "pg_xlog",
    "pg_clog",
    "postgresql.conf",
    "postgresql.auto.conf",
    "pg_hba.conf",
    "pg_ident.conf",
    "postmaster.pid",
    "postmaster.opts",
    "current_logfiles",
    "backup_label",
    "backup_label.old",
    "tablespace_map",
    "tablespace_map.old",
    "standby.signal",
    "recovery.signal",
    "backup_manifest",
];

/// CIS 2.8: the data directory's entries PostgreSQL does not create (`log_dir_name`, the
/// collector's directory when it is relative, is expected too), and its symbolic links.
pub fn data_entries(data_directory: &str, log_dir_name: Option<&str>) -> DataEntries {
    let mut out = DataEntries::default();
    let rd = match std::fs::read_dir(data_directory) {
        Ok(rd) => rd,
        Err(e) => {
            out.error = Some(e.to_string());
            return out;
        }
    };
    let mut names: Vec<(String, std::path::PathBuf)> = rd
        .filter_map(|e| e.ok())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    names.sort();
    for (name, path) in names {
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            let target = std::fs::read_link(&path)
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_else(|e| e.to_string());
            out.links.push(format!("{name} -> {target}"));
        }
        // Temporary files of an ALTER SYSTEM, a pg_rewind or a base backup in progress start so.
        let expected = DATA_ENTRIES.contains(&name.as_str())
            || Some(name.as_str()) == log_dir_name
            || name.starts_with("postgresql.auto.conf.")
            // pgops.apply_hba()'s backups of the file it replaced (its rollback)
            || name.starts_with("pg_hba.conf.pgops-")
            || name.starts_with("pgsql_tmp");
        if !expected {
            out.unexpected.push(name);
        }
    }
    out
}

/// Resolves `path` (relative to the data directory) and says where it is against the data
/// directory: below it, on its device.
pub fn locate(name: &str, path: &str, data_directory: &str) -> Location {
    let full = if path.starts_with('/') {
        std::path::PathBuf::from(path)
    } else {
        std::path::Path::new(data_directory).join(path)
    };
    let link = std::fs::symlink_metadata(&full).is_ok_and(|m| m.file_type().is_symlink());
    let mut loc = Location {
        name: name.into(),
        path: full.to_string_lossy().into_owned(),
        link,
        ..Location::default()
    };
    match (std::fs::canonicalize(&full), std::fs::canonicalize(data_directory)) {
        (Ok(real), Ok(data)) => {
            loc.path = real.to_string_lossy().into_owned();
            loc.inside_data = Some(real.starts_with(&data));
            loc.same_device = match (std::fs::metadata(&real), std::fs::metadata(&data)) {
                (Ok(a), Ok(b)) => Some(a.dev() == b.dev()),
                _ => None,
            };
        }
        (Err(e), _) | (_, Err(e)) => loc.error = Some(e.to_string()),
    }
    loc
}

/// The log files under `dir` and those whose mode lets the group or others in.
pub fn log_files(dir: &str) -> LogFiles {
    let mut out = LogFiles {
        path: dir.into(),
        ..LogFiles::default()
    };
    match std::fs::read_dir(dir) {
        Ok(rd) => {
            let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
            entries.sort();
            for p in entries {
                let Ok(m) = std::fs::symlink_metadata(&p) else { continue };
                if !m.is_file() {
                    continue;
                }
                out.files += 1;
                let mode = m.mode() & 0o7777;
                if mode & 0o077 != 0 && out.open.len() < 20 {
                    out.open.push(FileMode {
                        path: p.to_string_lossy().into_owned(),
                        error: None,
                        mode: Some(format!("{mode:04o}")),
                        owner_uid: Some(m.uid()),
                        ok: Some(false),
                    });
                }
            }
        }
        Err(e) => out.error = Some(e.to_string()),
    }
    out
}

/// Reads everything; `ssl` says whether the certificate and key are in use.
pub fn collect(i: &Inputs) -> Facts {
    // SAFETY: getuid cannot fail.
    let server_uid = unsafe { libc::getuid() };
    let cert = i.ssl.then(|| match std::fs::read(i.cert_file) {
        Ok(pem) => cert_facts(i.cert_file, &pem, i.now_unix),
        Err(e) => Cert {
            path: i.cert_file.into(),
            error: Some(e.to_string()),
            ..Cert::default()
        },
    });
    let key = i
        .ssl
        .then(|| file_mode(i.key_file, |m, u| key_mode_ok(m, u, server_uid)));
    let socket_dirs = i
        .socket_dirs
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty() && !d.starts_with('@')) // '@…' is Linux's abstract namespace: no directory
        .map(|d| file_mode(d, |m, _| socket_dir_ok(m)))
        .collect();
    let data = i.data_directory;
    let in_data = |rel: &str| std::path::Path::new(data).join(rel);
    let pg_version = std::fs::read_to_string(in_data("PG_VERSION")).map(|v| v.trim().to_string());
    let mut tablespaces: Vec<Location> = std::fs::read_dir(in_data("pg_tblspc"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| {
                    let name = format!("pg_tblspc/{}", e.file_name().to_string_lossy());
                    locate(&name, &name, data)
                })
                .collect()
        })
        .unwrap_or_default();
    tablespaces.sort_by(|a, b| a.name.cmp(&b.name));
    let log_dir = (!i.log_directory.is_empty()).then(|| locate("log_directory", i.log_directory, data));
    let log_files = log_dir.as_ref().map(|l| log_files(&l.path));
    let log_dir_name = (!i.log_directory.is_empty() && !i.log_directory.starts_with('/'))
        .then(|| i.log_directory.split('/').next().unwrap_or_default());
    let extension_dir =
        (!i.sharedir.is_empty()).then(|| file_mode(&format!("{}/extension", i.sharedir), extension_dir_ok));
    Facts {
        server_uid,
        cert,
        key,
        socket_dirs,
        data_directory: Some(file_mode(data, |m, _| data_dir_ok(m))),
        hba_file: (!i.hba_file.is_empty()).then(|| file_mode(i.hba_file, |m, u| hba_mode_ok(m, u, server_uid))),
        pg_version_error: pg_version.as_ref().err().map(|e| e.to_string()),
        pg_version: pg_version.ok(),
        base_dir: in_data("base").is_dir(),
        wal: locate("pg_wal", "pg_wal", data),
        tablespaces,
        log_dir,
        log_files,
        extension_dir,
        data_entries: data_entries(data, log_dir_name),
        fips: std::fs::read_to_string("/proc/sys/crypto/fips_enabled")
            .ok()
            .map(|v| v.trim() == "1"),
        // The environment itself: PostgreSQL moves it away from /proc/self/environ's memory to
        // write the process title there.
        env_pgpassword: std::env::var_os("PGPASSWORD").is_some(),
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
        let f = collect(&Inputs {
            ssl: true,
            cert_file: &format!("{d}/server.crt"),
            key_file: &format!("{d}/server.key"),
            socket_dirs: &format!("{d}, /nonexistent-socket-dir, @abstract"),
            data_directory: &d,
            now_unix: chrono::Utc::now().timestamp(),
            ..Inputs::default()
        });
        assert_eq!(f.cert.as_ref().unwrap().self_signed, Some(true));
        let k = f.key.unwrap();
        assert_eq!((k.mode.as_deref(), k.ok), (Some("0644"), Some(false)));
        assert_eq!(f.socket_dirs.len(), 2, "the abstract socket is skipped");
        assert_eq!(f.socket_dirs[0].ok, Some(true));
        assert!(f.socket_dirs[1].error.is_some());
        assert_eq!(f.data_directory.unwrap().mode.as_deref(), Some("0700"));
        let off = collect(&Inputs {
            cert_file: "x",
            key_file: "y",
            data_directory: &d,
            ..Inputs::default()
        });
        assert!(
            off.cert.is_none() && off.key.is_none(),
            "ssl off: certificate and key not read"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn cis_file_rules() {
        let me = 1000;
        assert!(hba_mode_ok(0o600, me, me) && hba_mode_ok(0o640, me, me) && hba_mode_ok(0o400, 0, me));
        assert!(!hba_mode_ok(0o644, me, me), "others may read");
        assert!(!hba_mode_ok(0o660, me, me), "the group may write");
        assert!(!hba_mode_ok(0o700, me, me), "executable");
        assert!(!hba_mode_ok(0o600, 1001, me), "owned by another user");
        assert!(extension_dir_ok(0o755, 0) && extension_dir_ok(0o750, 0));
        assert!(
            !extension_dir_ok(0o755, me),
            "owned by the server user: it could add a trusted extension"
        );
        assert!(!extension_dir_ok(0o775, 0) && !extension_dir_ok(0o757, 0));
    }

    #[test]
    fn data_directory_layout() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("pgops-audit-layout-{}", std::process::id()));
        let data = dir.join("data");
        let elsewhere = dir.join("wal");
        for d in [
            &data,
            &elsewhere,
            &data.join("base"),
            &data.join("pg_tblspc"),
            &data.join("log"),
            &dir.join("ts"),
        ] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(data.join("PG_VERSION"), "17\n").unwrap();
        std::fs::write(data.join("postgresql.conf"), "").unwrap();
        std::fs::write(data.join("notes.txt"), "").unwrap();
        std::os::unix::fs::symlink(&elsewhere, data.join("pg_wal")).unwrap();
        std::fs::create_dir_all(data.join("inside_ts")).unwrap();
        std::os::unix::fs::symlink(data.join("inside_ts"), data.join("pg_tblspc/16390")).unwrap();
        std::os::unix::fs::symlink(dir.join("ts"), data.join("pg_tblspc/16391")).unwrap();
        let log = data.join("log/postgresql-Mon.log");
        std::fs::write(&log, "x").unwrap();
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(data.join("log/postgresql-Tue.log"), "x").unwrap();
        std::fs::set_permissions(
            data.join("log/postgresql-Tue.log"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let d = data.to_string_lossy().into_owned();
        let f = collect(&Inputs {
            data_directory: &d,
            log_directory: "log",
            ..Inputs::default()
        });
        assert_eq!((f.pg_version.as_deref(), f.base_dir), (Some("17"), true));
        assert!(f.wal.link && f.wal.inside_data == Some(false), "{:?}", f.wal);
        assert_eq!(
            f.wal.same_device,
            Some(true),
            "a link to the same file system is still the same device"
        );
        assert_eq!(f.tablespaces.len(), 2);
        assert_eq!(f.tablespaces[0].inside_data, Some(true), "{:?}", f.tablespaces[0]);
        assert_eq!(f.tablespaces[1].inside_data, Some(false));
        let l = f.log_dir.unwrap();
        assert_eq!(l.inside_data, Some(true));
        let lf = f.log_files.unwrap();
        assert_eq!(lf.files, 2);
        assert_eq!(lf.open.len(), 1);
        assert!(lf.open[0].path.ends_with("postgresql-Mon.log"));
        assert_eq!(
            f.data_entries.unexpected,
            vec!["inside_ts".to_string(), "notes.txt".to_string()]
        );
        assert_eq!(f.data_entries.links.len(), 1);
        assert!(f.data_entries.links[0].starts_with("pg_wal -> "));
        // An absolute log directory outside, a missing PG_VERSION.
        std::fs::remove_file(data.join("PG_VERSION")).unwrap();
        let out = dir.join("ts").to_string_lossy().into_owned();
        let f = collect(&Inputs {
            data_directory: &d,
            log_directory: &out,
            ..Inputs::default()
        });
        assert!(f.pg_version.is_none() && f.pg_version_error.is_some());
        assert_eq!(f.log_dir.unwrap().inside_data, Some(false));
        assert!(
            f.data_entries.unexpected.contains(&"log".to_string()),
            "log/ is the collector's only when it writes there"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
