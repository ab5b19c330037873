//! The kas files against kas's own schema and pins; `oelint-adv` on meta-portal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, ensure};

use super::*;

// --- kas --------------------------------------------------------------------------------

/// The kas files validate against the schema of the installed kas, their includes exist,
/// and the layers are pinned to the snapshots' commits.
pub(super) fn kas_files(root: &Path, venv: &Path) -> Result<()> {
    let python = venv.join("bin/python3");
    ensure!(
        python.exists(),
        "{} is missing: run `cargo xtask setup`",
        python.display()
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("yocto/kas"))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    ensure!(!files.is_empty(), "no kas files in yocto/kas");
    for machine in MACHINES {
        ensure!(
            files.iter().any(|f| f.ends_with(format!("{machine}.yml"))),
            "yocto/kas/{machine}.yml is missing"
        );
    }
    let pins = pinned_commits(&root.join(SNAPSHOTS).join("README.md"))?;
    let mut cmd = Command::new(&python);
    cmd.arg("-c")
        .arg(KAS_CHECK)
        .arg(root)
        .arg(serde_json::to_string(&pins)?)
        .args(&files);
    eprintln!(
        "$ {} -c <kas schema check> {}",
        python.display(),
        files.len()
    );
    let status = cmd.status().context("running the kas check")?;
    ensure!(status.success(), "kas files: see above");
    Ok(())
}

/// The README's table of layer → (branch, commit); a fallback when the snapshots are not
/// on this machine (kas files are still checked against the schema).
fn pinned_commits(readme: &Path) -> Result<BTreeMap<String, (String, String)>> {
    let Ok(text) = std::fs::read_to_string(readme) else {
        eprintln!("yocto: {} absent: commits not compared", readme.display());
        return Ok(BTreeMap::new());
    };
    let mut pins = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if let [layer, _, branch, commit] = cells[..]
            && commit.len() == 40
            && commit.bytes().all(|b| b.is_ascii_hexdigit())
        {
            pins.insert(layer.to_owned(), (branch.to_owned(), commit.to_owned()));
        }
    }
    ensure!(
        !pins.is_empty(),
        "no pinned commits found in {}",
        readme.display()
    );
    Ok(pins)
}

/// Run with the venv's Python: argv = root, pins (JSON), kas files.
const KAS_CHECK: &str = r#"
import json, os, sys
import jsonschema, yaml
from kas.configschema import CONFIGSCHEMA
root, pins, files = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3:]
validator = jsonschema.Draft7Validator(CONFIGSCHEMA)
problems = []
pinned = {}
for path in files:
    rel = os.path.relpath(path, root)
    with open(path) as f:
        data = yaml.safe_load(f)
    for e in sorted(validator.iter_errors(data), key=str):
        problems.append(f"{rel}: {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}")
    for inc in (data.get("header") or {}).get("includes") or []:
        if isinstance(inc, str) and not os.path.isfile(os.path.join(root, inc)):
            problems.append(f"{rel}: includes {inc}, which does not exist (relative to the repository root)")
    for name, repo in (data.get("repos") or {}).items():
        if isinstance(repo, dict) and repo.get("url"):
            pinned[name] = repo
for name, (branch, commit) in pins.items():
    repo = pinned.get(name)
    if repo is None:
        problems.append(f"the kas files do not pin {name}")
    elif repo.get("commit") != commit or str(repo.get("branch")) != branch:
        problems.append(f"{name}: kas pins {repo.get('branch')}@{repo.get('commit')}, the snapshots are {branch}@{commit}")
for p in problems:
    print("kas:", p, file=sys.stderr)
print(f"kas: {len(files)} files checked against kas's schema, {len(pinned)} repos pinned", file=sys.stderr)
sys.exit(1 if problems else 0)
"#;

// --- oelint -----------------------------------------------------------------------------

/// `oelint-adv --quiet --release wrynose` over meta-portal's recipes: nothing above info.
pub(super) fn oelint(root: &Path, venv: &Path) -> Result<()> {
    let tool = venv.join("bin/oelint-adv");
    ensure!(
        tool.exists(),
        "{} is missing: run `cargo xtask setup`",
        tool.display()
    );
    let mut recipes = Vec::new();
    collect(&root.join(META_PORTAL), &mut |p: &Path| {
        if p.extension().is_some_and(|e| e == "bb" || e == "bbappend") {
            recipes.push(p.to_owned());
        }
    })?;
    recipes.sort();
    let mut cmd = Command::new(&tool);
    // meta-rauc's variables (bundle.bbclass) are known to oelint-adv as the `rauc` layer.
    cmd.args([
        "--quiet",
        "--release",
        "wrynose",
        "--hide",
        "info",
        "--extra-layer",
        "rauc",
        "--",
    ])
    .args(&recipes)
    .current_dir(root);
    eprintln!("$ {}", display(&cmd));
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {}", tool.display()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let findings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(":warning:") || l.contains(":error:"))
        .collect();
    for line in text.lines() {
        eprintln!("{line}");
    }
    ensure!(
        findings.is_empty(),
        "oelint-adv: {} findings above info in {} recipes",
        findings.len(),
        recipes.len()
    );
    // oelint-adv exits with the number of findings; anything else is a crash.
    ensure!(
        out.status.success() || text.lines().any(|l| l.contains(":info:")),
        "oelint-adv failed ({})",
        out.status
    );
    eprintln!("oelint-adv: {} recipes, nothing above info", recipes.len());
    Ok(())
}

fn collect(dir: &Path, found: &mut dyn FnMut(&Path)) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, found)?;
        } else {
            found(&path);
        }
    }
    Ok(())
}
