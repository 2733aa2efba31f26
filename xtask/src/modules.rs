//! `cargo xtask ci`'s house rule: no module cycle inside a crate. A
//! module's dependencies are the `crate::NAME` paths its code names
//! (comments and `#[cfg(test)]` modules left out); a name `lib.rs`
//! re-exports counts as the module that defines it. A file that can be
//! read alone names only modules below it in the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module name (`a`, `a::b`) to the modules it uses.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// Checks every crate under `crates/`; the error lists each cycle found.
pub(crate) fn check(root: &Path) -> Result<(), String> {
    let mut cycles = Vec::new();
    let mut crates: Vec<_> = std::fs::read_dir(root.join("crates"))
        .map_err(|e| format!("crates/: {e}"))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    crates.sort();
    for dir in crates {
        let src = dir.join("src");
        if !src.is_dir() {
            continue;
        }
        let graph = graph(&sources(&src)?);
        for cycle in find_cycles(&graph) {
            let name = dir
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            cycles.push(format!("{name}: {}", cycle.join(", ")));
        }
    }
    if cycles.is_empty() {
        eprintln!("xtask: no module cycle in any crate");
        Ok(())
    } else {
        Err(format!(
            "module cycles (break them; see docs/ARCHITECTURE.md §2):\n  {}",
            cycles.join("\n  ")
        ))
    }
}

/// Every `.rs` file below `src`, as (module name, text).
fn sources(src: &Path) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut dirs = vec![src.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap_or(&path).with_extension("");
            let rel = rel.to_string_lossy().replace('/', "::");
            let name = rel.strip_suffix("::mod").unwrap_or(&rel).to_owned();
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            out.push((name, text));
        }
    }
    Ok(out)
}

/// The module graph of one crate.
fn graph(files: &[(String, String)]) -> Graph {
    let modules: BTreeSet<&str> = files.iter().map(|(m, _)| m.as_str()).collect();
    let lib = files
        .iter()
        .find(|(m, _)| m == "lib")
        .map(|(_, t)| code(t))
        .unwrap_or_default();
    let reexports = reexports(&lib);
    let mut graph = Graph::new();
    for (module, text) in files {
        let mut text = code(text);
        if module == "lib" {
            // lib.rs's `mod` and `pub use` lines are structure, not use.
            text = text
                .lines()
                .filter(|l| {
                    !l.trim_start().starts_with("pub use") && !l.trim_start().starts_with("mod ")
                })
                .collect::<Vec<_>>()
                .join("\n");
        }
        let edges = graph.entry(module.clone()).or_default();
        for name in crate_names(&text) {
            let target = if modules.contains(name.as_str()) {
                name
            } else {
                reexports
                    .get(&name)
                    .cloned()
                    .unwrap_or_else(|| "lib".to_owned())
            };
            if &target != module && target != "lib" {
                edges.insert(target);
            }
        }
    }
    graph
}

/// The code of a file: line comments and `#[cfg(test)]` modules removed.
fn code(text: &str) -> String {
    let uncommented: String = text
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = String::new();
    let mut rest = uncommented.as_str();
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let Some(open) = after.find('{') else {
            rest = "";
            break;
        };
        // Only a module block is skipped; a test-only item is kept whole.
        if !after[..open].contains("mod ") {
            out.push_str(&after[..open + 1]);
            rest = &after[open + 1..];
            continue;
        }
        let mut depth = 0usize;
        let mut end = after.len();
        for (i, c) in after[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// `pub use module::{A, B}` and `pub use module::A` lines of `lib.rs`: item
/// name to the module that defines it.
fn reexports(lib: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for stmt in lib.split(';') {
        let Some(path) = stmt.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, items)) = path.split_once("::") else {
            continue;
        };
        for item in items
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|s| !s.is_empty())
        {
            map.entry(item.to_owned())
                .or_insert_with(|| module.trim().to_owned());
        }
    }
    map
}

/// The first names after each `crate::` (both `crate::a::b` and
/// `crate::{a, b::c}`).
fn crate_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let ident = |s: &str| {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect::<String>()
    };
    for (at, _) in text.match_indices("crate::") {
        // Not the tail of another path (`nucleus_x::crate` does not occur,
        // but `$crate::` in macros does).
        if text[..at].ends_with('$') {
            continue;
        }
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => item_start = true,
                    c if c.is_alphanumeric() || c == '_' => {
                        if item_start && depth == 1 {
                            names.insert(ident(&group[i..]));
                        }
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                names.insert(name);
            }
        }
    }
    names
}

/// The modules of each cycle: every strongly connected component of more
/// than one module (Tarjan's algorithm), sorted.
fn find_cycles(graph: &Graph) -> Vec<Vec<String>> {
    struct Tarjan<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        cycles: Vec<Vec<String>>,
    }
    impl<'g> Tarjan<'g> {
        fn visit(&mut self, v: &'g str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.graph.contains_key(w) {
                    continue;
                }
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
                let at = self.stack.iter().rposition(|m| *m == v).unwrap_or(0);
                let mut component: Vec<String> =
                    self.stack.drain(at..).map(str::to_owned).collect();
                if component.len() > 1 {
                    component.sort();
                    self.cycles.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        cycles: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.cycles
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(m, t)| ((*m).to_owned(), (*t).to_owned()))
            .collect()
    }

    #[test]
    fn a_cycle_through_a_reexport_is_found() {
        let g = graph(&files(&[
            ("lib", "mod a;\nmod b;\npub use b::Thing;\n"),
            ("a", "use crate::Thing;\n"),
            ("b", "use crate::{a::helper, c};\n// crate::nothing\n"),
        ]));
        assert_eq!(find_cycles(&g), [["a", "b"]]);
    }

    #[test]
    fn test_modules_and_comments_do_not_count() {
        let g = graph(&files(&[
            ("a", "use crate::b::X;\n"),
            ("b", "// use crate::a;\n#[cfg(test)]\nmod tests {\n    use crate::a::Y;\n    fn f() { {} }\n}\n"),
        ]));
        assert!(find_cycles(&g).is_empty(), "{g:?}");
    }

    #[test]
    fn the_workspace_has_no_module_cycle() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        check(&root).unwrap();
    }
}
