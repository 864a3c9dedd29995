//! `pgops.security_report()`: the audit as one document per instance, grouped by CIS section,
//! with each section's score and every failure's object and fix, in Markdown or HTML. Every
//! value that comes from the server (object names, details) is escaped for the format: a role
//! or table name cannot add markup, links or script to the report.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Deserialize;

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Row {
    pub check_id: String,
    pub cis_id: Option<String>,
    pub title: String,
    pub severity: String,
    pub status: String,
    pub object: Option<String>,
    pub detail: Option<String>,
    pub fix_hint: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Report {
    pub instance: String,
    pub version: String,
    pub database: String,
    pub checked_at: String,
    pub pgops_version: String,
    pub rows: Vec<Row>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Html,
}

impl Format {
    pub fn parse(s: &str) -> Result<Format, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "markdown" | "md" => Ok(Format::Markdown),
            "html" => Ok(Format::Html),
            _ => Err(format!(
                "unknown report format \"{}\": use 'markdown' or 'html'",
                s.escape_default()
            )),
        }
    }
}

/// CIS PostgreSQL 17 Benchmark's sections.
pub fn section_title(section: &str) -> &'static str {
    match section {
        "1" => "Installation and patches",
        "2" => "Directory and file permissions",
        "3" => "Logging and auditing",
        "4" => "User access and authorization",
        "5" => "Connection and login",
        "6" => "PostgreSQL settings",
        "7" => "Replication",
        "8" => "Special configuration considerations",
        _ => "Beyond CIS: pgops' own checks",
    }
}

/// A check's outcome over its rows: fail, then unknown, manual, pass, n/a.
pub fn check_status<'a>(statuses: impl IntoIterator<Item = &'a str>) -> &'static str {
    let all: Vec<&str> = statuses.into_iter().collect();
    for s in ["fail", "unknown", "manual", "pass"] {
        if all.contains(&s) {
            return s;
        }
    }
    "n/a"
}

pub fn severity_weight(severity: &str) -> u32 {
    match severity {
        "critical" => 10,
        "high" => 5,
        "medium" => 3,
        "low" => 1,
        _ => 0,
    }
}

/// Sorts CIS ids numerically (3.1.2 before 3.1.10).
fn id_key(id: &str) -> Vec<u32> {
    id.split('.').map(|p| p.parse().unwrap_or(u32::MAX)).collect()
}

struct Check<'a> {
    id: &'a str,
    cis: Option<&'a str>,
    title: &'a str,
    status: &'static str,
    /// The worst severity among failing rows, else the check's own.
    severity: &'a str,
    failures: Vec<&'a Row>,
    notes: Vec<&'a Row>,
}

#[derive(Default, Clone, Copy)]
struct Tally {
    checks: u32,
    pass: u32,
    fail: u32,
    manual: u32,
    na: u32,
    unknown: u32,
    pass_weight: u32,
    fail_weight: u32,
}

impl Tally {
    fn add(&mut self, c: &Check) {
        self.checks += 1;
        let w = severity_weight(c.severity);
        match c.status {
            "pass" => {
                self.pass += 1;
                self.pass_weight += w;
            }
            "fail" => {
                self.fail += 1;
                self.fail_weight += w;
            }
            "manual" => self.manual += 1,
            "unknown" => self.unknown += 1,
            _ => self.na += 1,
        }
    }
    fn score(&self) -> String {
        let total = self.pass_weight + self.fail_weight;
        if total == 0 {
            "–".into()
        } else {
            format!("{:.1}", 100.0 * f64::from(self.pass_weight) / f64::from(total))
        }
    }
}

fn checks(rows: &[Row]) -> BTreeMap<String, Vec<Check<'_>>> {
    let mut by_id: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        by_id.entry(r.check_id.as_str()).or_default().push(r);
    }
    let mut sections: BTreeMap<String, Vec<Check>> = BTreeMap::new();
    for (id, rs) in by_id {
        let first = rs[0];
        let status = check_status(rs.iter().map(|r| r.status.as_str()));
        let failures: Vec<&Row> = rs.iter().copied().filter(|r| r.status == "fail").collect();
        let severity = failures
            .iter()
            .map(|r| r.severity.as_str())
            .max_by_key(|s| severity_weight(s))
            .unwrap_or(first.severity.as_str());
        let notes = rs.iter().copied().filter(|r| r.status != "fail").collect();
        let section = first
            .cis_id
            .as_deref()
            .map(|c| c.split('.').next().unwrap_or_default().to_string())
            .unwrap_or_else(|| "~".into()); // after the numbered sections
        sections.entry(section).or_default().push(Check {
            id,
            cis: first.cis_id.as_deref(),
            title: &first.title,
            status,
            severity,
            failures,
            notes,
        });
    }
    for list in sections.values_mut() {
        list.sort_by(|a, b| match (a.cis, b.cis) {
            (Some(x), Some(y)) => id_key(x).cmp(&id_key(y)),
            _ => a.id.cmp(b.id),
        });
    }
    sections
}

