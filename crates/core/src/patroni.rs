//! Patroni as pgops sees it in etcd — read, never written: the members and their connection
//! URLs, the leader, whether Patroni's dynamic configuration sets `postgresql.pg_hba`, which
//! member this server is, and the connections a pg_hba.conf must keep for Patroni to work
//! (its superuser and rewind connections to any member, replication between members).

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Code, Error, Result};
use crate::hba::file::{ActiveLine, first_match};
use crate::hba::line::Conn;

/// One member, from its key `<namespace>/<scope>/members/<name>`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub name: String,
    pub conn_url: String,
    /// From `conn_url`: where other members and Patroni connect to this one.
    pub host: String,
    pub port: u16,
    pub database: String,
    pub role: String,
    pub state: String,
    /// `host` resolved by the etcd worker (backends never resolve names: a slow resolver must
    /// not stall them).
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
}

/// What the etcd worker last read of Patroni's keys (kept in `pg_stat_tmp/pgops.patroni.json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct View {
    /// The key prefix read: `<namespace>/<scope>/`.
    pub prefix: String,
    pub members: Vec<Member>,
    pub leader: Option<String>,
    /// Patroni's dynamic configuration (`<prefix>config`) sets `postgresql.pg_hba`: Patroni
    /// writes pg_hba.conf.
    pub pg_hba_in_config: bool,
    /// The member this server is (its conn_url names this host and port).
    pub me: Option<String>,
    /// When it was read (Unix seconds).
    pub read_at: i64,
}

impl View {
    /// Patroni runs this cluster: it has members in etcd.
    pub fn present(&self) -> bool {
        !self.members.is_empty()
    }
}

/// The key prefix of Patroni's keys for a cluster: `<namespace>/<scope>/` (Patroni's namespace
/// is written with or without its trailing slash: `/service/` and `/service` are the same).
pub fn prefix(namespace: &str, scope: &str) -> Result<String> {
    let ns = namespace.trim().trim_end_matches('/');
    let scope = scope.trim();
    if scope.is_empty() || scope.contains('/') || scope.chars().any(char::is_control) {
        return Err(Error::new(
            Code::InvalidParameterValue,
            format!("Patroni scope {scope:?} cannot be a key segment"),
        )
        .hint("Set pgops.patroni_scope to Patroni's scope (a name without '/')."));
    }
    if !ns.is_empty() && !ns.starts_with('/') {
        return Err(Error::new(
            Code::InvalidParameterValue,
            format!("Patroni namespace {namespace:?} must start with '/'"),
        )
        .hint("Set pgops.patroni_namespace as in Patroni's configuration (namespace: /service/)."));
    }
    Ok(format!("{ns}/{scope}/"))
}

/// Host, port and database of a libpq URL (`postgres://host:port/db`).
pub fn conn_target(conn_url: &str) -> Option<(String, u16, String)> {
    let u = url::Url::parse(conn_url).ok()?;
    if !["postgres", "postgresql"].contains(&u.scheme()) {
        return None;
    }
    let host = match u.host()? {
        url::Host::Domain(d) => d.to_string(),
        url::Host::Ipv4(a) => a.to_string(),
        url::Host::Ipv6(a) => a.to_string(),
    };
    let db = u.path().trim_start_matches('/');
    Some((
        host,
        u.port().unwrap_or(5432),
        if db.is_empty() {
            "postgres".into()
        } else {
            db.to_string()
        },
    ))
}

