//! HBA rules in Pigsty's vocabulary (aliases, auth aliases, role filter, order) and the renderer
//! that turns them into pg_hba.conf. Pure and deterministic.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::{bail_invalid, invalid};
use serde::{Deserialize, Serialize};

use super::line::{Line, parse_net, quote};

/// One rule as stored in pgops.hba_rule (Pigsty's `pg_hba_rules` fields).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Rule {
    pub id: i64,
    pub title: String,
    pub user: Option<String>,
    pub db: Option<String>,
    pub addr: Option<String>,
    pub auth: Option<String>,
    /// Raw lines: when present they are the rule, and the fields above are ignored.
    pub rules: Vec<String>,
    pub role: Option<String>,
    pub order: Option<i32>,
}

pub const ROLES: &[&str] = &[
    "common", "default", "primary", "replica", "offline", "standby", "delayed",
];
pub const ADDR_ALIASES: &[&str] = &["local", "localhost", "admin", "infra", "cluster", "intra", "world"];
pub const AUTH_ALIASES: &[&str] = &[
    "pwd", "ssl", "sha", "md5", "ssl-md5", "ssl-sha", "cert", "deny", "trust", "os", "ident", "peer",
];
pub const USER_PLACEHOLDERS: &[&str] = &["${dbsu}", "${repl}", "${admin}", "${monitor}"];

/// Alias values: `${dbsu}`… → role names, `admin`/`infra`/`cluster`/`intra` → addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Aliases(pub BTreeMap<String, Vec<String>>);

