//! Checks of the crate's shape that a compiler does not make: no module imports a module
//! that imports it back, and each layer uses only the layers below it
//! (docs/ARCHITECTURE.md). Read from the source files, so a new `use` that breaks
//! either rule fails `cargo test`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every module of `src/` by its path (`services::guarantees::issuing`), with the text
/// of its file.
fn modules(root: &Path) -> BTreeMap<String, String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("src/ is readable") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(root, &mut files);
    files
        .into_iter()
        .map(|file| {
            let relative = file.strip_prefix(root).expect("under src/");
            let mut parts: Vec<String> = relative
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                parts.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                parts.pop();
            }
            let text = std::fs::read_to_string(&file).expect("source is readable");
            (parts.join("::"), text)
        })
        .collect()
}

/// The code of a file without its comments and without its unit tests module (tests may
/// reach anywhere).
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Expands `a::{b, c::{d, e}}` into `a::b`, `a::c::d`, `a::c::e`.
fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = tree.find('{') else {
        out.push(format!("{prefix}{tree}"));
        return;
    };
    let head = format!("{prefix}{}", &tree[..open]);
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let (mut depth, mut start) = (0, 0);
    for (i, ch) in inner.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                expand(&head, &inner[start..i], out);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < inner.len() {
        expand(&head, &inner[start..], out);
    }
}

/// The paths a file names, absolute from the crate root: `use crate::..`, `use
/// super::..` (groups expanded) and `crate::..` written in code.
fn named_paths(module: &str, code: &str) -> Vec<String> {
    let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
    let absolute = |path: &str| -> Option<String> {
        if let Some(rest) = path.strip_prefix("crate::") {
            Some(rest.to_owned())
        } else if let Some(rest) = path.strip_prefix("super::") {
            Some(if parent.is_empty() {
                rest.to_owned()
            } else {
                format!("{parent}::{rest}")
            })
        } else {
            path.strip_prefix("self::")
                .map(|rest| format!("{module}::{rest}"))
        }
    };
    let mut paths = Vec::new();
    // `use` statements, which may span lines and hold groups.
    for statement in code.split("use ").skip(1) {
        let Some(end) = statement.find(';') else {
            continue;
        };
        let tree = &statement[..end];
        if !(tree.starts_with("crate::") || tree.starts_with("super::")) {
            continue;
        }
        let mut expanded = Vec::new();
        expand("", tree, &mut expanded);
        paths.extend(expanded.iter().filter_map(|p| absolute(p)));
    }
    // `crate::a::b` and `super::a::b` written inline (in code, or in attributes such as
    // the OpenAPI description's list of handlers).
    for prefix in ["crate::", "super::"] {
        for (at, _) in code.match_indices(prefix) {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let path: String = code[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            paths.extend(absolute(&path));
        }
    }
    paths
}

/// The module a path lands in: its longest prefix that is a module.
fn resolve<'a>(path: &str, modules: &'a BTreeMap<String, String>) -> Option<&'a str> {
    let mut parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
    while !parts.is_empty() {
        if let Some((name, _)) = modules.get_key_value(&parts.join("::")) {
            return Some(name);
        }
        parts.pop();
    }
    None
}

/// Module -> the modules it uses. A child using its ancestor (a parent re-exporting its
/// children) is not an edge.
fn graph(modules: &BTreeMap<String, String>) -> BTreeMap<&str, BTreeSet<&str>> {
    modules
        .iter()
        .map(|(module, text)| {
            let used = named_paths(module, &code_of(text))
                .iter()
                .filter_map(|p| resolve(p, modules))
                .filter(|target| {
                    !target.is_empty()
                        && *target != module
                        && !module.starts_with(&format!("{target}::"))
                })
                .collect();
            (module.as_str(), used)
        })
        .collect()
}

/// Strongly connected components of more than one module (Tarjan).
fn cycles<'a>(graph: &BTreeMap<&'a str, BTreeSet<&'a str>>) -> Vec<Vec<&'a str>> {
    struct Tarjan<'g, 'a> {
        graph: &'g BTreeMap<&'a str, BTreeSet<&'a str>>,
        next: usize,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<&'a str>>,
    }
    impl<'a> Tarjan<'_, 'a> {
        fn visit(&mut self, v: &'a str) {
            self.index.insert(v, self.next);
            self.low.insert(v, self.next);
            self.next += 1;
            self.stack.push(v);
            for &w in self.graph.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.stack.contains(&w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort_unstable();
                    self.found.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        next: 0,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for &v in graph.keys() {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    t.found
}

/// The layers of docs/ARCHITECTURE.md and what each may use, besides itself and the
/// crate's small shared modules (`config`, `clock`, `data_dir`).
const LAYERS: &[(&str, &[&str])] = &[
    ("domain", &[]),
    ("db", &["domain"]),
    ("pki", &["domain"]),
    ("mail", &["db", "domain"]),
    ("services", &["domain", "db", "pki", "mail"]),
    ("web", &["services", "domain", "pki", "db"]),
];

fn src() -> BTreeMap<String, String> {
    modules(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let modules = src();
    let found = cycles(&graph(&modules));
    assert!(
        found.is_empty(),
        "import cycles between modules of src/ (move what both need to a module both read):\n{}",
        found
            .iter()
            .map(|c| format!("  {}", c.join(" <-> ")))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn each_layer_uses_only_the_layers_below_it() {
    let modules = src();
    let layer = |m: &str| m.split("::").next().unwrap_or_default().to_owned();
    let mut wrong = Vec::new();
    for (module, used) in graph(&modules) {
        let Some((_, allowed)) = LAYERS.iter().find(|(l, _)| *l == layer(module)) else {
            continue;
        };
        for target in used {
            let to = layer(target);
            let known_layer = LAYERS.iter().any(|(l, _)| *l == to);
            if known_layer && to != layer(module) && !allowed.contains(&to.as_str()) {
                wrong.push(format!("  {module} uses {target}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "uses that point up or sideways:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_checks_see_a_cycle_and_a_layer_break() {
    // The checker itself must be able to fail: a made-up crate with a cycle.
    let mut fake = BTreeMap::new();
    fake.insert(
        "services::a".to_owned(),
        "use crate::services::b::{X, y::Z};\n".to_owned(),
    );
    fake.insert(
        "services::b".to_owned(),
        "fn f() { super::a::g() }\n".to_owned(),
    );
    fake.insert("services::b::y".to_owned(), String::new());
    fake.insert(
        "services::c".to_owned(),
        "// use crate::services::a;\n#[cfg(test)]\nmod tests { use crate::services::a; }\n"
            .to_owned(),
    );
    fake.insert(
        "domain::d".to_owned(),
        "use crate::web::{self};\n".to_owned(),
    );
    fake.insert("web".to_owned(), String::new());
    let g = graph(&fake);
    assert_eq!(cycles(&g), vec![vec!["services::a", "services::b"]]);
    assert!(
        g["services::c"].is_empty(),
        "comments and unit tests are not uses"
    );
    assert!(g["domain::d"].contains("web"));
}
