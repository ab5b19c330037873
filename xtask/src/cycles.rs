//! Import cycles: no module imports a module that imports it back, directly or around a
//! longer circle (A -> B -> C -> A). Part of `cargo xtask lint`.
//!
//! What "imports" means here:
//!
//! - Rust (each crate's `src`): a module is a file (`foo.rs`, or `foo/mod.rs` with the
//!   files under `foo/`; `lib.rs` and `main.rs` are the crate root). Inline `mod x { .. }`
//!   blocks, `mod tests` included, belong to the file they are written in. A module imports
//!   another when its code names an item there: `use crate::x::..` (grouped and multi-line
//!   uses too), a `crate::x::..` path anywhere in the code, or `super::..` / `self::..`
//!   resolved against the file's place in the tree. Comments, doc links and string
//!   literals do not count; `#[path]` attributes are not followed; `src/bin/` holds crates
//!   of their own and is skipped.
//! - TypeScript (`signaling/web/src`): a module is a file. It imports another through
//!   `import .. from "./x"`, `import "./x"`, `export .. from "./x"` and `import("./x")`,
//!   for relative specifiers that name a source file (with or without its extension, or a
//!   directory's `index.ts`). `import type` counts too: it vanishes at run time, but a
//!   circle of types still ties the two modules' designs together. Packages and
//!   non-code files (CSS) are not modules here.
//!
//! What "imports it back" means, the rule enforced: a cycle is a circle of imports
//! between modules none of which contains another. A parent and its own children are one
//! unit, not two: a child using what its parent defines (`use super::DocsHub`, `use
//! super::*` in a test module) or a parent using or re-exporting its children is nesting,
//! not an import between peers. So every import is lifted to the two sibling modules
//! that hold its ends, under their closest common parent: `docs::room` importing
//! `crate::store::Store` is an edge `docs -> store` between top-level modules, and
//! `docs::room` importing `super::wire` is an edge `docs::room -> docs::wire` between
//! siblings inside `docs`. In TypeScript every file is a leaf and every relative import an
//! edge. The check fails on any circle of such edges and spells out every elementary
//! circle with the place each of its imports is written.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result, bail};

/// Rust source trees, relative to the repository root: each is one crate's `src`.
const RUST_TREES: &[&str] = &[
    "firmware/kiosk/src",
    "firmware/media/src",
    "firmware/net/src",
    "firmware/engine/src",
    "board/src",
    "ui/src",
    "signaling/server/src",
];

/// TypeScript source trees, relative to the repository root.
const TS_TREES: &[&str] = &["signaling/web/src"];

/// File extensions of TypeScript/JavaScript modules, in resolution order.
const TS_EXTENSIONS: &[&str] = &["ts", "tsx", "mts", "cts", "js", "jsx", "mjs", "cjs"];

/// Circles listed per tree at most; past this the report says that more were left out.
const MAX_CYCLES: usize = 50;

/// Checks every tree; fails listing every import cycle found.
pub(crate) fn check(root: &Path) -> Result<()> {
    let mut problems = Vec::new();
    for (trees, language) in [
        (RUST_TREES, Language::Rust),
        (TS_TREES, Language::TypeScript),
    ] {
        for tree in trees {
            let dir = root.join(tree);
            if !dir.is_dir() {
                // The crate does not exist (yet): nothing to check.
                continue;
            }
            let files = read_tree(&dir, language.extensions())?;
            let graph = match language {
                Language::Rust => rust_graph(&files),
                Language::TypeScript => ts_graph(&files),
            };
            let found = report(tree, &graph);
            if found.is_empty() {
                eprintln!(
                    "cycles: {tree} has no import cycles ({} modules)",
                    graph.modules
                );
            }
            problems.extend(found);
        }
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Language {
    Rust,
    TypeScript,
}

impl Language {
    fn extensions(self) -> &'static [&'static str] {
        match self {
            Language::Rust => &["rs"],
            Language::TypeScript => TS_EXTENSIONS,
        }
    }
}

/// Every file under `dir` with one of `extensions`: path relative to `dir` (with `/`) ->
/// contents.
fn read_tree(dir: &Path, extensions: &[&str]) -> Result<BTreeMap<String, String>> {
    fn walk(
        base: &Path,
        dir: &Path,
        extensions: &[&str],
        out: &mut BTreeMap<String, String>,
    ) -> Result<()> {
        let entries =
            std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                walk(base, &path, extensions, out)?;
                continue;
            }
            let wanted = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| extensions.contains(&e));
            if !wanted {
                continue;
            }
            let rel = path
                .strip_prefix(base)
                .expect("walked from base")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            out.insert(rel, text);
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, extensions, &mut out)?;
    Ok(out)
}