impl Aliases {
    /// Pigsty's defaults.
    pub fn pigsty() -> Aliases {
        let mut m = BTreeMap::new();
        for (k, v) in [
            ("${dbsu}", vec!["postgres"]),
            ("${repl}", vec!["replicator"]),
            ("${admin}", vec!["dbuser_dba"]),
            ("${monitor}", vec!["dbuser_monitor"]),
            ("admin", vec!["10.10.10.10"]),
            ("infra", vec!["10.10.10.10"]),
            ("cluster", vec![]),
            ("intra", vec!["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]),
        ] {
            m.insert(k.to_string(), v.into_iter().map(String::from).collect());
        }
        Aliases(m)
    }

    pub fn get(&self, k: &str) -> &[String] {
        self.0.get(k).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Checks every alias: user placeholders hold role names, address aliases addresses or CIDRs,
    /// and no value holds a line break or another control character.
    pub fn validate(&self) -> Result<()> {
        for (name, values) in &self.0 {
            validate_alias(name, values)?;
        }
        Ok(())
    }
}

/// Checks one alias row of pgops.hba_alias; the error names the alias and the value's position.
pub fn validate_alias(name: &str, values: &[String]) -> Result<()> {
    for (i, v) in values.iter().enumerate() {
        let what = format!("alias {name:?}, value {}", i + 1);
        check_text(&what, v, false)?;
        if name.starts_with("${") {
            if v.is_empty() || v.len() > 63 || v.chars().any(char::is_whitespace) || v.contains(',') {
                bail_invalid!("{what}: {v:?} is not a role name (1 to 63 bytes, no spaces or commas)");
            }
        } else if parse_net(v).is_none() {
            bail_invalid!("{what}: {v:?} is not an IPv4/IPv6 address or CIDR");
        }
    }
    Ok(())
}

/// Refuses text that would leave its place in pg_hba.conf: a line break, carriage return, NUL or
/// any other control character (a tab only where it is whitespace, in raw lines). The message
/// names the field, never echoes the value.
pub fn check_text(what: &str, v: &str, allow_tab: bool) -> Result<()> {
    if let Some(c) = v.chars().find(|&c| c.is_control() && !(allow_tab && c == '\t')) {
        bail_invalid!(
            "{what} contains the control character U+{:04X}: values written to pg_hba.conf must be one line of printable text",
            c as u32
        );
    }
    Ok(())
}

/// What is being rendered for.
#[derive(Clone, Debug)]
pub struct Target {
    pub cluster: String,
    pub instance: String,
    pub role: String,
    /// A replica that also serves offline queries (rules for `offline` apply to it too).
    pub offline_query: bool,
    pub host: String,
    pub port: i32,
    pub path: String,
    pub socket_dir: String,
    /// Method behind `pwd`: the server's password_encryption (scram-sha-256 or md5).
    pub pwd_method: String,
    pub time: String,
    pub ipv6: bool,
}

/// Checks a rule's fields; errors name the field.
pub fn validate(r: &Rule) -> Result<()> {
    check_text("field \"title\"", &r.title, false)?;
    for (field, v) in [
        ("user", &r.user),
        ("db", &r.db),
        ("addr", &r.addr),
        ("auth", &r.auth),
        ("role", &r.role),
    ] {
        if let Some(v) = v {
            check_text(&format!("field \"{field}\""), v, false)?;
        }
    }
    if !r.rules.is_empty() {
        for (i, l) in r.rules.iter().enumerate() {
            check_text(&format!("field \"rules\", line {}", i + 1), l, true)?;
            Line::parse(l).map_err(|e| invalid!("field \"rules\", line {} \"{l}\": {e}", i + 1))?;
        }
    } else {
        let addr = r
            .addr
            .as_deref()
            .ok_or_else(|| invalid!("field \"addr\" is required (or give raw lines in \"rules\")"))?;
        if !ADDR_ALIASES.contains(&addr) && parse_net(addr).is_none() {
            bail_invalid!(
                "field \"addr\": \"{addr}\" is neither an alias ({}) nor an IPv4/IPv6 address or CIDR",
                ADDR_ALIASES.join(", ")
            );
        }
        let auth = r.auth.as_deref().unwrap_or("pwd");
        if !AUTH_ALIASES.contains(&auth) && !super::line::METHODS.contains(&auth) {
            bail_invalid!(
                "field \"auth\": \"{auth}\" is neither an alias ({}) nor a PostgreSQL method ({})",
                AUTH_ALIASES.join(", "),
                super::line::METHODS.join(", ")
            );
        }
        for (field, v) in [("user", r.user.as_deref()), ("db", r.db.as_deref())] {
            if let Some(v) = v {
                if v.is_empty() || v.contains('\n') || v.len() > 64 {
                    bail_invalid!("field \"{field}\": \"{v}\" is not a valid name");
                }
                if v.starts_with("${") && !USER_PLACEHOLDERS.contains(&v) {
                    bail_invalid!(
                        "field \"{field}\": unknown placeholder \"{v}\" (known: {})",
                        USER_PLACEHOLDERS.join(", ")
                    );
                }
            }
        }
    }
    if let Some(role) = r.role.as_deref() {
        if !ROLES.contains(&role) {
            bail_invalid!("field \"role\": \"{role}\" is not one of {}", ROLES.join(", "));
        }
    }
    Ok(())
}

/// What in a rule only a superuser may write; pgops_admin may not (see SECURITY.md):
/// - `trust`: no authentication at all;
/// - `@file` anywhere in a raw line (an unquoted token starting with `@`, in any field: PostgreSQL
///   expands it in every field), or as a structured rule's address or method: PostgreSQL reads that
///   file (any file the server can read) and shows its words in pg_hba_file_rules;
/// - a regular expression (`/…`, PostgreSQL 16+) in a raw line's user or database list: it can
///   match roles nobody named;
/// - `ident` over TCP: the client's own host vouches for its user (RFC 1413);
/// - any method but `scram-sha-256`, `md5`, `reject`, `cert` and (local) `peer` / `ident`:
///   `ldap`, `radius`, `pam`, `oauth`, `gss`, `sspi` hand the password check to a server the line
///   names (an attacker's LDAP server accepts any password), `password` sends it in clear;
/// - any option but `clientcert`: `map=` picks an identity map, `ldapserver=` … a server.
///
/// Structured fields are quoted when rendered, so `@` and `/` there are plain names.
pub fn superuser_only(r: &Rule) -> Vec<&'static str> {
    let mut found = Vec::new();
    let mut add = |what: &'static str| {
        if !found.contains(&what) {
            found.push(what)
        }
    };
    const ADMIN_METHODS: &[&str] = &["scram-sha-256", "md5", "reject", "cert", "peer", "ident", "trust"];
    if r.rules.is_empty() {
        let auth = r.auth.as_deref().unwrap_or("pwd");
        if auth == "trust" {
            add("trust");
        }
        let tcp = !matches!(r.addr.as_deref(), Some("local"));
        if tcp && matches!(auth, "os" | "ident") {
            add("ident over TCP");
        }
        if !AUTH_ALIASES.contains(&auth) && !ADMIN_METHODS.contains(&auth) {
            add("authentication by another server or in clear text (ldap, radius, pam, oauth, gss, sspi, password)");
        }
        if [r.addr.as_deref(), Some(auth)].into_iter().flatten().any(|v| v.starts_with('@')) {
            add("@file inclusions");
        }
        return found;
    }
    for l in &r.rules {
        // PostgreSQL expands an unquoted `@file` in every field, the address and options too.
        if let Ok(tokens) = super::line::tokens(l)
            && tokens.iter().flat_map(|t| super::line::list(t)).any(|item| item.starts_with('@'))
        {
            add("@file inclusions");
        }
        // A stored line that no longer parses is left to a superuser (fail closed).
        let Ok(line) = Line::parse(l) else {
            add("lines pgops cannot read");
            continue;
        };
        if line.method == "trust" {
            add("trust");
        }
        if line.method == "ident" && line.conn != super::line::ConnType::Local {
            add("ident over TCP");
        }
        if !ADMIN_METHODS.contains(&line.method.as_str()) {
            add("authentication by another server or in clear text (ldap, radius, pam, oauth, gss, sspi, password)");
        }
        if line.options.iter().any(|o| !o.starts_with("clientcert=")) {
            add("options other than clientcert");
        }
        for name in line.users.iter().chain(&line.databases) {
            if name.starts_with('@') {
                add("@file inclusions");
            }
            if name.starts_with('/') {
                add("regular expressions");
            }
        }
    }
    found
}

/// The lines of one rule.
pub fn rule_lines(r: &Rule, aliases: &Aliases, t: &Target) -> Result<Vec<String>> {
    if !r.rules.is_empty() {
        return Ok(r.rules.clone());
    }
    let user = match r.user.as_deref().unwrap_or("all") {
        p if p.starts_with("${") => {
            let names = aliases.get(p);
            if names.is_empty() {
                bail_invalid!("placeholder {p} has no value in pgops.hba_alias");
            }
            names.iter().map(|n| quote(n)).collect::<Vec<_>>().join(",")
        }
        "all" => "all".to_string(),
        g if g.starts_with('+') => format!("+{}", quote(&g[1..])),
        u => quote(u),
    };
    let db = match r.db.as_deref().unwrap_or("all") {
        k @ ("all" | "replication") => k.to_string(),
        d => quote(d),
    };
    let auth = r.auth.as_deref().unwrap_or("pwd");
    let (ssl, method) = match auth {
        "pwd" => (false, t.pwd_method.as_str()),
        "ssl" => (true, t.pwd_method.as_str()),
        "sha" => (false, "scram-sha-256"),
        "md5" => (false, "md5"),
        "ssl-md5" => (true, "md5"),
        "ssl-sha" => (true, "scram-sha-256"),
        "cert" => (true, "cert"),
        "deny" => (false, "reject"),
        "trust" => (false, "trust"),
        "os" | "ident" => (false, "ident"),
        "peer" => (false, "peer"),
        m => (false, m),
    };
    let host = if ssl { "hostssl" } else { "host" };
    let addr = r.addr.as_deref().unwrap_or("");
    let nets: Vec<String> = match addr {
        "local" => return Ok(vec![format!("local {db} {user} {method}")]),
        // Loopback never goes through SSL: Pigsty renders `host` here whatever the auth.
        "localhost" => {
            let mut v = vec![
                format!("local {db} {user} {method}"),
                format!("host {db} {user} 127.0.0.1/32 {method}"),
            ];
            if t.ipv6 {
                v.push(format!("host {db} {user} ::1/128 {method}"));
            }
            return Ok(v);
        }
        "world" => {
            let mut v = vec!["0.0.0.0/0".to_string()];
            if t.ipv6 {
                v.push("::/0".into());
            }
            v
        }
        "admin" | "infra" | "cluster" | "intra" => aliases.get(addr).to_vec(),
        cidr => vec![cidr.to_string()],
    };
    nets.iter()
        .map(|n| {
            let net = parse_net(n).ok_or_else(|| invalid!("alias {addr}: \"{n}\" is not an address or CIDR"))?;
            Ok(format!("{host} {db} {user} {net} {method}"))
        })
        .collect()
}

/// Whether a rule applies to the instance being rendered.
pub fn enabled(r: &Rule, t: &Target) -> bool {
    match r.role.as_deref().unwrap_or("common") {
        "common" | "default" => true,
        "offline" => t.role == "offline" || t.offline_query,
        role => role == t.role,
    }
}

/// Rules in file order: by `order` (default 1000), then as declared (id).
pub fn sorted(rules: &[Rule]) -> Vec<&Rule> {
    let mut v: Vec<&Rule> = rules.iter().collect();
    v.sort_by_key(|r| (r.order.unwrap_or(1000), r.id));
    v
}

/// A rendered file: the text, and for each effective line its rule title (for lint and match).
pub struct Rendered {
    pub text: String,
    /// (line number in the file, rule title, line) for every line that is not commented out.
    pub active: Vec<super::file::ActiveLine>,
    pub rules: usize,
}

pub fn render(rules: &[Rule], aliases: &Aliases, t: &Target) -> Result<Rendered> {
    // Rows are checked when stored; checked again here, with the header fields, so nothing written
    // before a check existed (or set through a setting) can add a line to the file.
    for (field, v) in [
        ("cluster", &t.cluster),
        ("instance", &t.instance),
        ("role", &t.role),
        ("host", &t.host),
        ("path", &t.path),
        ("socket directory", &t.socket_dir),
        ("time", &t.time),
        ("password method", &t.pwd_method),
    ] {
        check_text(&format!("header field \"{field}\""), v, false)?;
    }
    aliases.validate().map_err(|e| invalid!("pgops.hba_alias: {e}"))?;
    for r in rules {
        validate(r).map_err(|e| invalid!("pgops.hba_rule id {} ({:?}): {e}", r.id, r.title))?;
    }
    let bar = "#==============================================================#";
    let mut out: Vec<String> = vec![
        bar.into(),
        "# File      : pg_hba.conf".into(),
        format!("# Desc      : Postgres HBA Rules for {} [{}]", t.instance, t.role),
        format!("# Time      : {}", t.time),
        format!("# Host      : {} @ {}:{}", t.instance, t.host, t.port),
        format!("# Path      : {}", t.path),
        format!(
            "# Note      : managed by pgops for cluster {}: manual edits show in pgops.hba_drift",
            t.cluster
        ),
        bar.into(),
        "# addr alias".into(),
        format!("#   local : {}", t.socket_dir),
    ];
    for k in ["admin", "infra", "cluster", "intra"] {
        out.push(format!("#   {k} : {}", aliases.get(k).join(", ")));
    }
    out.push("# user alias".into());
    for (k, name) in [
        ("${dbsu}", "dbsu"),
        ("${repl}", "repl"),
        ("${monitor}", "monitor"),
        ("${admin}", "admin"),
    ] {
        out.push(format!("#   {name} : {}", aliases.get(k).join(", ")));
    }
    let mut active = Vec::new();
    let mut count = 0;
    for r in sorted(rules) {
        count += 1;
        let on = enabled(r, t);
        let role = r.role.as_deref().unwrap_or("common");
        out.push(format!("# {} [{role}]{}", r.title, if on { "" } else { " [DISABLED]" }));
        for l in rule_lines(r, aliases, t).map_err(|e| invalid!("rule \"{}\": {e}", r.title))? {
            let parsed = Line::parse(&l).map_err(|e| invalid!("rule \"{}\": line \"{l}\": {e}", r.title))?;
            if on {
                out.push(l);
                active.push((out.len(), r.title.clone(), parsed));
            } else {
                out.push(format!("#{l}"));
            }
        }
    }
    let mut text = out.join("\n");
    text.push('\n');
    Ok(Rendered {
        text,
        active,
        rules: count,
    })
}

/// Pigsty's 12 default PostgreSQL rules (`pg_default_hba_rules`), verbatim.
pub const PIGSTY_DEFAULTS: &str = r#"[
  {"user": "${dbsu}",    "db": "all",         "addr": "local",     "auth": "ident", "title": "dbsu access via local os user ident",   "order": 100},
  {"user": "${dbsu}",    "db": "replication", "addr": "local",     "auth": "ident", "title": "dbsu replication from local os ident",  "order": 150},
  {"user": "${repl}",    "db": "replication", "addr": "localhost", "auth": "pwd",   "title": "replicator replication from localhost", "order": 200},
  {"user": "${repl}",    "db": "replication", "addr": "intra",     "auth": "pwd",   "title": "replicator replication from intranet",  "order": 250},
  {"user": "${repl}",    "db": "postgres",    "addr": "intra",     "auth": "pwd",   "title": "replicator postgres db from intranet",  "order": 300},
  {"user": "${monitor}", "db": "all",         "addr": "localhost", "auth": "pwd",   "title": "monitor from localhost with password",  "order": 350},
  {"user": "${monitor}", "db": "all",         "addr": "infra",     "auth": "pwd",   "title": "monitor from infra host with password", "order": 400},
  {"user": "${admin}",   "db": "all",         "addr": "infra",     "auth": "ssl",   "title": "admin @ infra nodes with pwd & ssl",    "order": 450},
  {"user": "${admin}",   "db": "all",         "addr": "world",     "auth": "ssl",   "title": "admin @ everywhere with ssl & pwd",     "order": 500},
  {"user": "+dbrole_readonly", "db": "all",   "addr": "localhost", "auth": "pwd",   "title": "pgbouncer read/write via local socket", "order": 550},
  {"user": "+dbrole_readonly", "db": "all",   "addr": "intra",     "auth": "pwd",   "title": "read/write biz user via password",      "order": 600},
  {"user": "+dbrole_offline",  "db": "all",   "addr": "intra",     "auth": "pwd",   "title": "allow etl offline tasks from intranet", "order": 650}
]"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn target(role: &str, ipv6: bool) -> Target {
        Target {
            cluster: "pg-meta".into(),
            instance: "pg-meta-1".into(),
            role: role.into(),
            offline_query: false,
            host: "10.10.10.10".into(),
            port: 5432,
            path: "/pg/data/pg_hba.conf".into(),
            socket_dir: "/var/run/postgresql".into(),
            pwd_method: "scram-sha-256".into(),
            time: "2023-01-11 15:19".into(),
            ipv6,
        }
    }

    fn defaults() -> Vec<Rule> {
        let mut v: Vec<Rule> = serde_json::from_str(PIGSTY_DEFAULTS).unwrap();
        for (i, r) in v.iter_mut().enumerate() {
            r.id = i as i64 + 1;
            r.role = Some("default".into());
        }
        v
    }

    /// The body of the seed's golden pg_hba.conf for pg-meta-1 (rules part, whitespace collapsed).
    const GOLDEN: &str = "\
# dbsu access via local os user ident [default]
local all postgres ident
# dbsu replication from local os ident [default]
local replication postgres ident
# replicator replication from localhost [default]
local replication replicator scram-sha-256
host replication replicator 127.0.0.1/32 scram-sha-256
# replicator replication from intranet [default]
host replication replicator 10.0.0.0/8 scram-sha-256
host replication replicator 172.16.0.0/12 scram-sha-256
host replication replicator 192.168.0.0/16 scram-sha-256
# replicator postgres db from intranet [default]
host postgres replicator 10.0.0.0/8 scram-sha-256
host postgres replicator 172.16.0.0/12 scram-sha-256
host postgres replicator 192.168.0.0/16 scram-sha-256
# monitor from localhost with password [default]
local all dbuser_monitor scram-sha-256
host all dbuser_monitor 127.0.0.1/32 scram-sha-256
# monitor from infra host with password [default]
host all dbuser_monitor 10.10.10.10/32 scram-sha-256
# admin @ infra nodes with pwd & ssl [default]
hostssl all dbuser_dba 10.10.10.10/32 scram-sha-256
# admin @ everywhere with ssl & pwd [default]
hostssl all dbuser_dba 0.0.0.0/0 scram-sha-256
# pgbouncer read/write via local socket [default]
local all +dbrole_readonly scram-sha-256
host all +dbrole_readonly 127.0.0.1/32 scram-sha-256
# read/write biz user via password [default]
host all +dbrole_readonly 10.0.0.0/8 scram-sha-256
host all +dbrole_readonly 172.16.0.0/12 scram-sha-256
host all +dbrole_readonly 192.168.0.0/16 scram-sha-256
# allow etl offline tasks from intranet [default]
host all +dbrole_offline 10.0.0.0/8 scram-sha-256
host all +dbrole_offline 172.16.0.0/12 scram-sha-256
host all +dbrole_offline 192.168.0.0/16 scram-sha-256
# allow application database intranet access [common] [DISABLED]
#host kong dbuser_kong 10.0.0.0/8 md5
#host bytebase dbuser_bytebase 10.0.0.0/8 md5
#host grafana dbuser_grafana 10.0.0.0/8 md5
";

    fn body(text: &str) -> String {
        text.lines()
            .skip_while(|l| !l.starts_with("# dbsu access"))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    }

    #[test]
    fn control_characters_are_refused_in_every_field() {
        let base = Rule {
            title: "t".into(),
            user: Some("app".into()),
            db: Some("app".into()),
            addr: Some("10.0.0.0/8".into()),
            auth: Some("pwd".into()),
            ..Rule::default()
        };
        assert!(validate(&base).is_ok());
        for bad in [
            "x\nhost all all 0.0.0.0/0 trust",
            "x\ry",
            "x\0y",
            "x\u{1b}y",
            "x\ty",
            "x\u{85}y",
        ] {
            let mut cases = Vec::new();
            let mut r = base.clone();
            r.title = bad.into();
            cases.push(("title", r));
            for field in ["user", "db", "addr", "auth", "role"] {
                let mut r = base.clone();
                let slot = match field {
                    "user" => &mut r.user,
                    "db" => &mut r.db,
                    "addr" => &mut r.addr,
                    "auth" => &mut r.auth,
                    _ => &mut r.role,
                };
                *slot = Some(bad.into());
                cases.push((field, r));
            }
            let mut r = base.clone();
            r.rules = vec![format!("host all all 10.0.0.1/32 md5 {bad}")];
            if !bad.contains('\t') {
                cases.push(("rules", r));
            }
            for (field, r) in cases {
                let e = validate(&r).expect_err(field).to_string();
                assert!(e.contains(&format!("\"{field}\"")), "{field}: {e}");
                assert!(e.contains("control character"), "{field}: {e}");
            }
        }
        let mut r = base.clone();
        r.rules = vec!["host\tall\tall\t10.0.0.1/32\tmd5".into()];
        assert!(validate(&r).is_ok(), "a tab is whitespace in a raw line");
    }

    #[test]
    fn alias_values_and_header_fields_cannot_add_lines() {
        let mut a = Aliases::pigsty();
        a.0.insert("${monitor}".into(), vec!["x\nhost all all 0.0.0.0/0 trust".into()]);
        let e = render(&defaults(), &a, &target("primary", true))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("${monitor}") && e.contains("control character"), "{e}");
        assert!(validate_alias("intra", &["10.0.0.0/8".into(), "x".into()]).is_err());
        assert!(validate_alias("${dbsu}", &["a b".into()]).is_err());
        assert!(validate_alias("${dbsu}", &["postgres".into()]).is_ok());
        for field in ["cluster", "instance", "host", "path", "time"] {
            let mut t = target("primary", true);
            let v = "x\nhost all all 0.0.0.0/0 trust".to_string();
            match field {
                "cluster" => t.cluster = v,
                "instance" => t.instance = v,
                "host" => t.host = v,
                "path" => t.path = v,
                _ => t.time = v,
            }
            let e = render(&defaults(), &Aliases::pigsty(), &t).err().unwrap().to_string();
            assert!(e.contains(field) && e.contains("control character"), "{e}");
        }
    }

    #[test]
    fn superuser_only_features_are_named() {
        let r = |auth: &str, addr: &str| Rule {
            auth: Some(auth.into()),
            addr: Some(addr.into()),
            ..Rule::default()
        };
        assert_eq!(superuser_only(&r("trust", "local")), vec!["trust"]);
        assert_eq!(superuser_only(&r("ident", "intra")), vec!["ident over TCP"]);
        assert!(superuser_only(&r("ident", "local")).is_empty());
        assert!(superuser_only(&r("pwd", "world")).is_empty());
        let raw = |l: &str| Rule {
            rules: vec![l.into()],
            ..Rule::default()
        };
        assert_eq!(
            superuser_only(&raw("host all @/etc/passwd 10.0.0.1/32 md5")),
            vec!["@file inclusions"]
        );
        assert_eq!(
            superuser_only(&raw("host all /^app 10.0.0.1/32 md5")),
            vec!["regular expressions"]
        );
        assert_eq!(
            superuser_only(&raw("host @dbs all 10.0.0.1/32 trust")),
            vec!["@file inclusions", "trust"]
        );
        assert_eq!(
            superuser_only(&raw("host all all 10.0.0.1/32 ident")),
            vec!["ident over TCP"]
        );
        assert!(superuser_only(&raw("host all \"@x\" 10.0.0.1/32 md5")).is_empty());
        // An unquoted @ in any field is an inclusion: the address, the method's options, a list item.
        for l in ["host all u @PG_VERSION md5", "host all app,@users 10.0.0.1/32 md5", "hostssl all all @hosts cert clientcert=verify-full"] {
            assert!(superuser_only(&raw(l)).contains(&"@file inclusions"), "{l}");
        }
        let mut at_addr = r("pwd", "world");
        at_addr.addr = Some("@PG_VERSION".into());
        assert!(superuser_only(&at_addr).contains(&"@file inclusions"));
        assert!(superuser_only(&raw("local all all peer")).is_empty());
        assert!(superuser_only(&raw("hostssl all all 10.0.0.1/32 cert clientcert=verify-full")).is_empty());
        for l in [
            "host all all 0.0.0.0/0 ldap ldapserver=attacker.example ldapprefix=\"cn=\" ldapsuffix=\",\"",
            "host all all 0.0.0.0/0 radius radiusservers=10.0.0.9 radiussecrets=x",
            "host all all 0.0.0.0/0 pam pamservice=login",
            "host all all 0.0.0.0/0 password",
        ] {
            assert!(
                superuser_only(&raw(l))
                    .iter()
                    .any(|f| f.starts_with("authentication by another server")),
                "{l}"
            );
        }
        assert!(
            superuser_only(&raw("hostssl all all 10.0.0.1/32 cert map=anyone"))
                .contains(&"options other than clientcert")
        );
        assert!(!superuser_only(&r("ldap", "world")).is_empty());
        assert!(!superuser_only(&r("password", "world")).is_empty());
        assert!(superuser_only(&r("ssl-sha", "world")).is_empty());
    }

    #[test]
    fn renders_the_seed_golden_file() {
        let mut rules = defaults();
        // The seed's last block: a rule for another instance role, shown commented out.
        rules.push(Rule {
            id: 13,
            title: "allow application database intranet access".into(),
            rules: vec![
                "host kong dbuser_kong 10.0.0.0/8 md5".into(),
                "host bytebase dbuser_bytebase 10.0.0.0/8 md5".into(),
                "host grafana dbuser_grafana 10.0.0.0/8 md5".into(),
            ],
            role: Some("replica".into()),
            ..Default::default()
        });
        let r = render(&rules, &Aliases::pigsty(), &target("primary", false)).unwrap();
        let golden = GOLDEN.replace("[common] [DISABLED]", "[replica] [DISABLED]");
        assert_eq!(body(&r.text), golden);
        assert!(r.text.starts_with("#====="));
        assert!(
            r.text
                .contains("# Desc      : Postgres HBA Rules for pg-meta-1 [primary]")
        );
        assert!(r.text.contains("#   intra : 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16"));
        assert_eq!(r.rules, 13);
        assert_eq!(r.active.len(), 23);
    }

    #[test]
    fn ipv6_adds_loopback_and_world_lines() {
        let r = render(&defaults(), &Aliases::pigsty(), &target("primary", true)).unwrap();
        let b = body(&r.text);
        assert!(b.contains(
            "host replication replicator 127.0.0.1/32 scram-sha-256\nhost replication replicator ::1/128 scram-sha-256"
        ));
        assert!(
            b.contains("hostssl all dbuser_dba 0.0.0.0/0 scram-sha-256\nhostssl all dbuser_dba ::/0 scram-sha-256")
        );
    }

    #[test]
    fn every_alias_renders() {
        let t = target("primary", true);
        let a = Aliases::pigsty();
        let one = |addr: &str, auth: &str| {
            rule_lines(
                &Rule {
                    addr: Some(addr.into()),
                    auth: Some(auth.into()),
                    user: Some("u".into()),
                    db: Some("d".into()),
                    ..Default::default()
                },
                &a,
                &t,
            )
            .unwrap()
        };
        assert_eq!(one("local", "peer"), vec!["local d u peer"]);
        assert_eq!(one("admin", "cert"), vec!["hostssl d u 10.10.10.10/32 cert"]);
        assert_eq!(one("10.1.0.0/16", "deny"), vec!["host d u 10.1.0.0/16 reject"]);
        assert_eq!(
            one("2001:db8::/32", "sha"),
            vec!["host d u 2001:db8::/32 scram-sha-256"]
        );
        assert_eq!(one("192.168.0.7", "ssl-md5"), vec!["hostssl d u 192.168.0.7/32 md5"]);
        assert_eq!(one("intra", "ssl-sha").len(), 3);
        assert_eq!(
            one("world", "trust"),
            vec!["host d u 0.0.0.0/0 trust", "host d u ::/0 trust"]
        );
        assert_eq!(one("localhost", "os")[0], "local d u ident");
        // As Pigsty renders it: loopback is plain host even with auth ssl.
        assert_eq!(one("localhost", "ssl")[1], "host d u 127.0.0.1/32 scram-sha-256");
        assert_eq!(one("cluster", "pwd"), Vec::<String>::new());
        assert_eq!(one("infra", "md5"), vec!["host d u 10.10.10.10/32 md5"]);
        assert_eq!(one("local", "ident"), vec!["local d u ident"]);
        assert_eq!(one("local", "ssl"), vec!["local d u scram-sha-256"]);
        let odd = rule_lines(
            &Rule {
                addr: Some("local".into()),
                user: Some("+my group".into()),
                db: Some("all".into()),
                ..Default::default()
            },
            &a,
            &t,
        )
        .unwrap();
        assert_eq!(odd, vec!["local all +\"my group\" scram-sha-256"]);
    }

    #[test]
    fn role_filter_and_order() {
        let mk = |id, role: &str, order| Rule {
            id,
            title: format!("r{id}"),
            addr: Some("local".into()),
            role: Some(role.into()),
            order,
            ..Default::default()
        };
        let rules = vec![
            mk(1, "replica", None),
            mk(2, "primary", Some(10)),
            mk(3, "common", Some(10)),
            mk(4, "offline", Some(5)),
        ];
        assert_eq!(
            sorted(&rules).iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![4, 2, 3, 1]
        );
        let mut t = target("replica", false);
        let on: Vec<i64> = rules.iter().filter(|r| enabled(r, &t)).map(|r| r.id).collect();
        assert_eq!(on, vec![1, 3]);
        t.offline_query = true;
        assert!(enabled(&rules[3], &t));
    }

    #[test]
    fn validation_names_the_field() {
        let bad = |r: Rule| validate(&r).unwrap_err().to_string();
        assert!(
            bad(Rule {
                addr: Some("10.0.0.0/33".into()),
                ..Default::default()
            })
            .contains("field \"addr\"")
        );
        assert!(
            bad(Rule {
                addr: Some("local".into()),
                auth: Some("bogus".into()),
                ..Default::default()
            })
            .contains("field \"auth\"")
        );
        assert!(
            bad(Rule {
                addr: Some("local".into()),
                role: Some("leader".into()),
                ..Default::default()
            })
            .contains("field \"role\"")
        );
        assert!(
            bad(Rule {
                rules: vec!["host all all 1.2.3.4/40 md5".into()],
                ..Default::default()
            })
            .contains("field \"rules\", line 1")
        );
        assert!(
            bad(Rule {
                addr: Some("local".into()),
                user: Some("${nobody}".into()),
                ..Default::default()
            })
            .contains("unknown placeholder")
        );
        assert!(
            validate(&Rule {
                addr: Some("world".into()),
                auth: Some("ssl".into()),
                ..Default::default()
            })
            .is_ok()
        );
    }
}
