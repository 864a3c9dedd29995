//! The statements for one role: CREATE/ALTER ROLE with its attributes, COMMENT, role settings
//! and memberships, each with the differences behind it.

use super::*;

/// The managed attributes (those the config leaves NULL are not written: PostgreSQL's default).
pub(super) fn attributes(r: &RoleSpec) -> String {
    let mut clauses: Vec<String> = r
        .attrs
        .iter()
        .filter(|(a, _)| !r.unmanaged.contains(a.field))
        .map(|(a, on)| a.clause(on))
        .collect();
    if !r.unmanaged.contains("connlimit") {
        clauses.push(format!("CONNECTION LIMIT {}", r.connlimit));
    }
    clauses.join(" ")
}

pub(super) fn create_role(b: &mut Builder, r: &RoleSpec, valid_until: Option<&String>) {
    // Pigsty creates its users with CREATE USER: a new role whose login is not declared may log in.
    let login = if r.unmanaged.contains("login") { "LOGIN " } else { "" };
    let mut stmt = format!("CREATE ROLE {} WITH {login}{}", ident(&r.name), attributes(r));
    let mut display = stmt.clone();
    if let Some(p) = &r.password {
        stmt.push_str(&format!(" PASSWORD {}", literal(p)));
        display.push_str(" PASSWORD '<redacted>'");
    }
    if let Some(v) = valid_until {
        let clause = format!(" VALID UNTIL {}", literal(v));
        stmt.push_str(&clause);
        display.push_str(&clause);
    }
    let obj = format!("role \"{}\"", r.name);
    b.cluster(
        stmt,
        Some(display),
        "role does not exist".into(),
        Risk::Safe,
        vec![diff(&obj, "state", Some("present".into()), Some("absent".into()))],
    );
}

/// `bootstrap`: the role is the bootstrap superuser, which is never stripped of an attribute.
pub(super) fn alter_role(b: &mut Builder, r: &RoleSpec, lr: &LiveRole, valid_until: Option<&String>, bootstrap: bool) {
    let obj = format!("role \"{}\"", r.name);
    let mut clauses = Vec::new();
    let mut diffs = Vec::new();
    let mut risk = Risk::Safe;
    for (a, want) in r.attrs.iter() {
        let have = (a.get)(&lr.attrs);
        if r.unmanaged.contains(a.field) || (bootstrap && !want) {
            continue;
        }
        if want != have {
            clauses.push(a.clause(want));
            diffs.push(diff(&obj, a.field, Some(yes_no(want)), Some(yes_no(have))));
            if !want {
                risk = Risk::Revoke;
            }
        }
    }
    if r.connlimit != lr.connlimit && !r.unmanaged.contains("connlimit") {
        clauses.push(format!("CONNECTION LIMIT {}", r.connlimit));
        diffs.push(diff(
            &obj,
            "connlimit",
            Some(r.connlimit.to_string()),
            Some(lr.connlimit.to_string()),
        ));
    }
    let want_until = valid_until.cloned();
    let have_until = lr.valid_until.clone();
    let never = |v: &Option<String>| v.as_deref().is_none_or(|s| s == "infinity");
    if want_until != have_until && !(never(&want_until) && never(&have_until)) {
        clauses.push(format!(
            "VALID UNTIL {}",
            literal(want_until.as_deref().unwrap_or("infinity"))
        ));
        diffs.push(diff(
            &obj,
            "valid_until",
            Some(want_until.clone().unwrap_or_else(|| "infinity".into())),
            have_until,
        ));
    }
    if !clauses.is_empty() {
        let reason = reason_of(&diffs);
        b.cluster(
            format!("ALTER ROLE {} WITH {}", ident(&r.name), clauses.join(" ")),
            None,
            reason,
            risk,
            diffs,
        );
    }
    if let Some(p) = &r.password {
        if lr.password.as_deref() != Some(p.as_str()) {
            let have = match lr.password.as_deref() {
                None => "none",
                Some(h) if scram::is_md5_verifier(h) => "md5 verifier",
                Some(_) => "another verifier",
            };
            let d = diff(&obj, "password", Some("configured verifier".into()), Some(have.into()));
            b.cluster(
                format!("ALTER ROLE {} WITH PASSWORD {}", ident(&r.name), literal(p)),
                Some(format!("ALTER ROLE {} WITH PASSWORD '<redacted>'", ident(&r.name))),
                format!("password: config has its verifier, catalog has {have}"),
                Risk::Safe,
                vec![d],
            );
        }
    }
}

pub(super) fn comment(b: &mut Builder, r: &RoleSpec, lr: Option<&LiveRole>) {
    let have = lr.and_then(|l| l.comment.clone());
    if r.comment == have || (lr.is_none() && r.comment.is_none()) {
        return;
    }
    let value = r.comment.as_deref().map(literal).unwrap_or_else(|| "NULL".into());
    let d = diff(&format!("role \"{}\"", r.name), "comment", r.comment.clone(), have);
    b.cluster(
        format!("COMMENT ON ROLE {} IS {value}", ident(&r.name)),
        None,
        reason_of(std::slice::from_ref(&d)),
        Risk::Safe,
        vec![d],
    );
}