/// Where an import is written: the first one seen for each edge.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Site {
    file: String,
    line: usize,
    what: String,
}

/// Modules and the imports between them (already lifted to siblings).
#[derive(Debug, Default)]
struct Graph {
    modules: usize,
    edges: BTreeMap<String, BTreeMap<String, Site>>,
}

impl Graph {
    fn add(&mut self, from: String, to: String, site: Site) {
        if from != to {
            self.edges
                .entry(from)
                .or_default()
                .entry(to)
                .or_insert(site);
        }
    }

    fn targets(&self, node: &str) -> impl Iterator<Item = &String> {
        self.edges.get(node).into_iter().flat_map(BTreeMap::keys)
    }

    /// Every node reachable from `start` (itself included).
    fn reachable(&self, start: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::from([start.to_owned()]);
        let mut todo = vec![start.to_owned()];
        while let Some(node) = todo.pop() {
            for next in self.targets(&node) {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    }

    /// The elementary circles, each once, starting at its smallest module; shorter first.
    /// Stops after `limit` circles; the flag says whether it stopped early.
    fn cycles(&self, limit: usize) -> (Vec<Vec<String>>, bool) {
        let nodes: BTreeSet<&String> = self
            .edges
            .iter()
            .flat_map(|(from, tos)| std::iter::once(from).chain(tos.keys()))
            .collect();
        let reach: BTreeMap<&String, BTreeSet<String>> =
            nodes.iter().map(|&n| (n, self.reachable(n))).collect();
        let mut found = Vec::new();
        let mut truncated = false;
        for &start in &nodes {
            // Only the modules on a circle with `start` and after it in order: every
            // circle is found once, from its smallest module.
            let allowed: BTreeSet<&String> = reach[start]
                .iter()
                .filter(|n| *n > start && reach[*n].contains(start))
                .collect();
            let mut path = vec![start.clone()];
            truncated |= self.circles_from(start, &allowed, &mut path, &mut found, limit);
            if truncated {
                break;
            }
        }
        found.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
        (found, truncated)
    }

    fn circles_from(
        &self,
        start: &str,
        allowed: &BTreeSet<&String>,
        path: &mut Vec<String>,
        found: &mut Vec<Vec<String>>,
        limit: usize,
    ) -> bool {
        let last = path.last().expect("path starts with start").clone();
        for next in self.targets(&last) {
            if next == start {
                if found.len() == limit {
                    return true;
                }
                found.push(path.clone());
            } else if allowed.contains(next) && !path.contains(next) {
                path.push(next.clone());
                let full = self.circles_from(start, allowed, path, found, limit);
                path.pop();
                if full {
                    return true;
                }
            }
        }
        false
    }
}

/// One message per circle in `graph`, with the import behind each step.
fn report(tree: &str, graph: &Graph) -> Vec<String> {
    let (cycles, truncated) = graph.cycles(MAX_CYCLES);
    let mut out: Vec<String> = cycles
        .iter()
        .map(|cycle| {
            let mut text = format!("import cycle in {tree}: {}", cycle.join(" -> "));
            let _ = write!(text, " -> {}", cycle[0]);
            for (i, from) in cycle.iter().enumerate() {
                let to = &cycle[(i + 1) % cycle.len()];
                let site = &graph.edges[from][to];
                let _ = write!(
                    text,
                    "\n    {from} -> {to}: {}:{} `{}`",
                    site.file, site.line, site.what
                );
            }
            text
        })
        .collect();
    if truncated {
        out.push(format!(
            "import cycles in {tree}: more than {MAX_CYCLES}; only the first are listed"
        ));
    }
    out
}

/// The edge between the two sibling modules that hold `from` and `to` under their closest
/// common parent; none when one contains the other (nesting, not an import).
fn lift(from: &[String], to: &[String]) -> Option<(Vec<String>, Vec<String>)> {
    let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
    if common == from.len() || common == to.len() {
        return None;
    }
    Some((from[..=common].to_vec(), to[..=common].to_vec()))
}

// ---------------------------------------------------------------------------------------
// Rust

/// The module a file is: `lib.rs`/`main.rs` the root, `a/mod.rs` `a`, `a/b.rs` `a::b`.
/// None for files that are crates of their own (`bin/`).
fn rust_module(file: &str) -> Option<Vec<String>> {
    let parts: Vec<&str> = file.split('/').collect();
    if parts.len() > 1 && parts[0] == "bin" {
        return None;
    }
    let (last, dirs) = parts.split_last()?;
    let stem = last.strip_suffix(".rs")?;
    let mut module: Vec<String> = dirs.iter().map(|d| (*d).to_owned()).collect();
    match stem {
        "mod" => {}
        "lib" | "main" if dirs.is_empty() => {}
        _ => module.push(stem.to_owned()),
    }
    Some(module)
}

fn rust_graph(files: &BTreeMap<String, String>) -> Graph {
    let modules: BTreeMap<&String, Vec<String>> = files
        .keys()
        .filter_map(|f| rust_module(f).map(|m| (f, m)))
        .collect();
    let known: BTreeSet<Vec<String>> = modules
        .values()
        .cloned()
        .chain(std::iter::once(Vec::new()))
        .collect();
    let mut graph = Graph {
        modules: modules.len(),
        ..Graph::default()
    };
    for (file, module) in &modules {
        for import in rust_imports(&files[*file]) {
            let mut current = module.clone();
            current.extend(import.inline);
            let Some(target) = resolve(&import.path, &current, &known) else {
                continue;
            };
            if let Some((from, to)) = lift(module, &target) {
                let site = Site {
                    file: (*file).clone(),
                    line: import.line,
                    what: import.path.join("::"),
                };
                graph.add(from.join("::"), to.join("::"), site);
            }
        }
    }
    graph
}

/// The file module a path starting with `crate`, `super` or `self` lands in, written in
/// module `current` (the file's module plus the inline `mod` blocks around the path).
fn resolve(
    path: &[String],
    current: &[String],
    known: &BTreeSet<Vec<String>>,
) -> Option<Vec<String>> {
    let (first, rest) = path.split_first()?;
    let mut at: Vec<String> = match first.as_str() {
        "crate" => Vec::new(),
        "self" => current.to_vec(),
        "super" => {
            let mut parent = current.to_vec();
            parent.pop()?;
            parent
        }
        // An extern crate, or a child module in scope: never a sibling.
        _ => return None,
    };
    for segment in rest {
        match segment.as_str() {
            "super" => {
                at.pop()?;
            }
            "self" => {}
            _ => at.push(segment.clone()),
        }
    }
    (0..=at.len())
        .rev()
        .map(|n| &at[..n])
        .find(|prefix| known.contains(*prefix))
        .map(<[String]>::to_vec)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum RustToken {
    Ident(String),
    PathSep,
    Punct(char),
}

/// The code of a Rust file as tokens with their line, without comments and literals.
fn rust_tokens(text: &str) -> Vec<(RustToken, usize)> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let newlines = |from: usize, to: usize| {
        c[from..to.min(c.len())]
            .iter()
            .filter(|&&ch| ch == '\n')
            .count()
    };
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && next == Some('*') {
            let start = i;
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            line += newlines(start, i);
        } else if ch == '"' {
            let start = i;
            i = skip_quoted(&c, i, '"');
            line += newlines(start, i);
        } else if ch == '\'' {
            if next == Some('\\') {
                i = skip_quoted(&c, i, '\'');
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                // A lifetime or label: its name follows as an identifier.
                i += 1;
            }
        } else if ch == ':' && next == Some(':') {
            out.push((RustToken::PathSep, line));
            i += 2;
        } else if is_ident_char(ch) {
            let start = i;
            while i < c.len() && is_ident_char(c[i]) {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let after = c.get(i).copied();
            match (word.as_str(), after) {
                ("r" | "br" | "cr", Some('#' | '"')) => {
                    let mut hashes = 0;
                    while c.get(i + hashes) == Some(&'#') {
                        hashes += 1;
                    }
                    if c.get(i + hashes) == Some(&'"') {
                        // A raw string: up to the quote followed by as many hashes.
                        let from = i;
                        i += hashes + 1;
                        while i < c.len()
                            && !(c[i] == '"' && (1..=hashes).all(|k| c.get(i + k) == Some(&'#')))
                        {
                            i += 1;
                        }
                        i = (i + 1 + hashes).min(c.len());
                        line += newlines(from, i);
                    } else if word == "r" && hashes == 1 {
                        // A raw identifier: never a keyword.
                        let from = i + 1;
                        i = from;
                        while i < c.len() && is_ident_char(c[i]) {
                            i += 1;
                        }
                        let name: String = c[from..i].iter().collect();
                        out.push((RustToken::Ident(format!("r#{name}")), line));
                    } else {
                        out.push((RustToken::Ident(word), line));
                    }
                }
                ("b" | "c", Some('"')) => {
                    let from = i;
                    i = skip_quoted(&c, i, '"');
                    line += newlines(from, i);
                }
                ("b", Some('\'')) => i = skip_quoted(&c, i, '\''),
                _ => out.push((RustToken::Ident(word), line)),
            }
        } else {
            out.push((RustToken::Punct(ch), line));
            i += 1;
        }
    }
    out
}

/// The index just past the literal that opens with `quote` at `i` (backslash escapes).
fn skip_quoted(c: &[char], mut i: usize, quote: char) -> usize {
    i += 1;
    while i < c.len() {
        if c[i] == '\\' {
            i += 2;
        } else if c[i] == quote {
            return i + 1;
        } else {
            i += 1;
        }
    }
    c.len()
}

fn is_ident_char(ch: char) -> bool {
    ch == '_' || ch.is_alphanumeric()
}

/// A path that may name another module of the crate, where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RustImport {
    /// As written, groups expanded: `["crate", "link", "Command"]`.
    path: Vec<String>,
    /// The inline `mod` blocks around it, outermost first.
    inline: Vec<String>,
    line: usize,
}

/// Every `use` path and every `crate::`/`super::`/`self::` path in a file.
fn rust_imports(text: &str) -> Vec<RustImport> {
    let tokens = rust_tokens(text);
    let ident = |i: usize| match tokens.get(i) {
        Some((RustToken::Ident(s), _)) => Some(s.as_str()),
        _ => None,
    };
    let is = |i: usize, t: &RustToken| tokens.get(i).is_some_and(|(x, _)| x == t);
    let mut out = Vec::new();
    // One entry per open brace: the inline module it opens, if any.
    let mut braces: Vec<Option<String>> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let (token, line) = &tokens[i];
        let inline = || braces.iter().flatten().cloned().collect::<Vec<_>>();
        match token {
            RustToken::Punct('{') => {
                braces.push(None);
                i += 1;
            }
            RustToken::Punct('}') => {
                braces.pop();
                i += 1;
            }
            RustToken::Ident(word)
                if word == "mod" && is(i + 2, &RustToken::Punct('{')) && ident(i + 1).is_some() =>
            {
                braces.push(ident(i + 1).map(str::to_owned));
                i += 3;
            }
            RustToken::Ident(word) if word == "use" => {
                // Also `use<'a>` bounds, which name no path.
                let mut paths = Vec::new();
                i += 1;
                use_tree(&tokens, &mut i, &[], &mut paths);
                let inline = inline();
                out.extend(paths.into_iter().map(|(path, line)| RustImport {
                    path,
                    inline: inline.clone(),
                    line,
                }));
            }
            RustToken::Ident(word)
                if matches!(word.as_str(), "crate" | "super" | "self")
                    && is(i + 1, &RustToken::PathSep)
                    && !(i > 0 && is(i - 1, &RustToken::PathSep)) =>
            {
                let mut path = vec![word.clone()];
                i += 1;
                while is(i, &RustToken::PathSep) {
                    match ident(i + 1) {
                        Some(name) => path.push(name.to_owned()),
                        None => break,
                    }
                    i += 2;
                }
                out.push(RustImport {
                    path,
                    inline: inline(),
                    line: *line,
                });
            }
            _ => i += 1,
        }
    }
    out
}

