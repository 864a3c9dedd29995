//! Refusals before any statement is planned: duplicate or reserved names, protected roles,
//! unknown settings, memberships that cycle, default privileges naming what does not exist.

use super::*;

/// Validates the config against itself and the catalog. Errors name the object.
pub(super) fn validate(desired: &Desired, live: &Live, opts: &Options) -> Result<()> {
    let mut seen = BTreeSet::new();
    for r in &desired.roles {
        check_role_name(&r.name)?;
        if !seen.insert(r.name.as_str()) {
            bail_invalid!("role \"{}\" is declared twice", r.name);
        }
        if r.present && !live.roles.contains_key(&r.name) {
            crate::roles::model::check_new_role_name(&r.name)?;
        }
        if r.connlimit < -1 {
            bail_invalid!(
                "role \"{}\": connlimit must be -1 (no limit) or more, got {}",
                r.name,
                r.connlimit
            );
        }
        if let Some(p) = &r.password {
            if !scram::is_verifier(p) {
                bail_invalid!(
                    "role \"{}\": the stored password is not a SCRAM-SHA-256 verifier; set it with pgops.set_password()",
                    r.name
                );
            }
        }
        if !r.present {
            let why = if r.name == live.bootstrap_superuser {
                Some("it is the bootstrap superuser")
            } else if r.name == live.current_user {
                Some("it is the current user")
            } else if opts.protected.iter().any(|p| p == &r.name) {
                Some("it is listed in pgops.protected_roles")
            } else {
                None
            };
            if let Some(why) = why {
                bail_invalid!("role \"{}\" is marked absent but cannot be dropped: {why}", r.name);
            }
        }
        for (k, _) in &r.parameters {
            if !k.contains('.') && !opts.known_settings.is_empty() && !opts.known_settings.contains(&k.to_lowercase()) {
                bail_invalid!("role \"{}\": unknown setting \"{k}\" in parameters", r.name);
            }
        }
    }
    let present: BTreeSet<&str> = desired
        .roles
        .iter()
        .filter(|r| r.present)
        .map(|r| r.name.as_str())
        .collect();
    let absent: BTreeSet<&str> = desired
        .roles
        .iter()
        .filter(|r| !r.present)
        .map(|r| r.name.as_str())
        .collect();
    let exists = |n: &str| present.contains(n) || (live.roles.contains_key(n) && !absent.contains(n));
    for r in desired.roles.iter().filter(|r| r.present) {
        for m in &r.memberships {
            if m.role == r.name {
                bail_invalid!("role \"{}\" cannot be a member of itself", r.name);
            }
            if absent.contains(m.role.as_str()) {
                bail_invalid!(
                    "role \"{}\" is a member of \"{}\", which is marked absent",
                    r.name,
                    m.role
                );
            }
            if !exists(&m.role) {
                bail_invalid!(
                    "role \"{}\" is a member of unknown role \"{}\": declare it in pgops.role or create it first",
                    r.name,
                    m.role
                );
            }
            if (m.inherit.is_some() || m.set.is_some()) && live.server_version_num < 160000 {
                bail_invalid!(
                    "role \"{}\", membership in \"{}\": the inherit and set options need PostgreSQL 16 or later (this server is {})",
                    r.name,
                    m.role,
                    live.server_version_num
                );
            }
        }
    }
    // Cycles: declared memberships of managed roles plus live memberships of the others.
    let mut edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in desired.roles.iter().filter(|r| r.present) {
        edges
            .entry(&r.name)
            .or_default()
            .extend(r.memberships.iter().map(|m| m.role.as_str()));
    }
    for (name, lr) in &live.roles {
        if !seen.contains(name.as_str()) {
            edges
                .entry(name)
                .or_default()
                .extend(lr.memberships.iter().map(|m| m.role.as_str()));
        }
    }
    if let Some(cycle) = find_cycle(&edges) {
        bail_invalid!("memberships form a cycle: {}", cycle.join(" → "));
    }
    for d in &desired.default_privileges {
        let what = format!(
            "default privilege for creator \"{}\" on {} to \"{}\"",
            d.creator,
            d.kind.as_str(),
            d.grantee
        );
        if !exists(&d.creator) {
            bail_invalid!("{what}: unknown creator role \"{}\"", d.creator);
        }
        if d.grantee != "PUBLIC" && !exists(&d.grantee) {
            bail_invalid!("{what}: unknown grantee role \"{}\"", d.grantee);
        }
        normalise_privileges(&d.privileges, d.kind, live.server_version_num).map_err(|e| invalid!("{what}: {e}"))?;
        // A named database that does not exist (yet: apply_databases creates it) is a note in
        // the plan; `*` is every database that allows connections.
    }
    Ok(())
}

pub(super) fn find_cycle<'a>(edges: &BTreeMap<&'a str, Vec<&'a str>>) -> Option<Vec<&'a str>> {
    // 0 = unvisited, 1 = on stack, 2 = done
    let mut state: BTreeMap<&str, u8> = BTreeMap::new();
    fn visit<'a>(
        n: &'a str,
        edges: &BTreeMap<&'a str, Vec<&'a str>>,
        state: &mut BTreeMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<&'a str>> {
        match state.get(n) {
            Some(1) => {
                let from = stack.iter().position(|s| *s == n).unwrap_or(0);
                let mut c = stack[from..].to_vec();
                c.push(n);
                return Some(c);
            }
            Some(2) => return None,
            _ => {}
        }
        state.insert(n, 1);
        stack.push(n);
        for next in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(next, edges, state, stack) {
                return Some(c);
            }
        }
        stack.pop();
        state.insert(n, 2);
        None
    }
    for n in edges.keys() {
        let mut stack = Vec::new();
        if let Some(c) = visit(n, edges, &mut state, &mut stack) {
            return Some(c);
        }
    }
    None
}