/// The value clause of `ALTER ROLE … SET name = …`.
pub(super) fn setting_value(name: &str, value: &str) -> String {
    if LIST_SETTINGS.contains(&name.to_lowercase().as_str()) {
        value
            .split(',')
            .map(|v| literal(v.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        literal(value)
    }
}

/// How the server stores a value set by `setting_value` (for comparison).
pub(super) fn stored_setting(name: &str, value: &str) -> String {
    if LIST_SETTINGS.contains(&name.to_lowercase().as_str()) {
        value.split(',').map(|v| v.trim()).collect::<Vec<_>>().join(", ")
    } else {
        value.to_string()
    }
}

pub(super) fn settings(b: &mut Builder, r: &RoleSpec, lr: Option<&LiveRole>) {
    let empty = BTreeMap::new();
    let have = lr.map(|l| &l.settings).unwrap_or(&empty);
    let obj = format!("role \"{}\"", r.name);
    for (k, v) in &r.parameters {
        let current = have.get(k);
        match v {
            Some(v) if current.map(String::as_str) != Some(stored_setting(k, v).as_str()) => {
                let d = diff(
                    &obj,
                    &format!("setting {k}"),
                    Some(stored_setting(k, v)),
                    current.cloned(),
                );
                b.cluster(
                    format!(
                        "ALTER ROLE {} SET {} = {}",
                        ident(&r.name),
                        ident(k),
                        setting_value(k, v)
                    ),
                    None,
                    reason_of(std::slice::from_ref(&d)),
                    Risk::Safe,
                    vec![d],
                );
            }
            None if current.is_some() => {
                let d = diff(&obj, &format!("setting {k}"), None, current.cloned());
                b.cluster(
                    format!("ALTER ROLE {} RESET {}", ident(&r.name), ident(k)),
                    None,
                    "setting is DEFAULT in the config".into(),
                    Risk::Revoke,
                    vec![d],
                );
            }
            _ => {}
        }
    }
    for (k, v) in have {
        if !r.parameters.contains_key(k) {
            let d = diff(&obj, &format!("setting {k}"), None, Some(v.clone()));
            b.cluster(
                format!("ALTER ROLE {} RESET {}", ident(&r.name), ident(k)),
                None,
                "setting is not in the config".into(),
                Risk::Revoke,
                vec![d],
            );
        }
    }
}

pub(super) type GrantRow = (String, String, Risk, Diff);

pub(super) fn membership(b: &Builder, r: &RoleSpec, m: &Membership, have: Option<&LiveMembership>) -> Vec<GrantRow> {
    let obj = format!("role \"{}\"", r.name);
    let field = format!("member of \"{}\"", m.role);
    let (role_q, member_q) = (ident(&m.role), ident(&r.name));
    let Some(h) = have else {
        let mut opts = Vec::new();
        if m.admin {
            opts.push(if b.pg16 { "ADMIN TRUE" } else { "ADMIN OPTION" }.to_string());
        }
        if let Some(i) = m.inherit {
            opts.push(format!("INHERIT {}", i.to_string().to_uppercase()));
        }
        if let Some(s) = m.set {
            opts.push(format!("SET {}", s.to_string().to_uppercase()));
        }
        let with = if opts.is_empty() {
            String::new()
        } else {
            format!(" WITH {}", opts.join(", "))
        };
        let want = format!(
            "admin {}, inherit {}, set {}",
            m.admin,
            opt_bool(m.inherit),
            opt_bool(m.set)
        );
        return vec![(
            format!("GRANT {role_q} TO {member_q}{with}"),
            "membership is not granted".into(),
            Risk::Safe,
            diff(&obj, &field, Some(want), None),
        )];
    };
    let mut rows = Vec::new();
    let mut option = |name: &str, want: bool, have: bool| {
        if want == have {
            return;
        }
        let d = diff(
            &obj,
            &format!("{field} {name} option"),
            Some(yes_no(want)),
            Some(yes_no(have)),
        );
        let upper = name.to_uppercase();
        let (stmt, risk) = if want {
            let with = if name == "admin" && !b.pg16 {
                "ADMIN OPTION".to_string()
            } else {
                format!("{upper} TRUE")
            };
            (format!("GRANT {role_q} TO {member_q} WITH {with}"), Risk::Safe)
        } else {
            (
                format!("REVOKE {upper} OPTION FOR {role_q} FROM {member_q}"),
                Risk::Revoke,
            )
        };
        rows.push((stmt, reason_of(std::slice::from_ref(&d)), risk, d));
    };
    option("admin", m.admin, h.admin);
    if let (Some(want), Some(have)) = (m.inherit, h.inherit) {
        option("inherit", want, have);
    }
    if let (Some(want), Some(have)) = (m.set, h.set) {
        option("set", want, have);
    }
    rows
}

/// `REVOKE role FROM member`, naming the grantor on PG16+ (where a membership is per grantor).
pub(super) fn revoke_membership(pg16: bool, lm: &LiveMembership, member: &str) -> String {
    let granted_by = if pg16 {
        format!(" GRANTED BY {}", ident(&lm.grantor))
    } else {
        String::new()
    };
    format!("REVOKE {} FROM {}{granted_by}", ident(&lm.role), ident(member))
}
