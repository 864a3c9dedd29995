//! pg_hba.conf as a file: reading one back (with the rule titles pgops writes above its lines),
//! which line a connection hits first, whether a file locks out the bootstrap superuser or the
//! caller, and replacing the file atomically (temporary file, fsync, rename, fsync of the
//! directory) without ever writing through a planted link.

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::line::{Conn, Line, matches};
use crate::error::{Code, Error, Result};

/// An active (not commented-out) line: its number in the file, the title of the rule it came
/// from, and the parsed line.
pub type ActiveLine = (usize, String, Line);

/// The active lines of a file's text, each with the title of the `# title [role]` comment above it.
/// `include` directives are refused: what they pull in cannot be simulated.
pub fn parse_file(text: &str) -> Result<Vec<ActiveLine>> {
    let mut title = String::new();
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let t = raw.trim();
        if let Some(c) = t.strip_prefix('#') {
            let c = c.trim();
            if let Some(p) = c.rfind(" [") {
                if c.ends_with(']') && !c.starts_with('#') {
                    title = c[..p].trim_end_matches(" [DISABLED]").to_string();
                }
            }
            continue;
        }
        if t.is_empty() {
            continue;
        }
        if t.starts_with("include") {
            return Err(Error::new(
                Code::FeatureNotSupported,
                format!("line {}: include directives cannot be simulated", i + 1),
            ));
        }
        // The file is the server's, not the caller's input: a line pgops cannot read is a line it
        // cannot simulate.
        let line = Line::parse(t)
            .map_err(|e| Error::new(Code::FeatureNotSupported, format!("line {}: {}", i + 1, e.message)))?;
        out.push((i + 1, title.clone(), line));
    }
    Ok(out)
}

/// The first active line matching the connection (PostgreSQL stops at the first match).
pub fn first_match<'a>(active: &'a [ActiveLine], c: &Conn) -> Result<Option<&'a ActiveLine>> {
    for entry in active {
        let hit = matches(&entry.2, c)
            .map_err(|e| Error::new(Code::FeatureNotSupported, format!("line {}: {}", entry.0, e.message)))?;
        if hit {
            return Ok(Some(entry));
        }
    }
    Ok(None)
}

/// Refuses a file that locks out the bootstrap superuser's local connections (to `postgres` and
/// `template1`) or the caller's current connection: a reject line or no line at all. A file whose
/// lines cannot be simulated for them is refused too (nothing proves access is kept).
pub fn check_lockout(active: &[ActiveLine], bootstrap: &str, caller: &Conn) -> Result<()> {
    let refuse = |m: String| Error::new(Code::ObjectNotInPrerequisiteState, m);
    let verdict = |hit: Option<&ActiveLine>| match hit {
        Some((_, _, l)) if l.method != "reject" => None,
        Some((n, _, _)) => Some(format!("hits reject on line {n}")),
        None => Some("matches no line".to_string()),
    };
    let none = BTreeSet::new();
    for db in ["postgres", "template1"] {
        let c = Conn {
            user: bootstrap,
            database: db,
            address: None,
            ssl: false,
            groups: &none,
        };
        let hit = first_match(active, &c)
            .map_err(|e| refuse(format!("cannot prove the bootstrap superuser keeps local access: {e}")))?;
        if let Some(why) = verdict(hit) {
            return Err(refuse(format!(
                "refusing a pg_hba.conf that locks out the bootstrap superuser \"{bootstrap}\": a local connection to database \"{db}\" {why}"
            ))
            .hint("Keep a local rule for the superuser, such as Pigsty's 'dbsu access via local os user ident' (order 100)."));
        }
    }
    let how = match caller.address {
        Some(a) => format!("from {a}"),
        None => "over the local socket".to_string(),
    };
    let hit =
        first_match(active, caller).map_err(|e| refuse(format!("cannot prove your connection keeps access: {e}")))?;
    if let Some(why) = verdict(hit) {
        return Err(refuse(format!(
            "refusing a pg_hba.conf that locks you out: \"{}\" connecting to \"{}\" {how} {why}",
            caller.user, caller.database
        ))
        .hint("Add a rule that admits your current connection, or apply from a connection the new rules admit."));
    }
    Ok(())
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, with
/// fsyncs, giving the file `mode`.
///
/// A symbolic link at `path` stays a link: the file it points to is the one replaced (a config
/// management tool that links pg_hba.conf keeps its link). The temporary file is created anew
/// (O_EXCL) and never through a link (O_NOFOLLOW), so nothing planted at its name is written to.
pub fn replace_file(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path)?,
        _ => path.to_path_buf(),
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.pgops.{}.tmp",
        path.file_name().and_then(|f| f.to_str()).unwrap_or("pg_hba.conf"),
        std::process::id()
    ));
    // A temporary file left by a crash of this same process id: removing a link removes the link.
    let _ = std::fs::remove_file(&tmp);
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(mode)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    fsync_dir(dir)
}

/// The backups of `path` beside it (`<name>.pgops-<timestamp>-<instance>`), split into this
/// instance's, oldest first, and other instances' (copied here with a data directory).
pub fn backups(path: &Path, instance: &str) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let Some(dir) = path.parent() else {
        return (vec![], vec![]);
    };
    let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("pg_hba.conf");
    let (mut mine, mut foreign) = (vec![], vec![]);
    for p in std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()) {
        let name = p.file_name().and_then(|f| f.to_str()).unwrap_or("");
        match super::stamp::backup_is_mine(name, file, instance) {
            Some(true) => mine.push(p),
            Some(false) => foreign.push(p),
            None => {}
        }
    }
    mine.sort();
    foreign.sort();
    (mine, foreign)
}

