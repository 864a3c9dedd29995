//! Rules of the CIS PostgreSQL Benchmark that need more than a comparison: the cipher list
//! (6.10), the log line prefix (3.1.24), address ranges in pg_hba.conf (5.9), the log time zone
//! (3.1.26), search_path lists (the look-alike checks). Pure; the SQL audit calls them.

use std::net::IpAddr;

/// CIS 6.10's cipher suites: TLS 1.3 suites and TLS 1.2 AEAD suites with forward secrecy.
pub const STRONG_CIPHERS: [&str; 19] = [
    "TLS_AES_256_GCM_SHA384",
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_128_CCM_SHA256",
    "TLS_CHACHA20_POLY1305_SHA256",
    "ECDHE-ECDSA-AES256-CCM",
    "ECDHE-ECDSA-AES128-CCM",
    "DHE-RSA-AES256-CCM",
    "DHE-RSA-AES128-CCM",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "DHE-DSS-AES256-GCM-SHA384",
    "DHE-DSS-AES128-GCM-SHA256",
    "DHE-RSA-AES256-GCM-SHA384",
    "DHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
    "DHE-RSA-CHACHA20-POLY1305",
];

/// The terms of an OpenSSL cipher list that let anything but CIS 6.10's suites in: groups
/// (`HIGH`, `MEDIUM`, `ALL`…) and suites not on the list. Exclusions (`!x`, `-x`) take nothing in.
pub fn weak_cipher_terms(ciphers: &str) -> Vec<String> {
    ciphers
        .split([':', ',', ' '])
        .map(str::trim)
        .filter(|t| !t.is_empty() && !t.starts_with(['!', '-']))
        .map(|t| t.trim_start_matches('+'))
        .filter(|t| !STRONG_CIPHERS.iter().any(|s| s.eq_ignore_ascii_case(t)))
        .map(str::to_string)
        .collect()
}

/// What CIS 3.1.24 wants in `log_line_prefix` and is missing: a time (`%t`, `%m` or `%n`), the
/// process (`%p` or `%c`), the database (`%d`), the user (`%u`), the application (`%a`), the
/// client (`%h` or `%r`).
pub fn log_line_prefix_missing(prefix: &str) -> Vec<&'static str> {
    // The escapes in use (`%%` is a literal percent sign; `%-10u` pads).
    let mut used = std::collections::BTreeSet::new();
    let mut chars = prefix.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        for n in chars.by_ref() {
            if n == '-' || n.is_ascii_digit() {
                continue;
            }
            used.insert(n);
            break;
        }
    }
    let wants: [(&'static str, &[char]); 6] = [
        ("a time (%m, %t or %n)", &['m', 't', 'n']),
        ("the process (%p or %c)", &['p', 'c']),
        ("the database (%d)", &['d']),
        ("the user (%u)", &['u']),
        ("the application (%a)", &['a']),
        ("the client (%h or %r)", &['h', 'r']),
    ];
    wants
        .into_iter()
        .filter(|(_, any)| !any.iter().any(|c| used.contains(c)))
        .map(|(what, _)| what)
        .collect()
}

/// The prefix length of a netmask (`255.255.0.0` → 16, `ffff:ffff::` → 32); None for a mask
/// that is not a run of ones.
pub fn netmask_prefix(netmask: &str) -> Option<u32> {
    let bits: u128 = match netmask.parse::<IpAddr>().ok()? {
        IpAddr::V4(v) => u128::from(u32::from(v)) << 96,
        IpAddr::V6(v) => u128::from(v),
    };
    let ones = bits.leading_ones();
    (bits.checked_shl(ones).unwrap_or(0) == 0).then_some(ones)
}

/// CIS 5.9: how many addresses a pg_hba.conf line's address and netmask admit, as a power of
/// two (IPv4 /16 → 16, IPv6 /64 → 64); None when the mask is not a prefix.
pub fn address_bits(netmask: &str) -> Option<u32> {
    let width = if netmask.contains(':') { 128 } else { 32 };
    netmask_prefix(netmask).map(|p| width - p.min(width))
}

