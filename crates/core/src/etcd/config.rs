//! From the `pgops.etcd_*` settings to what the pusher does, with every mistake named. Pure
//! (the password file is read through a function the caller passes).

use std::time::Duration;

use super::client::Config;
use super::state::{member_key, members_prefix};
use crate::error::{Code, Error, Result};

/// The `pgops.etcd_*` settings as the extension read them.
#[derive(Clone, Debug, PartialEq)]
pub struct EtcdSettings {
    pub endpoints: Vec<String>,
    pub prefix: String,
    pub ttl_s: i64,
    pub interval_s: i64,
    pub timeout_ms: i64,
    pub username: Option<String>,
    pub password_file: Option<String>,
    pub cacert: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
}

/// What the pusher works with when publishing is on.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub client: Config,
    pub ttl: Duration,
    pub interval: Duration,
    pub key: String,
    pub members_prefix: String,
}

/// Why publishing cannot go on as configured is an `Error`: `Code::IoError` when a file could
/// not be read or was empty (a password being rotated in place, say) — a running session keeps
/// its credentials rather than drop the key; any other code turns publishing off.
pub fn is_transient(e: &Error) -> bool {
    e.code == Code::IoError
}

fn transient(message: String) -> Error {
    Error::new(Code::IoError, message)
}

/// A file as read by the server's OS user: its bytes and its permission bits.
pub type ReadFile<'a> = &'a dyn Fn(&str) -> Result<(Vec<u8>, u32), String>;

/// Reads a file with std::fs (the server's permissions).
pub fn read_file(path: &str) -> Result<(Vec<u8>, u32), String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    Ok((bytes, meta.permissions().mode() & 0o7777))
}

/// None when publishing is off (no endpoints); an error naming the setting otherwise.
pub fn plan(s: &EtcdSettings, cluster: &str, instance: &str, read: ReadFile) -> Result<Option<Plan>> {
    if s.endpoints.is_empty() {
        return Ok(None);
    }
    for e in &s.endpoints {
        if !(e.starts_with("http://") || e.starts_with("https://")) || e.len() <= "https://".len() {
            return Err(Error::invalid(format!(
                "pgops.etcd_endpoints: \"{e}\" is not an http:// or https:// URL (e.g. https://10.10.10.10:2379)"
            )));
        }
        if e.starts_with("https://") && s.cacert.is_none() {
            return Err(Error::invalid(format!(
                "pgops.etcd_endpoints: \"{e}\" is https but pgops.etcd_cacert is empty; set it to the CA file that signed etcd's certificate"
            )));
        }
    }
    if s.ttl_s < 2 * s.interval_s {
        return Err(Error::invalid(format!(
            "pgops.etcd_ttl ({} s) must be at least twice pgops.etcd_interval ({} s): otherwise one missed keepalive lets the key expire",
            s.ttl_s, s.interval_s
        )));
    }
    if s.timeout_ms > s.interval_s * 1000 {
        return Err(Error::invalid(format!(
            "pgops.etcd_timeout ({} ms) must not exceed pgops.etcd_interval ({} s)",
            s.timeout_ms, s.interval_s
        )));
    }
    let password = match (&s.username, &s.password_file) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(Error::invalid(String::from(
                "pgops.etcd_username is set but pgops.etcd_password_file is empty; put the password in a file only the server's OS user can read and name it there",
            )));
        }
        (None, Some(_)) => {
            return Err(Error::invalid(String::from(
                "pgops.etcd_password_file is set but pgops.etcd_username is empty",
            )));
        }
        (Some(user), Some(path)) => {
            // The password goes to /v3/auth/authenticate: never in clear text across a network.
            if let Some(e) = s.endpoints.iter().find(|e| e.starts_with("http://") && !loopback(e)) {
                return Err(Error::invalid(format!(
                    "pgops.etcd_username \"{user}\": {e} is plain http, so the password would cross the network in clear text; use https:// endpoints (with pgops.etcd_cacert)"
                )));
            }
            Some(password_from(path, read)?)
        }
    };
    match (&s.cert, &s.key) {
        (Some(_), None) | (None, Some(_)) => {
            return Err(Error::invalid(String::from(
                "pgops.etcd_cert and pgops.etcd_key go together: set both or neither",
            )));
        }
        (Some(_), Some(k)) => private_file("pgops.etcd_key", k, read).map(|_| ())?,
        (None, None) => {}
    }
    let key = member_key(&s.prefix, cluster, instance)?;
    let members = members_prefix(&s.prefix, cluster)?;
    Ok(Some(Plan {
        client: Config {
            endpoints: s.endpoints.clone(),
            timeout: Duration::from_millis(s.timeout_ms.max(1) as u64),
            username: s.username.clone(),
            password,
            ca_file: s.cacert.clone(),
            cert_file: s.cert.clone(),
            key_file: s.key.clone(),
        },
        ttl: Duration::from_secs(s.ttl_s as u64),
        interval: Duration::from_secs(s.interval_s as u64),
        key,
        members_prefix: members,
    }))
}

/// Whether an endpoint URL names this machine (127.0.0.0/8, ::1, localhost).
fn loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = if let Some(v6) = rest.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        rest.split([':', '/']).next().unwrap_or("")
    };
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Reads a secret file, refusing one that the group or others may read (as libpq does .pgpass).
fn private_file(setting: &str, path: &str, read: ReadFile) -> Result<Vec<u8>> {
    let (bytes, mode) = read(path).map_err(|e| transient(format!("{setting}: cannot read {path}: {e}")))?;
    if mode & 0o077 != 0 {
        return Err(Error::invalid(format!(
            "{setting}: {path} is accessible by group or others (mode {mode:04o}); run chmod 0600 {path}"
        )));
    }
    Ok(bytes)
}

