//! The repository stands on its own: a fresh clone of the checkout's HEAD
//! refers to nothing outside itself, its relative markdown links lead to
//! files (and headings) that exist, and every rule id that code, contracts,
//! documents or test names cite is defined in `docs/rules.md`.
//!
//! The checks read a clone, not the working tree, so they see exactly what a
//! user who clones the repository gets: committed, tracked files only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use regex::Regex;
use tempfile::TempDir;

/// The file that defines every rule id.
const RULES: &str = "docs/rules.md";

/// A clone of the checkout's HEAD in a temporary directory, with its tracked
/// text files.
struct Clone {
    _dir: TempDir,
    root: PathBuf,
    /// Tracked files that are UTF-8 text, by path relative to the root.
    files: BTreeMap<String, String>,
}

impl Clone {
    /// Clones the checkout this crate lives in (uncommitted changes are not
    /// part of the clone) and reads its tracked text files.
    fn of_head() -> Self {
        let checkout = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the ccp-e2e crate lives in a subdirectory of the checkout")
            .to_path_buf();
        let head = git(&checkout, &["rev-parse", "HEAD"]);
        let dir = TempDir::new().unwrap();
        let root = dir.path().join("ccp");
        let status = Command::new("git")
            .args(["-c", "advice.detachedHead=false", "clone", "--quiet"])
            .arg(&checkout)
            .arg(&root)
            .status()
            .expect("git runs");
        assert!(
            status.success(),
            "git clone of {} failed",
            checkout.display()
        );
        assert_eq!(
            git(&root, &["rev-parse", "HEAD"]),
            head,
            "the clone is at the checkout's HEAD"
        );
        let mut files = BTreeMap::new();
        for path in git(&root, &["ls-files", "-z"]).split('\0') {
            if path.is_empty() {
                continue;
            }
            // Binary files (and symbolic links to directories) are not read.
            if let Ok(text) = std::fs::read_to_string(root.join(path)) {
                files.insert(path.to_owned(), text);
            }
        }
        Self {
            _dir: dir,
            root,
            files,
        }
    }
}

/// Runs git in `dir` and returns its trimmed standard output.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("git is installed");
    assert!(
        out.status.success(),
        "git {args:?} in {} failed (the tests need a git checkout): {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Returns the 1-based line of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at].matches('\n').count() + 1
}

/// Returns the directory of a repository-relative path, as components.
fn dir_of(path: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = path.split('/').collect();
    parts.pop();
    parts
}

/// Resolves `reference` against the directory components `base`, lexically.
/// Returns None when it climbs above the repository root.
fn resolve<'a>(base: &[&'a str], reference: &'a str) -> Option<Vec<&'a str>> {
    let mut parts = base.to_vec();
    for part in reference.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            name => parts.push(name),
        }
    }
    Some(parts)
}

/// Returns true when byte `at` of `text` starts a new path: nothing that could
/// belong to a longer path or word comes right before it.
fn starts_a_path(text: &str, at: usize) -> bool {
    text[..at]
        .chars()
        .next_back()
        .is_none_or(|c| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/')))
}

/// The markdown files of the clone, with their text outside fenced code blocks
/// (fenced lines are blanked, so byte offsets and line numbers still match).
fn markdown_outside_fences(clone: &Clone) -> BTreeMap<&str, String> {
    let mut docs = BTreeMap::new();
    for (path, text) in &clone.files {
        if !path.ends_with(".md") {
            continue;
        }
        let mut fenced = false;
        let mut out = String::with_capacity(text.len());
        for line in text.split_inclusive('\n') {
            let fence = line.trim_start().starts_with("```");
            if fenced || fence {
                out.extend(line.chars().map(|c| if c == '\n' { '\n' } else { ' ' }));
            } else {
                out.push_str(line);
            }
            if fence {
                fenced = !fenced;
            }
        }
        docs.insert(path.as_str(), out);
    }
    docs
}

/// Returns the anchors of a markdown file's headings, as GitHub makes them:
/// lower case, punctuation dropped, spaces turned into hyphens, repeats
/// numbered.
fn heading_anchors(markdown_without_fences: &str) -> BTreeSet<String> {
    let mut anchors = BTreeSet::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for line in markdown_without_fences.lines() {
        let trimmed = line.trim_start();
        let hashes = trimmed.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&hashes) || !trimmed[hashes..].starts_with(' ') {
            continue;
        }
        let slug: String = trimmed[hashes..]
            .trim()
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let n = seen.entry(slug.clone()).or_insert(0);
        anchors.insert(if *n == 0 {
            slug.clone()
        } else {
            format!("{slug}-{n}")
        });
        *n += 1;
    }
    anchors
}

