//! Findings on a rendered file: shadowed lines and risky settings. Pure.

use ipnet::IpNet;

use super::line::{Address, ConnType, Line};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub severity: &'static str,
    pub line_number: usize,
    pub title: String,
    pub check: &'static str,
    pub message: String,
    pub fix: String,
}

/// Server settings the checks depend on.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub password_encryption: String,
    pub ssl: bool,
    pub ssl_ca_file: String,
}

fn covers_conn(a: ConnType, b: ConnType) -> bool {
    use ConnType::*;
    a == b || (a == Host && b != Local)
}

fn covers_list(a: &[String], b: &[String], keyword_all: bool) -> bool {
    let all = |l: &[String]| l.iter().any(|x| x == "all");
    if keyword_all && all(a) {
        // `all` covers every name, but not the `replication` keyword (databases).
        return !b.iter().any(|x| x == "replication") || a.iter().any(|x| x == "replication");
    }
    b.iter().all(|x| a.contains(x))
}

fn covers_addr(a: &Option<Address>, b: &Option<Address>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(Address::Net(x)), Some(Address::Net(y))) => x.contains(y),
        (Some(Address::Keyword(k)), Some(_)) if k == "all" => true,
        _ => false,
    }
}

/// True when every connection `later` could match is matched by `earlier` first.
pub fn shadows(earlier: &Line, later: &Line) -> bool {
    covers_conn(earlier.conn, later.conn)
        && covers_list(&earlier.databases, &later.databases, true)
        && covers_list(&earlier.users, &later.users, true)
        && covers_addr(&earlier.address, &later.address)
}

fn is_world(a: &Option<Address>) -> bool {
    matches!(a, Some(Address::Net(n)) if n.prefix_len() == 0) || matches!(a, Some(Address::Keyword(k)) if k == "all")
}

fn is_loopback(a: &Option<Address>) -> bool {
    matches!(a, Some(Address::Net(n)) if match n { IpNet::V4(v) => v.addr().is_loopback(), IpNet::V6(v) => v.addr().is_loopback() })
}

/// All findings, in file order.
pub fn lint(active: &[(usize, String, Line)], s: &Settings) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut push = |severity, (n, title): (usize, &str), check, message: String, fix: &str| {
        out.push(Finding {
            severity,
            line_number: n,
            title: title.to_string(),
            check,
            message,
            fix: fix.to_string(),
        })
    };
    for (i, (n, title, l)) in active.iter().enumerate() {
        let at = (*n, title.as_str());
        if let Some((en, et, _)) = active[..i].iter().find(|(_, _, e)| shadows(e, l)) {
            push(
                "medium",
                at,
                "shadowed",
                format!("line {n} can never match: line {en} (rule \"{et}\") matches every connection it would"),
                "Give the rule a lower order than the one that covers it, or remove it.",
            );
        }
        if l.method == "trust" && l.conn != ConnType::Local && !is_loopback(&l.address) {
            push(
                "high",
                at,
                "trust",
                format!("line {n} trusts TCP connections: no password is asked"),
                "Use auth 'pwd' or 'ssl' (scram-sha-256).",
            );
        }
        if l.method == "md5" && s.password_encryption == "scram-sha-256" {
            push(
                "medium",
                at,
                "md5",
                format!("line {n} uses md5 while password_encryption is scram-sha-256"),
                "Use 'pwd' or 'sha': scram-sha-256 lines also accept clients that md5 could.",
            );
        }
        if is_world(&l.address) && l.conn != ConnType::HostSsl && l.method != "reject" {
            push(
                "high",
                at,
                "world-without-ssl",
                format!("line {n} admits every address without requiring SSL"),
                "Use auth 'ssl' (hostssl) or narrow the address.",
            );
        }
        if l.conn == ConnType::HostSsl && !s.ssl {
            push(
                "high",
                at,
                "hostssl-without-ssl",
                format!("line {n} is hostssl but ssl is off: it can never match"),
                "Turn ssl on (with a certificate) or use host.",
            );
        }
        let clientcert = l.options.iter().any(|o| o.starts_with("clientcert="));
        if (l.method == "cert" || clientcert) && s.ssl_ca_file.is_empty() {
            push(
                "high",
                at,
                "cert-without-ca",
                format!("line {n} needs client certificates but ssl_ca_file is empty"),
                "Set ssl_ca_file to the CA that signs client certificates.",
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn active(lines: &[&str]) -> Vec<(usize, String, Line)> {
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| (i + 1, format!("r{}", i + 1), Line::parse(l).unwrap()))
            .collect()
    }

    fn checks(lines: &[&str], s: &Settings) -> Vec<(&'static str, usize)> {
        lint(&active(lines), s)
            .into_iter()
            .map(|f| (f.check, f.line_number))
            .collect()
    }

    #[test]
    fn finds_shadowed_lines() {
        let s = Settings {
            password_encryption: "scram-sha-256".into(),
            ssl: true,
            ..Default::default()
        };
        assert_eq!(
            checks(
                &[
                    "host all all 10.0.0.0/8 scram-sha-256",
                    "hostssl app u 10.1.0.0/16 scram-sha-256"
                ],
                &s
            ),
            vec![("shadowed", 2)]
        );
        assert!(
            checks(
                &[
                    "host all all 10.0.0.0/8 scram-sha-256",
                    "host replication r 10.1.0.0/16 scram-sha-256"
                ],
                &s
            )
            .is_empty(),
            "all does not cover replication"
        );
        assert!(
            checks(
                &[
                    "host app u 10.1.0.0/16 scram-sha-256",
                    "host all all 10.0.0.0/8 scram-sha-256"
                ],
                &s
            )
            .is_empty()
        );
        assert!(
            checks(
                &[
                    "hostssl all all 10.0.0.0/8 scram-sha-256",
                    "host all all 10.0.0.0/8 reject"
                ],
                &s
            )
            .is_empty()
        );
    }

    #[test]
    fn flags_risky_lines() {
        let s = Settings {
            password_encryption: "scram-sha-256".into(),
            ssl: false,
            ssl_ca_file: String::new(),
        };
        let f = checks(
            &[
                "host all all 10.1.0.0/16 trust",
                "host all a 10.2.0.0/16 md5",
                "host all b 0.0.0.0/0 scram-sha-256",
                "hostssl all c 10.3.0.0/16 scram-sha-256",
                "hostssl all d 10.4.0.0/16 cert",
                "host all all 127.0.0.1/32 trust",
                "host all all 0.0.0.0/0 reject",
            ],
            &s,
        );
        assert_eq!(
            f,
            vec![
                ("trust", 1),
                ("md5", 2),
                ("world-without-ssl", 3),
                ("hostssl-without-ssl", 4),
                ("hostssl-without-ssl", 5),
                ("cert-without-ca", 5),
            ]
        );
    }
}