/// Reads one use tree at `i` (after `use`, or inside a group), adding its full paths with
/// the line each ends on. A glob or `{self}` adds the path of the module it is in.
fn use_tree(
    tokens: &[(RustToken, usize)],
    i: &mut usize,
    prefix: &[String],
    out: &mut Vec<(Vec<String>, usize)>,
) {
    let mut path = prefix.to_vec();
    while let Some((token, line)) = tokens.get(*i) {
        match token {
            RustToken::PathSep => *i += 1,
            RustToken::Ident(name) => {
                if name != "self" || path.is_empty() {
                    path.push(name.clone());
                }
                *i += 1;
                if matches!(tokens.get(*i), Some((RustToken::PathSep, _))) {
                    continue;
                }
                if matches!(tokens.get(*i), Some((RustToken::Ident(a), _)) if a == "as") {
                    *i += 2;
                }
                out.push((path, *line));
                return;
            }
            RustToken::Punct('*') => {
                *i += 1;
                out.push((path, *line));
                return;
            }
            RustToken::Punct('{') => {
                *i += 1;
                loop {
                    match tokens.get(*i) {
                        Some((RustToken::Punct('}'), _)) => {
                            *i += 1;
                            return;
                        }
                        Some((RustToken::Punct(','), _)) => *i += 1,
                        Some((RustToken::Punct(';'), _)) | None => return,
                        Some(_) => {
                            let before = *i;
                            use_tree(tokens, i, &path, out);
                            if *i == before {
                                // Not a use tree: stop rather than loop.
                                return;
                            }
                        }
                    }
                }
            }
            RustToken::Punct(_) => return,
        }
    }
}