fn password_from(path: &str, read: ReadFile) -> Result<String> {
    let bytes = private_file("pgops.etcd_password_file", path, read)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::invalid(format!("pgops.etcd_password_file: {path} is not UTF-8")))?;
    let first = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if first.is_empty() {
        return Err(transient(format!(
            "pgops.etcd_password_file: the first line of {path} is empty; it must hold the password"
        )));
    }
    Ok(first.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> EtcdSettings {
        EtcdSettings {
            endpoints: vec!["http://127.0.0.1:2379".into(), "http://127.0.0.2:2379".into()],
            prefix: "/pg".into(),
            ttl_s: 30,
            interval_s: 10,
            timeout_ms: 2000,
            username: None,
            password_file: None,
            cacert: None,
            cert: None,
            key: None,
        }
    }

    fn files(path: &str) -> Result<(Vec<u8>, u32), String> {
        match path {
            "/secret/pw" => Ok((b"s3cret\nignored\n".to_vec(), 0o600)),
            "/secret/open" => Ok((b"s3cret\n".to_vec(), 0o644)),
            "/secret/empty" => Ok((b"\n".to_vec(), 0o600)),
            "/secret/key.pem" => Ok((b"-----BEGIN".to_vec(), 0o400)),
            _ => Err("No such file or directory (os error 2)".into()),
        }
    }

    #[test]
    fn off_without_endpoints_and_a_plan_with_them() {
        let mut s = settings();
        let p = plan(&s, "pg-meta", "pg-meta-1", &files).unwrap().unwrap();
        assert_eq!(p.key, "/pg/pg-meta/pgops/members/pg-meta-1");
        assert_eq!(p.members_prefix, "/pg/pg-meta/pgops/members/");
        assert_eq!((p.ttl.as_secs(), p.interval.as_secs()), (30, 10));
        assert_eq!(p.client.timeout, Duration::from_secs(2));
        s.endpoints.clear();
        assert_eq!(plan(&s, "c", "i", &files), Ok(None));
    }

    #[test]
    fn the_password_comes_from_a_private_file_only() {
        let mut s = settings();
        s.username = Some("pg-meta".into());
        s.password_file = Some("/secret/pw".into());
        let p = plan(&s, "c", "i", &files).unwrap().unwrap();
        assert_eq!(p.client.password.as_deref(), Some("s3cret"));
        for (file, want) in [
            ("/secret/open", "mode 0644); run chmod 0600 /secret/open"),
            ("/secret/empty", "first line of /secret/empty is empty"),
            ("/nope", "cannot read /nope: No such file"),
        ] {
            s.password_file = Some(file.into());
            let e = plan(&s, "c", "i", &files).unwrap_err();
            assert!(
                e.message.starts_with("pgops.etcd_password_file") && e.message.contains(want),
                "{e}"
            );
            assert!(!e.message.contains("s3cret"), "the password never appears in an error");
            assert_eq!(
                is_transient(&e),
                !file.ends_with("open"),
                "a bad mode is no passing glitch: {e}"
            );
        }
        s.password_file = None;
        assert!(
            plan(&s, "c", "i", &files)
                .unwrap_err()
                .message
                .contains("pgops.etcd_password_file is empty")
        );
        // Over plain http only to this machine.
        s.password_file = Some("/secret/pw".into());
        s.endpoints = vec!["http://10.10.10.10:2379".into()];
        let e = plan(&s, "c", "i", &files).unwrap_err();
        assert!(
            e.message.contains("http://10.10.10.10:2379 is plain http") && e.message.contains("https://"),
            "{e}"
        );
        for ok in ["http://127.0.0.1:2379", "http://localhost:2379", "http://[::1]:2379"] {
            s.endpoints = vec![ok.into()];
            assert!(plan(&s, "c", "i", &files).is_ok(), "{ok}");
        }
    }

    #[test]
    fn mistakes_are_named() {
        let cases: Vec<(Box<dyn Fn(&mut EtcdSettings)>, &str)> = vec![
            (
                Box::new(|s| s.endpoints = vec!["127.0.0.1:2379".into()]),
                "is not an http:// or https:// URL",
            ),
            (
                Box::new(|s| s.endpoints = vec!["https://e:2379".into()]),
                "pgops.etcd_cacert is empty",
            ),
            (
                Box::new(|s| s.ttl_s = 15),
                "pgops.etcd_ttl (15 s) must be at least twice",
            ),
            (Box::new(|s| s.timeout_ms = 20_000), "pgops.etcd_timeout (20000 ms)"),
            (Box::new(|s| s.cert = Some("/c.pem".into())), "set both or neither"),
            (Box::new(|s| s.prefix = "pg".into()), "must start with /"),
            (
                Box::new(|s| s.password_file = Some("/secret/pw".into())),
                "pgops.etcd_username is empty",
            ),
        ];
        for (change, want) in cases {
            let mut s = settings();
            change(&mut s);
            let e = plan(&s, "c", "i", &files).unwrap_err();
            assert!(e.message.contains(want), "{e} / {want}");
        }
        let e = plan(&settings(), "c", "a/b", &files).unwrap_err();
        assert!(e.message.contains("instance name \"a/b\""), "{e}");
        let mut s = settings();
        s.endpoints = vec!["https://e:2379".into()];
        s.cacert = Some("/ca.pem".into());
        s.cert = Some("/c.pem".into());
        s.key = Some("/secret/key.pem".into());
        assert!(plan(&s, "c", "i", &files).unwrap().is_some());
    }
}
