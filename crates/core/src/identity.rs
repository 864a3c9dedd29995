//! Who this instance is: cluster and instance names, and its role.
//!
//! Pure naming rules; the extension's `identity::current()` reads the server's settings.

/// Cluster name: the `pgops.cluster_name` setting, else the server's `cluster_name`, else `pg`.
pub fn cluster_name(setting: Option<&str>, server_cluster_name: Option<&str>) -> String {
    [setting, server_cluster_name]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|s| !s.is_empty())
        .unwrap_or("pg")
        .to_string()
}

/// Instance name: the `pgops.instance_name` setting, else the Patroni member name of this server
/// (read from Patroni's keys in etcd), else `<cluster>-<hostname>` on the default port 5432 and
/// `<cluster>-<hostname>-<port>` on any other, so two servers on one host (two Patroni members, a
/// test replica) never default to the same name. A fully qualified host name contributes only its
/// first label (`db1.example.com` → `db1`).
pub fn instance_name(
    setting: Option<&str>,
    patroni_member: Option<&str>,
    cluster: &str,
    hostname: &str,
    port: i32,
) -> String {
    if let Some(s) = setting.map(str::trim).filter(|s| !s.is_empty()) {
        return s.to_string();
    }
    if let Some(m) = patroni_member.filter(|m| crate::patroni::usable_name(m)) {
        return m.to_string();
    }
    let host = hostname.trim().split('.').next().unwrap_or("").trim();
    let host = if host.is_empty() { "localhost" } else { host };
    if port == 5432 {
        format!("{cluster}-{host}")
    } else {
        format!("{cluster}-{host}-{port}")
    }
}

/// The role an instance plays, as Pigsty names it.
pub fn role_name(in_recovery: bool) -> &'static str {
    if in_recovery { "replica" } else { "primary" }
}

/// The machine's host name, as the kernel reports it.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_name_prefers_setting_then_server_then_pg() {
        assert_eq!(cluster_name(Some("pg-meta"), Some("other")), "pg-meta");
        assert_eq!(cluster_name(Some("  "), Some("pg-test")), "pg-test");
        assert_eq!(cluster_name(None, Some("")), "pg");
        assert_eq!(cluster_name(None, None), "pg");
    }

    #[test]
    fn instance_name_defaults_to_cluster_dash_short_hostname_and_a_non_default_port() {
        assert_eq!(
            instance_name(None, None, "pg-meta", "node1.example.com", 5432),
            "pg-meta-node1"
        );
        assert_eq!(
            instance_name(Some("pg-meta-1"), Some("m"), "pg-meta", "node1", 5433),
            "pg-meta-1"
        );
        assert_eq!(instance_name(Some(""), None, "pg", "", 5432), "pg-localhost");
        // Two servers on one host: distinct names by default.
        assert_ne!(
            instance_name(None, None, "pg-meta", "node1", 5432),
            instance_name(None, None, "pg-meta", "node1", 5433)
        );
        assert_eq!(
            instance_name(None, None, "pg-meta", "node1", 5433),
            "pg-meta-node1-5433"
        );
        // Under Patroni: the member name, unless the setting names the instance or the member
        // name could not be a key segment.
        assert_eq!(
            instance_name(None, Some("pg-meta-2"), "pg-meta", "node1", 5433),
            "pg-meta-2"
        );
        assert_eq!(
            instance_name(None, Some("a/b"), "pg-meta", "node1", 5433),
            "pg-meta-node1-5433"
        );
    }

    #[test]
    fn role_follows_recovery() {
        assert_eq!(role_name(false), "primary");
        assert_eq!(role_name(true), "replica");
    }

    #[test]
    fn hostname_is_not_empty() {
        assert!(!hostname().is_empty());
    }
}