// ---------------------------------------------------------------------------------------
// TypeScript

/// A file's module name: its path without the extension.
fn ts_module(file: &str) -> &str {
    file.rsplit_once('.').map_or(file, |(stem, _)| stem)
}

fn ts_graph(files: &BTreeMap<String, String>) -> Graph {
    let mut graph = Graph {
        modules: files.len(),
        ..Graph::default()
    };
    for (file, text) in files {
        for (specifier, line) in ts_imports(text) {
            let Some(target) = resolve_ts(file, &specifier, files) else {
                continue;
            };
            let site = Site {
                file: file.clone(),
                line,
                what: specifier,
            };
            graph.add(
                ts_module(file).to_owned(),
                ts_module(target).to_owned(),
                site,
            );
        }
    }
    graph
}

/// The file a relative specifier names, as the bundler finds it: the exact file, the
/// file with a code extension (also for `./x.js` written for `x.ts`), or `index.*`.
fn resolve_ts<'a>(
    importer: &str,
    specifier: &str,
    files: &'a BTreeMap<String, String>,
) -> Option<&'a String> {
    let specifier = specifier.split(['?', '#']).next().unwrap_or_default();
    if !specifier.starts_with("./") && !specifier.starts_with("../") {
        return None;
    }
    let mut parts: Vec<&str> = importer.split('/').collect();
    parts.pop();
    for segment in specifier.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            _ => parts.push(segment),
        }
    }
    let path = parts.join("/");
    let mut candidates = vec![path.clone()];
    if let Some((stem, ext)) = path.rsplit_once('.')
        && TS_EXTENSIONS.contains(&ext)
    {
        candidates.extend(TS_EXTENSIONS.iter().map(|e| format!("{stem}.{e}")));
    }
    candidates.extend(TS_EXTENSIONS.iter().map(|e| format!("{path}.{e}")));
    candidates.extend(TS_EXTENSIONS.iter().map(|e| format!("{path}/index.{e}")));
    candidates
        .iter()
        .find_map(|c| files.get_key_value(c).map(|(k, _)| k))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TsToken {
    Ident(String),
    Str(String),
    Punct(char),
}