/// Markdown: escapes what a renderer would read as markup, table cells' pipes, and raw HTML.
pub fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '|' | '~' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => out.push('�'),
            c => out.push(c),
        }
    }
    out
}

/// A server value as a Markdown code span: nothing in it is markup or a link (GFM links bare
/// `https://…` and `www.…` in text, never in code). Pipes stay escaped: a table cell ends at one
/// even inside a code span.
pub fn md_code(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .replace('|', "\\|");
    let ticks = "`".repeat(longest_run(&clean, '`') + 1);
    let pad = if clean.starts_with('`') || clean.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{clean}{pad}{ticks}")
}

fn longest_run(text: &str, c: char) -> usize {
    let (mut best, mut cur) = (0, 0);
    for x in text.chars() {
        cur = if x == c { cur + 1 } else { 0 };
        best = best.max(cur);
    }
    best
}

/// Markdown prose with server values in it: `md`, and bare links broken with a zero-width space.
pub fn md_text(text: &str) -> String {
    md(text).replace("://", ":\u{200B}//").replace("www.", "www\u{200B}.")
}

pub fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' => out.push('�'),
            c => out.push(c),
        }
    }
    out
}

fn section_name(s: &str) -> String {
    if s == "~" {
        section_title(s).to_string()
    } else {
        format!("{s} {}", section_title(s))
    }
}

impl Tally {
    /// "N checks: a pass, b fail, …" (the same words in both formats).
    fn counts(&self) -> String {
        format!(
            "{} checks: {} pass, {} fail, {} manual, {} n/a, {} unknown.",
            self.checks, self.pass, self.fail, self.manual, self.na, self.unknown
        )
    }

    /// A row of the summary table: checks, pass, fail, manual, n/a, unknown, score.
    fn cells(&self) -> [String; 7] {
        [
            self.checks.to_string(),
            self.pass.to_string(),
            self.fail.to_string(),
            self.manual.to_string(),
            self.na.to_string(),
            self.unknown.to_string(),
            self.score(),
        ]
    }
}

fn label(c: &Check) -> String {
    c.cis.map_or_else(|| c.id.to_string(), str::to_string)
}

pub fn render(r: &Report, f: Format) -> String {
    let sections = checks(&r.rows);
    let mut total = Tally::default();
    let tallies: Vec<(String, Tally)> = sections
        .iter()
        .map(|(s, list)| {
            let mut t = Tally::default();
            for c in list {
                t.add(c);
                total.add(c);
            }
            (s.clone(), t)
        })
        .collect();
    match f {
        Format::Markdown => markdown(r, &sections, &tallies, &total),
        Format::Html => to_html(r, &sections, &tallies, &total),
    }
}

fn markdown(r: &Report, sections: &BTreeMap<String, Vec<Check>>, tallies: &[(String, Tally)], total: &Tally) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Security report: {}\n", md_text(&r.instance));
    let _ = writeln!(
        o,
        "PostgreSQL {} · database {} · checked {} · pgops {} · CIS PostgreSQL 17 Benchmark v1.0 numbering\n",
        md_text(&r.version),
        md_code(&r.database),
        md(&r.checked_at),
        md(&r.pgops_version)
    );
    let _ = writeln!(o, "**Score: {} / 100** — {}\n", total.score(), total.counts());
    o.push_str("| Section | Checks | Pass | Fail | Manual | n/a | Unknown | Score |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (s, t) in tallies {
        let _ = writeln!(o, "| {} | {} |", section_name(s), t.cells().join(" | "));
    }
    for (s, list) in sections {
        let _ = writeln!(o, "\n## {}\n", section_name(s));
        o.push_str("| Control | Title | Status | Severity |\n|---|---|---|---|\n");
        for c in list {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} |",
                md(&label(c)),
                md(c.title),
                c.status,
                md(c.severity)
            );
        }
        let failing: Vec<&Check> = list.iter().filter(|c| !c.failures.is_empty()).collect();
        if !failing.is_empty() {
            o.push_str("\n### Failures\n\n");
            for c in failing {
                let _ = writeln!(o, "- **{}** {} ({})", md(&label(c)), md(c.title), md(c.severity));
                for row in &c.failures {
                    let _ = writeln!(
                        o,
                        "  - {}{}",
                        row.object
                            .as_deref()
                            .map(|x| format!("{}: ", md_code(x)))
                            .unwrap_or_default(),
                        md_text(row.detail.as_deref().unwrap_or_default())
                    );
                }
                let _ = writeln!(o, "  - Fix: {}", md(&c.failures[0].fix_hint));
            }
        }
        let review: Vec<&Check> = list
            .iter()
            .filter(|c| matches!(c.status, "manual" | "unknown"))
            .collect();
        if !review.is_empty() {
            o.push_str("\n### To review by hand\n\n");
            for c in review {
                for row in c.notes.iter().filter(|n| n.status == c.status) {
                    let _ = writeln!(
                        o,
                        "- **{}** ({}): {}",
                        md(&label(c)),
                        c.status,
                        md_text(row.detail.as_deref().unwrap_or_default())
                    );
                }
            }
        }
    }
    o
}