/// Keeps this instance's newest `keep` backups of `path`.
pub fn trim_backups(path: &Path, keep: usize, instance: &str) {
    let (mut mine, _) = backups(path, instance);
    while mine.len() > keep {
        let _ = std::fs::remove_file(mine.remove(0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# Time : 2026-01-01\n\
        # dbsu access via local os user ident [default]\n\
        local   all   postgres   ident\n\
        \n\
        # reject everything else [default]\n\
        host    all   all   0.0.0.0/0   reject\n";

    fn conn<'a>(user: &'a str, db: &'a str, addr: Option<&str>, groups: &'a BTreeSet<String>) -> Conn<'a> {
        Conn {
            user,
            database: db,
            address: addr.map(|a| a.parse().unwrap()),
            ssl: false,
            groups,
        }
    }

    #[test]
    fn a_file_reads_back_with_titles_and_numbers() {
        let active = parse_file(FILE).unwrap();
        assert_eq!(active.len(), 2);
        assert_eq!(
            (active[0].0, active[0].1.as_str()),
            (3, "dbsu access via local os user ident")
        );
        assert_eq!((active[1].0, active[1].1.as_str()), (6, "reject everything else"));
        let e = parse_file("include_dir conf.d\n").unwrap_err();
        assert_eq!(e.code, Code::FeatureNotSupported);
        assert!(e.message.starts_with("line 1: include"), "{e}");
        let e = parse_file("local all\n").unwrap_err();
        assert!(e.message.starts_with("line 1: "), "{e}");
        assert_eq!(e.code, Code::FeatureNotSupported);
    }

    #[test]
    fn the_first_matching_line_wins() {
        let active = parse_file(FILE).unwrap();
        let g = BTreeSet::new();
        assert_eq!(
            first_match(&active, &conn("postgres", "app", None, &g))
                .unwrap()
                .unwrap()
                .0,
            3
        );
        assert_eq!(
            first_match(&active, &conn("app", "app", Some("10.0.0.1"), &g))
                .unwrap()
                .unwrap()
                .0,
            6
        );
        assert!(first_match(&active, &conn("app", "app", None, &g)).unwrap().is_none());
    }

    #[test]
    fn lockouts_are_refused_with_the_line_that_causes_them() {
        let g = BTreeSet::new();
        let active = parse_file(FILE).unwrap();
        // The caller over TCP hits the reject line.
        let me = conn("postgres", "postgres", Some("10.0.0.1"), &g);
        let e = check_lockout(&active, "postgres", &me).unwrap_err();
        assert_eq!(e.code, Code::ObjectNotInPrerequisiteState);
        assert!(
            e.message.contains("locks you out") && e.message.contains("hits reject on line 6"),
            "{e}"
        );
        assert!(e.hint.is_some());
        // The bootstrap superuser under another name matches no line locally.
        let local = conn("postgres", "postgres", None, &g);
        let e = check_lockout(&active, "admin", &local).unwrap_err();
        assert!(
            e.message.contains("bootstrap superuser \"admin\"") && e.message.contains("matches no line"),
            "{e}"
        );
        check_lockout(&active, "postgres", &local).unwrap();
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pgops-hba-file-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn replacing_keeps_a_link_and_the_mode_and_leaves_no_temporary_file() {
        let d = scratch("link");
        let target = d.join("real.conf");
        std::fs::write(&target, "old").unwrap();
        let link = d.join("pg_hba.conf");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        replace_file(&link, b"new", 0o640).unwrap();
        assert!(
            std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(),
            "still a link"
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        assert_eq!(std::fs::metadata(&target).unwrap().permissions().mode() & 0o777, 0o640);
        let left: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_link_planted_at_the_temporary_name_is_not_written_through() {
        let d = scratch("plant");
        let path = d.join("pg_hba.conf");
        std::fs::write(&path, "old").unwrap();
        let victim = d.join("victim");
        std::fs::write(&victim, "victim").unwrap();
        let tmp = d.join(format!(".pg_hba.conf.pgops.{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        replace_file(&path, b"new", 0o600).unwrap();
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            "victim",
            "the planted link's target is untouched"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert!(std::fs::symlink_metadata(&tmp).is_err(), "the temporary name is gone");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn only_this_instances_newest_backups_are_kept_and_others_are_told_apart() {
        let d = scratch("backups");
        let path = d.join("pg_hba.conf");
        for t in ["01", "02", "03", "04"] {
            std::fs::write(d.join(format!("pg_hba.conf.pgops-202601{t}T000000.000000-me")), t).unwrap();
        }
        std::fs::write(d.join("pg_hba.conf.pgops-20250101T000000.000000-other"), "x").unwrap();
        std::fs::write(d.join("other.pgops-20250101T000000.000000-me"), "x").unwrap();
        trim_backups(&path, 2, "me");
        let mut left: Vec<String> = std::fs::read_dir(&d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "other.pgops-20250101T000000.000000-me",
                "pg_hba.conf.pgops-20250101T000000.000000-other",
                "pg_hba.conf.pgops-20260103T000000.000000-me",
                "pg_hba.conf.pgops-20260104T000000.000000-me"
            ]
        );
        let (mine, foreign) = backups(&path, "me");
        assert_eq!((mine.len(), foreign.len()), (2, 1));
        assert!(foreign[0].ends_with("pg_hba.conf.pgops-20250101T000000.000000-other"));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