/// The view of the keys read under `prefix`: (key, value) pairs of `<prefix>members/*`,
/// `<prefix>leader` and `<prefix>config`. Keys that are not Patroni's, or do not parse, are left
/// out: one broken member key does not hide the others.
pub fn parse(prefix: &str, kvs: &[(String, String)], read_at: i64) -> View {
    let mut v = View {
        prefix: prefix.to_string(),
        read_at,
        ..View::default()
    };
    for (key, value) in kvs {
        let Some(rest) = key.strip_prefix(prefix) else { continue };
        if let Some(name) = rest.strip_prefix("members/") {
            if name.is_empty() || name.contains('/') || name.chars().any(char::is_control) {
                continue;
            }
            let Ok(j) = serde_json::from_str::<Value>(value) else {
                continue;
            };
            let conn_url = j["conn_url"].as_str().unwrap_or_default().to_string();
            let Some((host, port, database)) = conn_target(&conn_url) else {
                continue;
            };
            v.members.push(Member {
                name: name.to_string(),
                conn_url,
                host,
                port,
                database,
                role: j["role"].as_str().unwrap_or_default().to_string(),
                state: j["state"].as_str().unwrap_or_default().to_string(),
                addresses: vec![],
            });
        } else if rest == "leader" {
            v.leader = Some(value.trim().to_string()).filter(|l| !l.is_empty());
        } else if rest == "config" {
            let j: Value = serde_json::from_str(value).unwrap_or(Value::Null);
            v.pg_hba_in_config = j["postgresql"]["pg_hba"].as_array().is_some_and(|a| !a.is_empty());
        }
    }
    v.members.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

/// Resolves each member's host (address literals at once; host names for the first
/// `max_lookups` members that need one, the others left without addresses).
pub fn resolve_members(v: &mut View, max_lookups: usize) {
    let mut lookups = 0;
    for m in &mut v.members {
        if let Ok(ip) = m.host.parse::<IpAddr>() {
            m.addresses = vec![ip];
        } else if lookups < max_lookups {
            lookups += 1;
            m.addresses = resolve(&m.host);
        }
    }
}

/// A name pgops may take as its instance name: what etcd keys and the HBA header accept.
pub fn usable_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// The member this server is: the one whose conn_url names this server's port and a host that is
/// this machine (`is_local`). None when no member or more than one matches.
pub fn find_me(members: &[Member], port: u16, is_local: impl Fn(&Member) -> bool) -> Option<String> {
    let mut hits = members
        .iter()
        .filter(|m| m.port == port && usable_name(&m.name) && is_local(m));
    let first = hits.next()?;
    hits.next().is_none().then(|| first.name.clone())
}

/// Whether a member runs on this machine: its conn_url host is this host name, or one of its
/// addresses (`resolve_members`) is one this machine can bind to (a local interface's, loopback
/// included). No name is looked up here.
pub fn is_local(m: &Member, hostname: &str) -> bool {
    m.host.eq_ignore_ascii_case(hostname)
        || m.host.eq_ignore_ascii_case("localhost")
        || m.addresses.iter().any(|ip| std::net::UdpSocket::bind((*ip, 0)).is_ok())
}

/// The addresses of a host name or an address literal (none when it does not resolve).
pub fn resolve(host: &str) -> Vec<IpAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return vec![ip];
    }
    use std::net::ToSocketAddrs;
    (host, 0)
        .to_socket_addrs()
        .map(|a| a.map(|s| s.ip()).collect())
        .unwrap_or_default()
}

/// One connection Patroni makes that the file must admit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    pub member: String,
    pub address: IpAddr,
    pub user: String,
    pub database: String,
    pub purpose: &'static str,
}

/// The connections Patroni makes to this server: from each member's address, its superuser and
/// rewind users to the member's database, and replication; and Patroni's own connection to the
/// server it runs beside, over TCP to localhost (unless its `use_unix_socket` is on: then the
/// local-socket guard covers it).
pub fn probes(members: &[Member], superusers: &[String], replication: &[String]) -> Vec<Probe> {
    let mut addresses: Vec<(String, IpAddr, String)> = members
        .iter()
        .flat_map(|m| m.addresses.iter().map(|a| (m.name.clone(), *a, m.database.clone())))
        .collect();
    if !members.is_empty() {
        addresses.push((
            "(Patroni's local connection)".into(),
            IpAddr::from([127, 0, 0, 1]),
            "postgres".into(),
        ));
    }
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for (member, address, database) in &addresses {
        for u in superusers {
            if seen.insert((*address, u.clone(), database.clone())) {
                out.push(Probe {
                    member: member.clone(),
                    address: *address,
                    user: u.clone(),
                    database: database.clone(),
                    purpose: "superuser/rewind",
                });
            }
        }
        for u in replication.iter().filter(|_| !member.starts_with('(')) {
            if seen.insert((*address, u.clone(), "replication".to_string())) {
                out.push(Probe {
                    member: member.clone(),
                    address: *address,
                    user: u.clone(),
                    database: "replication".into(),
                    purpose: "replication",
                });
            }
        }
    }
    out
}

