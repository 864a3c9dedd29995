//! One pg_hba.conf line: parse, print, and decide whether a connection matches it. Pure.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::error::Result;
use crate::{bail_invalid, invalid};
use ipnet::IpNet;

/// The connection types PostgreSQL accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnType {
    Local,
    Host,
    HostSsl,
    HostNoSsl,
    HostGssEnc,
    HostNoGssEnc,
}

impl ConnType {
    pub fn parse(s: &str) -> Option<ConnType> {
        Some(match s {
            "local" => ConnType::Local,
            "host" => ConnType::Host,
            "hostssl" => ConnType::HostSsl,
            "hostnossl" => ConnType::HostNoSsl,
            "hostgssenc" => ConnType::HostGssEnc,
            "hostnogssenc" => ConnType::HostNoGssEnc,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ConnType::Local => "local",
            ConnType::Host => "host",
            ConnType::HostSsl => "hostssl",
            ConnType::HostNoSsl => "hostnossl",
            ConnType::HostGssEnc => "hostgssenc",
            ConnType::HostNoGssEnc => "hostnogssenc",
        }
    }
}

/// Authentication methods PostgreSQL 13–18 accept.
pub const METHODS: &[&str] = &[
    "trust",
    "reject",
    "scram-sha-256",
    "md5",
    "password",
    "gss",
    "sspi",
    "ident",
    "peer",
    "pam",
    "ldap",
    "radius",
    "cert",
    "oauth",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    Net(IpNet),
    /// `all`, `samehost`, `samenet`, or a host name: accepted, but not simulated.
    Keyword(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub conn: ConnType,
    pub databases: Vec<String>,
    pub users: Vec<String>,
    pub address: Option<Address>,
    pub method: String,
    pub options: Vec<String>,
}

/// Splits a line into fields: whitespace separates, `"…"` quotes (`""` is a quote), `#` starts a
/// comment outside quotes. Quoted text keeps its quotes so `"all"` stays distinct from `all`.
pub fn tokens(line: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                cur.push('"');
                if quoted && chars.peek() == Some(&'"') {
                    cur.push('"');
                    chars.next();
                } else {
                    quoted = !quoted;
                }
            }
            '#' if !quoted => break,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if quoted {
        bail_invalid!("unterminated quote");
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

/// Splits a comma list, honouring quotes.
pub fn list(field: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in field.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Quotes a database or role name for pg_hba.conf when it is not a plain word, or is a keyword.
pub fn quote(name: &str) -> String {
    const KEYWORDS: &[&str] = &["all", "sameuser", "samerole", "samegroup", "replication"];
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' || c == '$')
        && !KEYWORDS.contains(&name);
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

fn unquote(s: &str) -> (String, bool) {
    match s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) => (inner.replace("\"\"", "\""), true),
        None => (s.to_string(), false),
    }
}

/// An IP address or CIDR; a bare address means a single host (/32 or /128).
pub fn parse_net(s: &str) -> Option<IpNet> {
    if let Ok(n) = s.parse::<IpNet>() {
        return Some(n.trunc());
    }
    s.parse::<IpAddr>().ok().map(IpNet::from)
}

fn mask_len(mask: &str) -> Option<u8> {
    let ip: IpAddr = mask.parse().ok()?;
    let bits: u128 = match ip {
        IpAddr::V4(v) => u128::from(u32::from(v)) << 96,
        IpAddr::V6(v) => u128::from(v),
    };
    let ones = bits.leading_ones();
    (bits.count_ones() == ones).then_some(ones as u8)
}

impl Line {
    /// Parses one non-comment line. Errors say what is wrong.
    pub fn parse(text: &str) -> Result<Line> {
        let t = tokens(text)?;
        let conn = t.first().and_then(|c| ConnType::parse(c)).ok_or_else(|| {
            invalid!(
                "\"{}\" is not a connection type (local, host, hostssl, hostnossl, hostgssenc, hostnogssenc)",
                t.first().map(String::as_str).unwrap_or("")
            )
        })?;
        let need = if conn == ConnType::Local { 4 } else { 5 };
        if t.len() < need {
            bail_invalid!(
                "too few fields: a {} line needs {need} (type, database, user,{} method)",
                conn.as_str(),
                if conn == ConnType::Local { "" } else { " address," }
            );
        }
        let databases = list(&t[1]);
        let users = list(&t[2]);
        let mut i = 3;
        let address = if conn == ConnType::Local {
            None
        } else {
            let a = &t[3];
            i = 4;
            Some(if let Some(net) = parse_net(a).filter(|_| a.contains('/')) {
                Address::Net(net)
            } else if let Ok(ip) = a.parse::<IpAddr>() {
                // address + separate netmask, or a single host
                match t.get(4).and_then(|m| mask_len(m).map(|l| (m, l))) {
                    Some((_, len)) => {
                        i = 5;
                        Address::Net(
                            IpNet::new(ip, len)
                                .map_err(|e| invalid!("invalid netmask: {e}"))?
                                .trunc(),
                        )
                    }
                    None if t.get(4).is_some_and(|m| m.parse::<IpAddr>().is_ok()) => {
                        bail_invalid!("invalid IP mask \"{}\"", t[4])
                    }
                    None => Address::Net(IpNet::from(ip)),
                }
            } else if a.contains('/') {
                bail_invalid!("invalid IP address/mask \"{a}\"");
            } else {
                Address::Keyword(a.clone())
            })
        };
        let method = t.get(i).cloned().ok_or_else(|| invalid!("no authentication method"))?;
        if !METHODS.contains(&method.as_str()) {
            bail_invalid!(
                "invalid authentication method \"{method}\" (valid: {})",
                METHODS.join(", ")
            );
        }
        let options = t[i + 1..].to_vec();
        if let Some(bad) = options.iter().find(|o| !o.contains('=')) {
            bail_invalid!("authentication option \"{bad}\" is not in name=value format");
        }
        Ok(Line {
            conn,
            databases,
            users,
            address,
            method,
            options,
        })
    }

    /// The line as pg_hba.conf text, columns aligned like PostgreSQL's sample file.
    pub fn render(&self) -> String {
        let addr = match &self.address {
            None => String::new(),
            Some(Address::Net(n)) => n.to_string(),
            Some(Address::Keyword(k)) => k.clone(),
        };
        let mut s = format!(
            "{:<8} {:<16} {:<24} {:<20} {}",
            self.conn.as_str(),
            self.databases.join(","),
            self.users.join(","),
            addr,
            self.method
        );
        for o in &self.options {
            s.push(' ');
            s.push_str(o);
        }
        s.trim_end().to_string()
    }
}

/// A connection to simulate.
#[derive(Clone, Debug)]
pub struct Conn<'a> {
    pub user: &'a str,
    pub database: &'a str,
    /// None: Unix-domain socket.
    pub address: Option<IpAddr>,
    pub ssl: bool,
    /// Roles `user` is a member of, directly or not (for `+group`).
    pub groups: &'a BTreeSet<String>,
}

/// Does `line` match `c`? `Err` when the line uses something that cannot be simulated.
pub fn matches(line: &Line, c: &Conn) -> Result<bool> {
    let type_ok = match (line.conn, c.address) {
        (ConnType::Local, None) => true,
        (ConnType::Local, Some(_)) | (_, None) => false,
        (ConnType::Host, _) => true,
        (ConnType::HostSsl, _) => c.ssl,
        (ConnType::HostNoSsl, _) => !c.ssl,
        (ConnType::HostGssEnc, _) => false,
        (ConnType::HostNoGssEnc, _) => true,
    };
    if !type_ok {
        return Ok(false);
    }
    let replication = c.database == "replication";
    let mut db_ok = false;
    for d in &line.databases {
        let (name, quoted) = unquote(d);
        db_ok |= match (name.as_str(), quoted) {
            ("all", false) => !replication,
            ("replication", false) => replication,
            ("sameuser", false) => !replication && c.database == c.user,
            ("samerole" | "samegroup", false) => !replication && c.groups.contains(c.database),
            (n, false) if n.starts_with('@') || n.starts_with('/') => {
                bail_invalid!("database \"{n}\" (file inclusion or regular expression) cannot be simulated")
            }
            (n, _) => !replication && n == c.database,
        };
    }
    if !db_ok {
        return Ok(false);
    }
    let mut user_ok = false;
    for u in &line.users {
        let (name, quoted) = unquote(u);
        user_ok |= match (name.as_str(), quoted) {
            ("all", false) => true,
            (n, false) if n.starts_with('+') => {
                let (g, _) = unquote(&n[1..]);
                g == c.user || c.groups.contains(&g)
            }
            (n, false) if n.starts_with('@') || n.starts_with('/') => {
                bail_invalid!("user \"{n}\" (file inclusion or regular expression) cannot be simulated")
            }
            (n, _) => n == c.user,
        };
    }
    if !user_ok {
        return Ok(false);
    }
    match (&line.address, c.address) {
        (None, _) => Ok(true),
        (Some(Address::Net(n)), Some(ip)) => Ok(n.contains(&ip) || mapped_v4(n, ip)),
        (Some(Address::Keyword(k)), _) if k == "all" => Ok(true),
        (Some(Address::Keyword(k)), _) => {
            bail_invalid!("address \"{k}\" (samehost, samenet, host names) cannot be simulated")
        }
        (Some(_), None) => Ok(false),
    }
}

fn mapped_v4(n: &IpNet, ip: IpAddr) -> bool {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some_and(|v4| n.contains(&IpAddr::V4(v4))),
        IpAddr::V4(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(g: &[&str]) -> BTreeSet<String> {
        g.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_and_renders_lines() {
        let l = Line::parse("host  replication replicator 10.0.0.0/8 scram-sha-256").unwrap();
        assert_eq!(l.conn, ConnType::Host);
        assert_eq!(l.address, Some(Address::Net("10.0.0.0/8".parse().unwrap())));
        let l = Line::parse("host all all 192.168.1.7 255.255.255.0 md5").unwrap();
        assert_eq!(l.address, Some(Address::Net("192.168.1.0/24".parse().unwrap())));
        let l = Line::parse("local all \"odd, user\" peer map=x # comment").unwrap();
        assert_eq!(l.users, vec!["\"odd, user\""]);
        assert_eq!(l.options, vec!["map=x"]);
        assert_eq!(
            Line::parse("local all postgres peer").unwrap().render(),
            "local    all              postgres                                      peer"
        );
    }

    #[test]
    fn rejects_what_postgres_rejects_with_a_reason() {
        for (line, why) in [
            ("hots all all 0.0.0.0/0 md5", "not a connection type"),
            ("host all all 10.0.0.0/33 md5", "invalid IP address/mask"),
            (
                "host all all 10.0.0.0/8 bogus",
                "invalid authentication method \"bogus\"",
            ),
            ("host all all 10.0.0.1 255.0.255.0 md5", "invalid IP mask"),
            ("host all all md5", "too few fields"),
            ("local all all peer map", "not in name=value format"),
        ] {
            let e = Line::parse(line).unwrap_err().to_string();
            assert!(e.contains(why), "{line}: {e}");
        }
    }

    #[test]
    fn matching_follows_postgres_rules() {
        let g = groups(&["dbrole_readonly"]);
        let tcp = |ip: &str, user: &'static str, db: &'static str, ssl| Conn {
            user,
            database: db,
            address: Some(ip.parse().unwrap()),
            ssl,
            groups: &g,
        };
        let m = |l: &str, c: &Conn| matches(&Line::parse(l).unwrap(), c).unwrap();
        assert!(m(
            "host all +dbrole_readonly 10.0.0.0/8 md5",
            &tcp("10.1.2.3", "app", "db", false)
        ));
        assert!(!m(
            "host all +dbrole_readonly 10.0.0.0/8 md5",
            &tcp("11.1.2.3", "app", "db", false)
        ));
        assert!(!m(
            "hostssl all all 0.0.0.0/0 md5",
            &tcp("10.1.2.3", "app", "db", false)
        ));
        assert!(m(
            "hostnossl all all 0.0.0.0/0 md5",
            &tcp("10.1.2.3", "app", "db", false)
        ));
        assert!(
            !m(
                "host all all 0.0.0.0/0 md5",
                &tcp("10.1.2.3", "app", "replication", false)
            ),
            "all excludes replication"
        );
        assert!(m(
            "host replication all ::1/128 md5",
            &tcp("::1", "r", "replication", false)
        ));
        assert!(
            !m("host \"all\" all 0.0.0.0/0 md5", &tcp("1.2.3.4", "u", "x", false)),
            "\"all\" is a database named all"
        );
        let local = Conn {
            user: "postgres",
            database: "postgres",
            address: None,
            ssl: false,
            groups: &g,
        };
        assert!(m("local all postgres peer", &local));
        assert!(!m("host all all 0.0.0.0/0 trust", &local));
        assert!(
            matches(
                &Line::parse("host all all samenet md5").unwrap(),
                &tcp("10.0.0.1", "u", "d", false)
            )
            .is_err()
        );
    }

    #[test]
    fn quotes_names_that_need_it() {
        assert_eq!(quote("app_db"), "app_db");
        assert_eq!(quote("all"), "\"all\"");
        assert_eq!(quote("my db"), "\"my db\"");
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
    }
}