fn badge(status: &str) -> &'static str {
    match status {
        "pass" => "pass",
        "fail" => "fail",
        "manual" => "manual",
        "unknown" => "unknown",
        _ => "na",
    }
}

fn to_html(r: &Report, sections: &BTreeMap<String, Vec<Check>>, tallies: &[(String, Tally)], total: &Tally) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Security report: {}</title>\n<style>\
body{{font-family:sans-serif;max-width:70em;margin:2em auto;color:#222}}table{{border-collapse:collapse;margin:1em 0}}\
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}}.pass{{color:#1a7f37}}.fail{{color:#cf222e;font-weight:bold}}\
.manual{{color:#9a6700}}.unknown{{color:#8250df}}.na{{color:#777}}</style></head><body>\n",
        html(&r.instance)
    );
    let _ = writeln!(o, "<h1>Security report: {}</h1>", html(&r.instance));
    let _ = writeln!(
        o,
        "<p>PostgreSQL {} · database {} · checked {} · pgops {} · CIS PostgreSQL 17 Benchmark v1.0 numbering</p>",
        html(&r.version),
        html(&r.database),
        html(&r.checked_at),
        html(&r.pgops_version)
    );
    let _ = writeln!(
        o,
        "<p><strong>Score: {} / 100</strong> — {}</p>",
        total.score(),
        total.counts()
    );
    o.push_str("<table><tr><th>Section</th><th>Checks</th><th>Pass</th><th>Fail</th><th>Manual</th><th>n/a</th><th>Unknown</th><th>Score</th></tr>\n");
    for (s, t) in tallies {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td></tr>",
            html(&section_name(s)),
            t.cells().join("</td><td>")
        );
    }
    o.push_str("</table>\n");
    for (s, list) in sections {
        let _ = writeln!(o, "<h2>{}</h2>", html(&section_name(s)));
        o.push_str(
            "<table><tr><th>Control</th><th>Title</th><th>Status</th><th>Severity</th><th>Findings and fix</th></tr>\n",
        );
        for c in list {
            let mut findings = String::new();
            for row in c
                .failures
                .iter()
                .copied()
                .chain(c.notes.iter().copied().filter(|n| n.status != "pass"))
            {
                let _ = write!(
                    findings,
                    "<div>{}{}</div>",
                    row.object
                        .as_deref()
                        .map(|x| format!("<code>{}</code>: ", html(x)))
                        .unwrap_or_default(),
                    html(row.detail.as_deref().unwrap_or_default())
                );
            }
            if !c.failures.is_empty() {
                let _ = write!(findings, "<div><em>Fix:</em> {}</div>", html(&c.failures[0].fix_hint));
            }
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
                html(&label(c)),
                html(c.title),
                badge(c.status),
                c.status,
                html(c.severity),
                findings
            );
        }
        o.push_str("</table>\n");
    }
    o.push_str("</body></html>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, cis: Option<&str>, status: &str, severity: &str, object: Option<&str>, detail: &str) -> Row {
        Row {
            check_id: id.into(),
            cis_id: cis.map(Into::into),
            title: format!("title of {id}"),
            severity: severity.into(),
            status: status.into(),
            object: object.map(Into::into),
            detail: Some(detail.into()),
            fix_hint: format!("fix {id}"),
        }
    }

    fn sample() -> Report {
        Report {
            instance: "pg-test-1".into(),
            version: "17.2".into(),
            database: "postgres".into(),
            checked_at: "2026-12-07 10:00:00+00".into(),
            pgops_version: "0.1.0".into(),
            rows: vec![
                row("CIS-3.1.10", Some("3.1.10"), "n/a", "low", None, "syslog is not used"),
                row("CIS-3.1.2", Some("3.1.2"), "pass", "medium", None, "stderr"),
                row(
                    "CIS-4.3",
                    Some("4.3"),
                    "fail",
                    "high",
                    Some("admin|<script>"),
                    "a second *superuser*",
                ),
                row("CIS-4.3", Some("4.3"), "fail", "high", Some("ops"), "another"),
                row(
                    "CIS-4.4",
                    Some("4.4"),
                    "manual",
                    "low",
                    None,
                    "review the login roles: a, b",
                ),
                row("PW-MD5-HASH", None, "pass", "high", None, "none"),
                row(
                    "AUTH-TRUST",
                    None,
                    "fail",
                    "critical",
                    Some("line 1: local all all trust"),
                    "no password",
                ),
            ],
        }
    }

    #[test]
    fn markdown_groups_by_section_scores_and_escapes() {
        let m = render(&sample(), Format::Markdown);
        assert!(m.starts_with("# Security report: pg-test-1\n"));
        // 3.1.2 sorts before 3.1.10; sections in order, pgops' own last.
        let (a, b) = (m.find("| 3.1.2 |").unwrap(), m.find("| 3.1.10 |").unwrap());
        assert!(a < b);
        assert!(m.find("## 3 Logging").unwrap() < m.find("## 4 User access").unwrap());
        assert!(m.find("## 4 User access").unwrap() < m.find("## Beyond CIS").unwrap());
        // Section 4: one fail (high, weight 5) and one manual: score 0; section 3: pass only: 100.
        assert!(
            m.contains("| 3 Logging and auditing | 2 | 1 | 0 | 0 | 1 | 0 | 100.0 |"),
            "{m}"
        );
        assert!(
            m.contains("| 4 User access and authorization | 2 | 0 | 1 | 1 | 0 | 0 | 0.0 |"),
            "{m}"
        );
        // Overall: pass 3.1.2 (3) + PW-MD5-HASH (5) = 8 of 8 + 5 + 10 = 23 → 34.8.
        assert!(
            m.contains("**Score: 34.8 / 100** — 6 checks: 2 pass, 2 fail, 1 manual, 1 n/a, 0 unknown."),
            "{m}"
        );
        // Every failing object with its detail, one fix per check.
        assert!(m.contains("  - `admin\\|<script>`: a second \\*superuser\\*"), "{m}");
        assert!(m.contains("  - `ops`: another"));
        assert_eq!(m.matches("  - Fix: fix CIS-4.3").count(), 1);
        assert!(m.contains("- **4.4** (manual): review the login roles: a, b"));
        // Only inside the code span (literal there): nowhere as markup.
        assert!(!m.replace("`admin\\|<script>`", "").contains("<script>"));
    }

    #[test]
    fn html_escapes_everything_from_the_server() {
        let mut r = sample();
        r.instance = "<img src=x onerror=alert(1)>".into();
        r.rows
            .push(row("CIS-5.2", Some("5.2"), "fail", "high", Some("\"'><b>"), "x & y"));
        let h = render(&r, Format::Html);
        assert!(h.starts_with("<!DOCTYPE html>"));
        assert!(!h.contains("<img") && !h.contains("<b>"), "{h}");
        assert!(h.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(h.contains("<code>&quot;&#39;&gt;&lt;b&gt;</code>: x &amp; y"));
        assert!(h.contains("<td class=\"fail\">fail</td>"));
        assert!(h.ends_with("</body></html>\n"));
    }

    #[test]
    fn formats_and_statuses() {
        assert_eq!(Format::parse("Markdown"), Ok(Format::Markdown));
        assert_eq!(Format::parse("md"), Ok(Format::Markdown));
        assert_eq!(Format::parse(" html "), Ok(Format::Html));
        let e = Format::parse("pdf\n").unwrap_err();
        assert!(e.contains("\"pdf\\n\"") && e.contains("'markdown' or 'html'"), "{e}");
        assert_eq!(check_status(["pass", "fail"]), "fail");
        assert_eq!(check_status(["n/a", "manual"]), "manual");
        assert_eq!(check_status(["n/a"]), "n/a");
        assert_eq!(check_status(["pass", "unknown"]), "unknown");
    }

    #[test]
    fn markdown_code_spans_and_links() {
        assert_eq!(md_code("a`b"), "``a`b``");
        assert_eq!(md_code("`x"), "`` `x ``");
        assert_eq!(md_code("t|u\nv"), "`t\\|u v`");
        let t = md_text("see https://evil.example/login or www.evil.example");
        assert!(!t.contains("://") && !t.contains("www."), "{t}");
        let mut r = sample();
        r.rows.push(row(
            "CIS-4.6",
            Some("4.6"),
            "fail",
            "high",
            Some("https://evil.example/x"),
            "PUBLIC may see www.evil.example",
        ));
        let m = render(&r, Format::Markdown);
        assert!(
            m.contains("  - `https://evil.example/x`: PUBLIC may see www\u{200B}.evil.example"),
            "{m}"
        );
    }
}