/// Each probe the file denies (a reject line, no line, a line that cannot be simulated), with why.
/// `ssl`: the server has ssl on, so Patroni's connections (libpq's sslmode=prefer) use it.
pub fn denied(active: &[ActiveLine], probes: &[Probe], ssl: bool) -> Vec<(Probe, String)> {
    let none = BTreeSet::new();
    probes
        .iter()
        .filter_map(|p| {
            let c = Conn {
                user: &p.user,
                database: &p.database,
                address: Some(p.address),
                ssl,
                groups: &none,
            };
            let why = match first_match(active, &c) {
                Ok(Some((_, _, l))) if l.method != "reject" => return None,
                Ok(Some((n, _, _))) => format!("hits reject on line {n}"),
                Ok(None) => "matches no line".to_string(),
                Err(e) => format!("cannot be simulated ({})", e.message),
            };
            Some((p.clone(), why))
        })
        .collect()
}

/// Refuses a file that denies any of Patroni's connections.
pub fn check(active: &[ActiveLine], probes: &[Probe], ssl: bool) -> Result<()> {
    let d = denied(active, probes, ssl);
    let Some((p, why)) = d.first() else { return Ok(()) };
    Err(Error::new(
        Code::ObjectNotInPrerequisiteState,
        format!(
            "refusing a pg_hba.conf that locks Patroni out: {} as \"{}\" to \"{}\" from member {} ({}) {why}{}",
            p.purpose,
            p.user,
            p.database,
            p.member,
            p.address,
            if d.len() > 1 {
                format!(" (and {} more)", d.len() - 1)
            } else {
                String::new()
            }
        ),
    )
    .hint(
        "Add rules that admit Patroni's superuser and replication users from every member's address \
         (README, \"Running under Patroni\"); pgops.hba_lint lists each denied connection.",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hba::file::parse_file;

    fn kv(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    fn view() -> View {
        parse(
            "/pg/pg-test/",
            &[
                kv(
                    "/pg/pg-test/members/pg-test-1",
                    r#"{"conn_url":"postgres://127.0.0.1:5433/postgres","api_url":"http://127.0.0.1:8009/patroni","state":"running","role":"primary","version":"4.1.5"}"#,
                ),
                kv(
                    "/pg/pg-test/members/pg-test-2",
                    r#"{"conn_url":"postgresql://[::1]:5434/","state":"streaming","role":"replica"}"#,
                ),
                kv("/pg/pg-test/members/broken", "{not json"),
                kv("/pg/pg-test/members/nourl", r#"{"role":"replica"}"#),
                kv(
                    "/pg/pg-test/members/bad\nname",
                    r#"{"conn_url":"postgres://127.0.0.1:5435/postgres"}"#,
                ),
                kv("/pg/pg-test/leader", "pg-test-1"),
                kv(
                    "/pg/pg-test/config",
                    r#"{"ttl":30,"postgresql":{"use_pg_rewind":true,"pg_hba":["local all all trust"]}}"#,
                ),
                kv("/pg/pg-test/pgops/members/x", "{}"),
                kv(
                    "/pg/other/members/pg-other-1",
                    r#"{"conn_url":"postgres://10.0.0.1:5432/postgres"}"#,
                ),
            ],
            7,
        )
    }

    #[test]
    fn members_leader_and_config_are_read_and_broken_keys_skipped() {
        let v = view();
        let names: Vec<&str> = v.members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["pg-test-1", "pg-test-2"]);
        assert_eq!(
            (
                v.members[0].host.as_str(),
                v.members[0].port,
                v.members[0].database.as_str()
            ),
            ("127.0.0.1", 5433, "postgres")
        );
        assert_eq!((v.members[1].host.as_str(), v.members[1].port), ("::1", 5434));
        assert_eq!(v.members[1].database, "postgres");
        assert_eq!(v.leader.as_deref(), Some("pg-test-1"));
        assert!(v.pg_hba_in_config && v.present());
        let v2 = parse(
            "/pg/pg-test/",
            &[kv("/pg/pg-test/config", r#"{"postgresql":{"pg_hba":[]}}"#)],
            0,
        );
        assert!(!v2.pg_hba_in_config && !v2.present());
    }

    #[test]
    fn the_prefix_takes_patronis_namespace_spellings() {
        assert_eq!(prefix("/service/", "batman").unwrap(), "/service/batman/");
        assert_eq!(prefix("/pg", "pg-test").unwrap(), "/pg/pg-test/");
        assert!(prefix("pg", "x").is_err());
        assert!(prefix("/pg", "a/b").is_err());
        assert!(prefix("/pg", " ").is_err());
    }

    #[test]
    fn this_member_is_found_by_port_and_a_local_host() {
        let v = view();
        let local = |m: &Member| m.host == "127.0.0.1" || m.host == "::1";
        assert_eq!(find_me(&v.members, 5433, local).as_deref(), Some("pg-test-1"));
        assert_eq!(find_me(&v.members, 5434, local).as_deref(), Some("pg-test-2"));
        assert_eq!(find_me(&v.members, 5435, local), None);
        assert_eq!(find_me(&v.members, 5433, |_| false), None, "another host's member");
        let mut twice = v.members.clone();
        twice.push(Member {
            name: "pg-test-3".into(),
            port: 5433,
            host: "127.0.0.1".into(),
            ..Member::default()
        });
        assert_eq!(find_me(&twice, 5433, local), None, "ambiguous");
        assert!(!usable_name("a/b") && !usable_name("..") && !usable_name("") && usable_name("pg-test-1"));
    }

    #[test]
    fn local_hosts_are_the_ones_this_machine_can_bind() {
        let m = |host: &str| {
            let mut v = View {
                members: vec![Member {
                    host: host.into(),
                    ..Member::default()
                }],
                ..View::default()
            };
            resolve_members(&mut v, 1);
            v.members.remove(0)
        };
        assert!(is_local(&m("127.0.0.1"), "h") && is_local(&m("localhost"), "h") && is_local(&m("H"), "h"));
        assert!(!is_local(&m("192.0.2.1"), "h"), "TEST-NET-1 is never local");
        assert!(!is_local(&m("no-such-host.invalid"), "h"));
    }

    #[test]
    fn a_file_that_denies_patroni_is_refused_and_one_that_admits_it_is_not() {
        let mut v = view();
        v.members[1].host = "127.0.0.1".into();
        resolve_members(&mut v, 0);
        assert_eq!(v.members[0].addresses, vec!["127.0.0.1".parse::<IpAddr>().unwrap()]);
        let p = probes(&v.members, &["postgres".into()], &["replicator".into()]);
        assert_eq!(p.len(), 2, "one address: one probe per user and purpose");
        assert!(
            probes(&[], &["postgres".into()], &[]).is_empty(),
            "no Patroni, no probe"
        );
        let mut far = v.members.clone();
        far[0].addresses = vec!["10.0.0.1".parse().unwrap()];
        far[1].addresses = vec![];
        let p2 = probes(&far, &["postgres".into()], &["replicator".into()]);
        assert_eq!(
            p2.iter()
                .map(|p| (p.address.to_string(), p.database.as_str()))
                .collect::<Vec<_>>(),
            [
                ("10.0.0.1".to_string(), "postgres"),
                ("10.0.0.1".to_string(), "replication"),
                ("127.0.0.1".to_string(), "postgres")
            ],
            "each member's address, and Patroni's own local TCP connection (superuser only)"
        );
        // Pigsty's defaults with a local trust rule: postgres over TCP matches nothing.
        let locked = parse_file(
            "local all postgres ident\n\
             host replication replicator 127.0.0.1/32 scram-sha-256\n\
             host all all 0.0.0.0/0 reject\n",
        )
        .unwrap();
        let d = denied(&locked, &p, false);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].0.user, "postgres");
        assert!(d[0].1.contains("reject on line 3"), "{}", d[0].1);
        let e = check(&locked, &p, false).unwrap_err();
        assert!(
            e.message.contains("locks Patroni out") && e.message.contains("pg-test-1"),
            "{e}"
        );
        assert_eq!(e.code, Code::ObjectNotInPrerequisiteState);
        let open = parse_file(
            "local all postgres ident\n\
             host all postgres 127.0.0.1/32 scram-sha-256\n\
             host replication replicator 127.0.0.1/32 scram-sha-256\n",
        )
        .unwrap();
        check(&open, &p, false).unwrap();
        // hostssl admits only when the server has ssl on.
        let ssl_only = parse_file(
            "hostssl all postgres 127.0.0.1/32 scram-sha-256\n\
             hostssl replication replicator 127.0.0.1/32 scram-sha-256\n",
        )
        .unwrap();
        assert!(check(&ssl_only, &p, false).is_err());
        check(&ssl_only, &p, true).unwrap();
        let none = parse_file("local all all trust\n").unwrap();
        assert_eq!(denied(&none, &p, false).len(), 2);
    }
}