/// The tokens of a TypeScript file with their line: identifiers (numbers too), string
/// literals with their value, punctuation. Comments, template literals and regular
/// expressions are skipped.
fn ts_tokens(text: &str) -> Vec<(TsToken, usize)> {
    const BEFORE_EXPRESSION: &[&str] = &[
        "return",
        "typeof",
        "instanceof",
        "in",
        "of",
        "new",
        "delete",
        "void",
        "throw",
        "case",
        "do",
        "else",
        "yield",
        "await",
    ];
    let c: Vec<char> = text.chars().collect();
    let mut out: Vec<(TsToken, usize)> = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let newlines = |from: usize, to: usize| {
        c[from..to.min(c.len())]
            .iter()
            .filter(|&&ch| ch == '\n')
            .count()
    };
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        let start = i;
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && next == Some('*') {
            i += 2;
            while i < c.len() && !(c[i] == '*' && c.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i = (i + 2).min(c.len());
            line += newlines(start, i);
        } else if ch == '"' || ch == '\'' {
            i = skip_quoted(&c, i, ch);
            let end = if i <= c.len() && c.get(i - 1) == Some(&ch) {
                i - 1
            } else {
                i
            };
            let value: String = c[start + 1..end.max(start + 1)].iter().collect();
            out.push((TsToken::Str(value), line));
            line += newlines(start, i);
        } else if ch == '`' {
            i = skip_template(&c, i);
            line += newlines(start, i);
        } else if ch == '/' {
            let regex = match out.last() {
                None => true,
                Some((TsToken::Punct(p), _)) => !matches!(p, ')' | ']' | '}'),
                Some((TsToken::Ident(w), _)) => BEFORE_EXPRESSION.contains(&w.as_str()),
                Some((TsToken::Str(_), _)) => false,
            };
            if regex {
                i = skip_regex(&c, i);
                line += newlines(start, i);
            } else {
                out.push((TsToken::Punct('/'), line));
                i += 1;
            }
        } else if ch == '_' || ch == '$' || ch.is_alphanumeric() {
            while i < c.len() && (c[i] == '_' || c[i] == '$' || c[i].is_alphanumeric()) {
                i += 1;
            }
            out.push((TsToken::Ident(c[start..i].iter().collect()), line));
        } else {
            out.push((TsToken::Punct(ch), line));
            i += 1;
        }
    }
    out
}