/// The targets of markdown links (`[text](target)` and `[label]: target`)
/// outside fenced code, with their byte offsets.
fn markdown_links(markdown_without_fences: &str) -> Vec<(usize, &str)> {
    let inline = Regex::new(r#"\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)"#).unwrap();
    let reference = Regex::new(r"(?m)^\s{0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?").unwrap();
    inline
        .captures_iter(markdown_without_fences)
        .chain(reference.captures_iter(markdown_without_fences))
        .map(|c| {
            let m = c.get(1).unwrap();
            (m.start(), m.as_str())
        })
        .collect()
}

/// Returns true for a link target with a URL scheme (`https:`, `mailto:` …).
fn has_scheme(target: &str) -> bool {
    target.split_once(':').is_some_and(|(scheme, _)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
    })
}

#[test]
fn no_tracked_file_refers_to_a_path_outside_the_repository() {
    let clone = Clone::of_head();
    // Machine-specific absolute places; spelled in pieces so that this file
    // does not trip its own check.
    let mut markers: Vec<String> = ["work", "home", "root"]
        .iter()
        .map(|dir| format!("/{dir}/"))
        .collect();
    markers.push(format!("file:{}", "//"));
    // Where the design document lived beside the checkout: wrong wherever it appears.
    let sibling = format!("..{}shared", '/');
    // A path with `..` components, resolved from the file's own directory (as
    // markdown links, `include_str!` and Cargo paths are).
    let climbing = Regex::new(r"[A-Za-z0-9_.\-/]*\.\./[A-Za-z0-9_.\-/]*").unwrap();

    let mut problems = Vec::new();
    for (path, text) in &clone.files {
        for (at, _) in text.match_indices(sibling.as_str()) {
            problems.push(format!(
                "{path}:{}: refers to `{sibling}…`, beside the repository",
                line_of(text, at)
            ));
        }
        for marker in &markers {
            for (at, _) in text.match_indices(marker.as_str()) {
                if starts_a_path(text, at) {
                    problems.push(format!(
                        "{path}:{}: refers to `{marker}…`, outside the repository",
                        line_of(text, at)
                    ));
                }
            }
        }
        let base = dir_of(path);
        for m in climbing.find_iter(text) {
            if m.as_str().starts_with('/') {
                continue; // absolute: the markers above judge those
            }
            if resolve(&base, m.as_str()).is_none() {
                problems.push(format!(
                    "{path}:{}: `{}` climbs out of the repository",
                    line_of(text, m.start()),
                    m.as_str()
                ));
            }
        }
    }
    for (path, text) in markdown_outside_fences(&clone) {
        for (at, target) in markdown_links(&text) {
            if target.starts_with('/') {
                problems.push(format!(
                    "{path}:{}: link `{target}` is absolute; links inside the repository are relative",
                    line_of(&text, at)
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "a clone must stand on its own ({} problems):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn every_relative_markdown_link_resolves_inside_the_repository() {
    let clone = Clone::of_head();
    let docs = markdown_outside_fences(&clone);
    let anchors: BTreeMap<&str, BTreeSet<String>> = docs
        .iter()
        .map(|(path, text)| (*path, heading_anchors(text)))
        .collect();

    let mut links = 0;
    let mut problems = Vec::new();
    for (path, text) in &docs {
        for (at, target) in markdown_links(text) {
            if has_scheme(target) || target.starts_with('/') {
                continue; // web links; absolute paths fail the check above
            }
            links += 1;
            let line = line_of(text, at);
            let (file, fragment) = match target.split_once('#') {
                Some((file, fragment)) => (file, Some(fragment)),
                None => (target, None),
            };
            let file = file.split_once('?').map_or(file, |(f, _)| f);
            let resolved = if file.is_empty() {
                Some(path.to_string())
            } else {
                resolve(&dir_of(path), file).map(|parts| parts.join("/"))
            };
            let Some(resolved) = resolved else {
                problems.push(format!("{path}:{line}: `{target}` leaves the repository"));
                continue;
            };
            if !clone.root.join(&resolved).exists() {
                problems.push(format!(
                    "{path}:{line}: `{target}` names {resolved}, which the repository does not hold"
                ));
                continue;
            }
            if let (Some(fragment), Some(headings)) = (fragment, anchors.get(resolved.as_str()))
                && !fragment.is_empty()
                && !headings.contains(&fragment.to_lowercase())
            {
                problems.push(format!(
                    "{path}:{line}: `{target}`: {resolved} has no heading with anchor `#{fragment}`"
                ));
            }
        }
    }
    assert!(links > 0, "the repository's documents link to each other");
    assert!(
        problems.is_empty(),
        "broken relative links ({} of {links}):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn every_cited_rule_id_is_defined_in_docs_rules_md() {
    let clone = Clone::of_head();

    // Definitions: one heading (or bold anchor at the start of a line) per id.
    let definition = Regex::new(r"(?m)^(?:#{1,6}\s+|\*\*)(R-[A-Z]{2}-[0-9]+)\b").unwrap();
    let rules = clone
        .files
        .get(RULES)
        .unwrap_or_else(|| panic!("{RULES} is tracked in the repository"));
    let mut defined: BTreeMap<String, usize> = BTreeMap::new();
    for c in definition.captures_iter(rules) {
        *defined.entry(c[1].to_owned()).or_insert(0) += 1;
    }
    let twice: Vec<&String> = defined
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id)
        .collect();
    assert!(
        twice.is_empty(),
        "{RULES} defines these ids more than once: {twice:?}"
    );
    assert!(
        defined.len() >= 30,
        "{RULES} defines the rules (found only {defined:?})"
    );

    // Citations: `R-AZ-4`, ranges such as `R-AZ-0..6`, and the test-name form
    // `r_az_4_` (also inside a name, as in `r_de_5_r_de_6_…`).
    let cited_id = Regex::new(r"R-([A-Z]{2})-([0-9]+)(?:\.\.([0-9]+))?").unwrap();
    let test_name = Regex::new(r"r_([a-z]{2})_([0-9]+)_").unwrap();
    let mut undefined: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut citations = 0;
    for (path, text) in &clone.files {
        let mut cite = |family: &str, number: u32, at: usize| {
            citations += 1;
            let id = format!("R-{}-{number}", family.to_uppercase());
            if !defined.contains_key(&id) {
                undefined
                    .entry(id)
                    .or_default()
                    .push(format!("{path}:{}", line_of(text, at)));
            }
        };
        for c in cited_id.captures_iter(text) {
            let at = c.get(0).unwrap().start();
            if text[..at].ends_with(|ch: char| ch.is_ascii_alphanumeric()) {
                continue; // inside a longer token (base64, a hash), not a citation
            }
            let first: u32 = c[2].parse().unwrap();
            let last: u32 = c.get(3).map_or(first, |m| m.as_str().parse().unwrap());
            for number in first..=last.max(first) {
                cite(&c[1], number, at);
            }
        }
        for c in test_name.captures_iter(text) {
            let m = c.get(0).unwrap();
            // `r_` must begin a name or follow an underscore: `for_ab_1_` is no citation.
            if text[..m.start()].ends_with(|ch: char| ch.is_ascii_alphanumeric()) {
                continue;
            }
            cite(&c[1], c[2].parse().unwrap(), m.start());
        }
    }
    assert!(citations > 100, "the code and tests cite rule ids");
    let report: Vec<String> = undefined
        .iter()
        .map(|(id, places)| format!("{id}: cited at {}", places.join(", ")))
        .collect();
    assert!(
        undefined.is_empty(),
        "rule ids cited but not defined in {RULES} (define the rule there, or fix the citation):\n{}",
        report.join("\n")
    );
}