/// CIS 3.1.26: the time zone is UTC (or GMT) under any of its names.
pub fn is_utc_zone(zone: &str) -> bool {
    let z = zone.trim().to_ascii_lowercase();
    let z = z.strip_prefix("etc/").unwrap_or(&z);
    matches!(
        z,
        "utc" | "gmt" | "uct" | "universal" | "zulu" | "gmt0" | "gmt+0" | "gmt-0" | "greenwich"
    )
}

/// The schemas of a `search_path` value in order, unquoted (`"$user", public` → [$user, public]).
pub fn search_path_schemas(value: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c if c.is_whitespace() && !quoted => {}
            c if quoted => cur.push(c),
            c => cur.push(c.to_ascii_lowercase()),
        }
    }
    out.push(cur);
    out.into_iter().filter(|s| !s.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ciphers_outside_the_list_are_named() {
        assert_eq!(
            weak_cipher_terms("HIGH:MEDIUM:+3DES:!aNULL"),
            vec!["HIGH", "MEDIUM", "3DES"]
        );
        assert!(weak_cipher_terms("ECDHE-RSA-AES256-GCM-SHA384:TLS_AES_256_GCM_SHA384:!aNULL").is_empty());
        assert!(
            weak_cipher_terms("ecdhe-rsa-aes128-gcm-sha256").is_empty(),
            "case does not matter"
        );
        assert_eq!(
            weak_cipher_terms("AES128-SHA"),
            vec!["AES128-SHA"],
            "no forward secrecy"
        );
    }

    #[test]
    fn log_line_prefix_wants_who_where_and_when() {
        assert!(log_line_prefix_missing("%m [%p]: db=%d,user=%u,app=%a,client=%h ").is_empty());
        assert!(
            log_line_prefix_missing("%t %c %-10d %u %a %r").is_empty(),
            "padding and alternatives"
        );
        assert_eq!(
            log_line_prefix_missing("%m [%p] "),
            vec![
                "the database (%d)",
                "the user (%u)",
                "the application (%a)",
                "the client (%h or %r)"
            ]
        );
        assert_eq!(
            log_line_prefix_missing("%%d %%u").len(),
            6,
            "a literal percent is not an escape"
        );
    }

    #[test]
    fn netmasks_and_ranges() {
        assert_eq!(netmask_prefix("255.255.0.0"), Some(16));
        assert_eq!(netmask_prefix("255.255.255.255"), Some(32));
        assert_eq!(netmask_prefix("0.0.0.0"), Some(0));
        assert_eq!(netmask_prefix("ffff:ffff:ffff:ffff::"), Some(64));
        assert_eq!(netmask_prefix("::"), Some(0));
        assert_eq!(netmask_prefix("255.0.255.0"), None, "not a prefix");
        assert_eq!(netmask_prefix("bogus"), None);
        assert_eq!(address_bits("255.255.0.0"), Some(16));
        assert_eq!(address_bits("255.0.0.0"), Some(24));
        assert_eq!(address_bits("ffff:ffff:ffff:ffff::"), Some(64));
    }

    #[test]
    fn utc_by_any_name() {
        for z in ["UTC", "Etc/UTC", "GMT", "etc/gmt", "Zulu", "Etc/Universal", "UCT"] {
            assert!(is_utc_zone(z), "{z}");
        }
        for z in ["Europe/London", "Asia/Shanghai", "Etc/GMT+1", "PST8PDT", ""] {
            assert!(!is_utc_zone(z), "{z}");
        }
    }

    #[test]
    fn search_path_lists() {
        assert_eq!(search_path_schemas("\"$user\", public"), vec!["$user", "public"]);
        assert_eq!(
            search_path_schemas("Tenant, \"My Schema\",pg_catalog"),
            vec!["tenant", "My Schema", "pg_catalog"]
        );
        assert_eq!(search_path_schemas("\"a,b\", \"q\"\"x\""), vec!["a,b", "q\"x"]);
        assert!(search_path_schemas("").is_empty());
    }
}