/// The index just past the template literal opening at `i`, `${..}` parts included.
fn skip_template(c: &[char], mut i: usize) -> usize {
    i += 1;
    while i < c.len() {
        match c[i] {
            '\\' => i += 2,
            '`' => return i + 1,
            '$' if c.get(i + 1) == Some(&'{') => {
                i += 2;
                let mut depth = 1;
                while i < c.len() && depth > 0 {
                    match c[i] {
                        '{' => {
                            depth += 1;
                            i += 1;
                        }
                        '}' => {
                            depth -= 1;
                            i += 1;
                        }
                        '"' | '\'' => i = skip_quoted(c, i, c[i]),
                        '`' => i = skip_template(c, i),
                        _ => i += 1,
                    }
                }
            }
            _ => i += 1,
        }
    }
    c.len()
}

/// The index just past the regular expression literal opening at `i` (its flags follow
/// as an identifier).
fn skip_regex(c: &[char], mut i: usize) -> usize {
    i += 1;
    let mut class = false;
    while i < c.len() {
        match c[i] {
            '\\' => i += 1,
            '[' => class = true,
            ']' => class = false,
            '/' if !class => return i + 1,
            '\n' => return i,
            _ => {}
        }
        i += 1;
    }
    c.len()
}

/// The specifiers a file imports, with their line: `import .. from`, bare `import`,
/// `import(..)`, `export .. from`.
fn ts_imports(text: &str) -> Vec<(String, usize)> {
    let tokens = ts_tokens(text);
    let at = |i: usize| tokens.get(i).map(|(t, _)| t);
    let word = |i: usize, w: &str| matches!(at(i), Some(TsToken::Ident(x)) if x == w);
    let punct = |i: usize, p: char| matches!(at(i), Some(TsToken::Punct(x)) if *x == p);
    let string = |i: usize| match tokens.get(i) {
        Some((TsToken::Str(s), line)) => Some((s.clone(), *line)),
        _ => None,
    };
    // The index past the `}` matching the `{` at `i`.
    let close = |mut i: usize| {
        let mut depth = 0;
        while i < tokens.len() {
            if punct(i, '{') {
                depth += 1;
            } else if punct(i, '}') {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            i += 1;
        }
        i
    };
    let mut out = Vec::new();
    for i in 0..tokens.len() {
        if i > 0 && punct(i - 1, '.') {
            // A property named `import` or `export`.
            continue;
        }
        if word(i, "import") {
            if let Some(found) = string(i + 1) {
                out.push(found);
            } else if punct(i + 1, '(') {
                out.extend(string(i + 2));
            } else if !punct(i + 1, '.') {
                // import [type] x, { a, b } from "y";  import * as x from "y";
                let mut j = i + 1;
                while j < tokens.len() {
                    if punct(j, '{') {
                        j = close(j);
                    } else if word(j, "from") && string(j + 1).is_some() {
                        out.extend(string(j + 1));
                        break;
                    } else if punct(j, ';')
                        || word(j, "import")
                        || word(j, "export")
                        || string(j).is_some()
                    {
                        break;
                    } else {
                        j += 1;
                    }
                }
            }
        } else if word(i, "export") {
            let mut j = i + 1;
            if word(j, "type") {
                j += 1;
            }
            if punct(j, '*') {
                j += 1;
                if word(j, "as") {
                    j += 2;
                }
            } else if punct(j, '{') {
                j = close(j);
            } else {
                continue;
            }
            if word(j, "from") {
                out.extend(string(j + 1));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> BTreeMap<String, String> {
        files
            .iter()
            .map(|(path, text)| ((*path).to_owned(), (*text).to_owned()))
            .collect()
    }

    fn cycles(graph: &Graph) -> Vec<String> {
        graph
            .cycles(MAX_CYCLES)
            .0
            .iter()
            .map(|c| c.join(" -> "))
            .collect()
    }

    fn edges(graph: &Graph) -> Vec<String> {
        graph
            .edges
            .iter()
            .flat_map(|(from, tos)| tos.keys().map(move |to| format!("{from} -> {to}")))
            .collect()
    }

    #[test]
    fn rust_cycle_of_two() {
        let graph = rust_graph(&tree(&[
            (
                "main.rs",
                "mod session;\nmod display;\nuse crate::session::Session;\n",
            ),
            (
                "session.rs",
                "pub struct Session {\n    ui: Option<crate::display::CallView>,\n}\n",
            ),
            (
                "display.rs",
                "use crate::session::{Gates, Request};\npub struct CallView;\n",
            ),
        ]));
        assert_eq!(graph.modules, 3);
        assert_eq!(cycles(&graph), ["display -> session"]);
        let report = report("firmware/kiosk/src", &graph);
        assert_eq!(
            report,
            [
                "import cycle in firmware/kiosk/src: display -> session -> display\n    \
              display -> session: display.rs:1 `crate::session::Gates`\n    \
              session -> display: session.rs:2 `crate::display::CallView`"
            ]
        );
    }

    #[test]
    fn rust_cycle_of_three_through_grouped_and_multiline_uses() {
        let graph = rust_graph(&tree(&[
            (
                "lib.rs",
                "pub mod a;\npub mod b;\npub mod c;\npub struct Shared;\n",
            ),
            ("a.rs", "use crate::{Shared, b::X};\n"),
            (
                "b.rs",
                "use crate::{\n    Shared,\n    c::{\n        self,\n        Y as Z,\n    },\n};\n",
            ),
            ("c.rs", "use super::a;\nfn f() { a::g(); }\n"),
        ]));
        assert_eq!(edges(&graph), ["a -> b", "b -> c", "c -> a"]);
        assert_eq!(cycles(&graph), ["a -> b -> c"]);
        let report = report("x/src", &graph).join("\n");
        assert!(report.contains("b -> c: b.rs:4 `crate::c`"), "{report}");
        assert!(report.contains("c -> a: c.rs:1 `super::a`"), "{report}");
    }

    #[test]
    fn rust_nesting_is_not_a_cycle() {
        let graph = rust_graph(&tree(&[
            (
                "lib.rs",
                "pub mod docs;\npub mod store;\npub use docs::DocsHub;\n",
            ),
            (
                "docs/mod.rs",
                "mod room;\nmod wire;\nuse crate::store::Store;\nuse room::Room;\npub struct DocsHub;\n",
            ),
            (
                "docs/room.rs",
                "use super::DocsHub;\nuse super::wire::{self, Frame};\n\
                 #[cfg(test)]\nmod tests {\n    use super::*;\n    use super::super::DocsHub;\n}\n",
            ),
            ("docs/wire.rs", "use super::*;\npub struct Frame;\n"),
            (
                "store.rs",
                "pub struct Store;\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
            ),
            ("hub.rs", "#[cfg(test)]\nmod tests;\n"),
            ("hub/tests.rs", "use super::*;\nuse crate::store::Store;\n"),
        ]));
        assert_eq!(graph.modules, 7);
        assert_eq!(
            edges(&graph),
            ["docs -> store", "docs::room -> docs::wire", "hub -> store"]
        );
        assert!(cycles(&graph).is_empty());
    }

    #[test]
    fn rust_imports_lift_to_siblings() {
        // A child of `docs` importing `store` and `store` importing `docs`'s child is a
        // circle between the two top-level modules.
        let graph = rust_graph(&tree(&[
            ("lib.rs", "pub mod docs;\npub mod store;\n"),
            ("docs/mod.rs", "mod persist;\n"),
            ("docs/persist.rs", "use crate::store::Store;\n"),
            (
                "store.rs",
                "fn f() -> crate::docs::persist::Snapshot { todo!() }\n",
            ),
        ]));
        assert_eq!(cycles(&graph), ["docs -> store"]);
    }

    #[test]
    fn rust_inline_modules_and_literals() {
        let files = tree(&[
            ("lib.rs", "pub mod simcam;\npub mod b;\npub mod c;\n"),
            (
                "simcam.rs",
                "mod imp {\n    use super::{draw, glib};\n    type Type = super::SimCam;\n}\n\
                 // use crate::b::Commented;\n/* crate::b::Block /* nested */ crate::b::Still */\n\
                 const S: &str = \"crate::b::InString\";\nconst R: &str = r#\"use crate::b::Raw;\"#;\n\
                 const Q: char = '\"';\nfn f<'a>(x: &'a str) -> &'a str { x }\n\
                 use crate::c::Real;\n",
            ),
            ("b.rs", ""),
            ("c.rs", ""),
        ]);
        let graph = rust_graph(&files);
        assert_eq!(edges(&graph), ["simcam -> c"]);
        assert_eq!(graph.edges["simcam"]["c"].line, 11);
    }

    #[test]
    fn rust_module_names() {
        let m = |f: &str| rust_module(f).map(|m| m.join("::"));
        assert_eq!(m("lib.rs").as_deref(), Some(""));
        assert_eq!(m("main.rs").as_deref(), Some(""));
        assert_eq!(m("docs/mod.rs").as_deref(), Some("docs"));
        assert_eq!(m("hub/tests.rs").as_deref(), Some("hub::tests"));
        assert_eq!(m("a/main.rs").as_deref(), Some("a::main"));
        assert_eq!(m("bin/tool.rs"), None);
    }

    #[test]
    fn every_circle_of_a_tangle() {
        let graph = rust_graph(&tree(&[
            ("a.rs", "use crate::b::X;\nuse crate::c::X;\n"),
            ("b.rs", "use crate::a::X;\nuse crate::c::X;\n"),
            ("c.rs", "use crate::a::X;\n"),
        ]));
        assert_eq!(cycles(&graph), ["a -> b", "a -> c", "a -> b -> c"]);
        let (some, truncated) = graph.cycles(2);
        assert_eq!(some.len(), 2);
        assert!(truncated);
    }

    #[test]
    fn ts_cycle_with_and_without_extension() {
        let graph = ts_graph(&tree(&[
            (
                "features/watchsync.ts",
                "import { isYouTubeHost } from \"./youtube\";\n",
            ),
            (
                "features/youtube.ts",
                "// A YouTube player.\nimport type {\n  PlayerSample,\n  WatchPlayer,\n} from './watchsync.ts';\n",
            ),
            (
                "features/watch.ts",
                "import \"./watch.css\";\nimport { x } from \"./watchsync\";\n",
            ),
        ]));
        assert_eq!(graph.modules, 3);
        assert_eq!(cycles(&graph), ["features/watchsync -> features/youtube"]);
        let report = report("signaling/web/src", &graph);
        assert_eq!(
            report,
            [
                "import cycle in signaling/web/src: features/watchsync -> features/youtube -> features/watchsync\n    \
              features/watchsync -> features/youtube: features/watchsync.ts:1 `./youtube`\n    \
              features/youtube -> features/watchsync: features/youtube.ts:5 `./watchsync.ts`"
            ]
        );
    }

    #[test]
    fn ts_index_parent_dirs_and_every_import_form() {
        let graph = ts_graph(&tree(&[
            ("main.ts", "import { features } from \"./features\";\n"),
            (
                "features/index.ts",
                "export { chat } from \"./chat.js\";\nexport * as rules from \"../call/rules\";\n",
            ),
            ("features/chat.ts", "const m = await import(\"../main\");\n"),
            (
                "call/rules.ts",
                "export type { Feature } from \"../features/chat\";\n",
            ),
            (
                "call/view.ts",
                "import * as Y from \"yjs\";\nimport w from \"monaco/editor?worker\";\n",
            ),
        ]));
        assert_eq!(
            edges(&graph),
            [
                "call/rules -> features/chat",
                "features/chat -> main",
                "features/index -> call/rules",
                "features/index -> features/chat",
                "main -> features/index",
            ]
        );
        assert_eq!(
            cycles(&graph),
            [
                "features/chat -> main -> features/index",
                "call/rules -> features/chat -> main -> features/index",
            ]
        );
    }

    #[test]
    fn ts_lexing_skips_what_is_not_an_import() {
        let imports = ts_imports(
            "const re = /\"import x from '.\\/a'/;\n\
             const t = `import ${y} from \"./b\" ${`nested ${\"./c\"}`}`;\n\
             // import { z } from \"./d\";\n\
             /* export * from \"./e\"; */\n\
             const half = a / b / c;\n\
             const url = import.meta.url;\n\
             obj.import(\"./f\");\n\
             export const from = \"./g\";\n\
             export function f(): string { return \"./h\"; }\n\
             import { q } from \"./real\";\n",
        );
        assert_eq!(imports, [("./real".to_owned(), 10)]);
    }

    #[test]
    fn ts_resolution() {
        let files = tree(&[("a.ts", ""), ("dir/index.ts", ""), ("dir/b.tsx", "")]);
        let r = |from: &str, spec: &str| resolve_ts(from, spec, &files).cloned();
        assert_eq!(r("dir/b.tsx", "../a").as_deref(), Some("a.ts"));
        assert_eq!(r("dir/b.tsx", "../a.js").as_deref(), Some("a.ts"));
        assert_eq!(r("a.ts", "./dir").as_deref(), Some("dir/index.ts"));
        assert_eq!(r("a.ts", "./dir/").as_deref(), Some("dir/index.ts"));
        assert_eq!(r("a.ts", "./dir/b").as_deref(), Some("dir/b.tsx"));
        assert_eq!(r("a.ts", "./style.css"), None);
        assert_eq!(r("a.ts", "../outside"), None);
        assert_eq!(r("a.ts", "vitest"), None);
    }

    /// `cargo test -p xtask real_tree -- --ignored --nocapture` prints what the check finds
    /// in this checkout (or in the one `CYCLES_ROOT` names) without the rest of
    /// `cargo xtask lint`.
    #[test]
    #[ignore = "reads the checkout; run by hand"]
    fn real_tree() {
        let root = std::env::var_os("CYCLES_ROOT").map_or_else(
            || {
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .parent()
                    .expect("repository root")
                    .to_owned()
            },
            std::path::PathBuf::from,
        );
        match check(&root) {
            Ok(()) => eprintln!("no import cycles"),
            Err(e) => eprintln!("{e}"),
        }
    }
}
