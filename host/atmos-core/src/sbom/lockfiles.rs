//! Dependencies from lockfiles, natively: `Cargo.lock`, `package-lock.json` (v1–v3),
//! `go.sum` (or `go.mod` without it), `requirements.txt` (pinned `==` lines), `poetry.lock`,
//! `Gemfile.lock`, `.terraform.lock.hcl`. Each package gets its Package URL.

use std::path::Path;

use base64::Engine as _;
use schemars::JsonSchema;
use serde::Serialize;

/// One dependency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Package {
    /// Ecosystem name as in the purl type (`cargo`, `npm`, `golang`, `pypi`, `gem`, `generic`).
    pub ecosystem: &'static str,
    /// Package name as the ecosystem spells it (`@scope/name`, `github.com/x/y`).
    pub name: String,
    /// Exact version.
    pub version: String,
    /// Package URL.
    pub purl: String,
    /// The lockfile it came from (relative to the project root).
    pub source: String,
    /// (`SHA-256` | `SHA-512` | …, hex digest) when the lockfile records one.
    pub hash: Option<(&'static str, String)>,
}

/// Why a lockfile could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error, JsonSchema)]
#[error("{file}: {message}")]
pub struct LockfileError {
    /// The file.
    pub file: String,
    /// What is wrong.
    pub message: String,
}

/// The package URL (`pkg:<type>/<namespace>/<name>@<version>?<qualifier>`) of a package
/// named `full_name` (whose `/`-separated leading segments are its namespace), built and
/// percent-encoded by the `purl` crate.
pub fn purl(
    kind: &str,
    full_name: &str,
    version: &str,
    qualifier: Option<(&str, &str)>,
) -> Result<String, String> {
    let (namespace, name) = match full_name.rsplit_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, full_name),
    };
    let mut builder =
        ::purl::GenericPurlBuilder::<String>::new(kind.to_owned(), name).with_version(version);
    if let Some(ns) = namespace {
        builder = builder.with_namespace(ns);
    }
    if let Some((key, value)) = qualifier {
        builder = builder
            .with_qualifier(key, value)
            .map_err(|e| format!("{full_name} {version}: {e}"))?;
    }
    builder
        .build()
        .map(|p| p.to_string())
        .map_err(|e| format!("{full_name} {version} has no package URL: {e}"))
}

fn package(
    kind: &'static str,
    name: &str,
    version: &str,
    source: &str,
    qualifier: Option<(&str, &str)>,
) -> Result<Package, String> {
    let purl_name = match kind {
        // PEP 503 normalisation, as the purl spec requires for pypi.
        "pypi" => name.to_lowercase().replace(['_', '.'], "-"),
        _ => name.to_owned(),
    };
    Ok(Package {
        ecosystem: kind,
        name: name.to_owned(),
        version: version.to_owned(),
        purl: purl(kind, &purl_name, version, qualifier)?,
        source: source.to_owned(),
        hash: None,
    })
}

/// A lockfile parser: text and the file's display name in, packages out.
type Parser = fn(&str, &str) -> Result<Vec<Package>, String>;

/// The lockfiles read, by file name.
pub const NAMES: [&str; 8] = [
    "Cargo.lock",
    "package-lock.json",
    "go.sum",
    "go.mod",
    "requirements.txt",
    "poetry.lock",
    "Gemfile.lock",
    ".terraform.lock.hcl",
];

/// Every known lockfile directly in `dir`, parsed. `shown` turns a path into the name used in
/// records.
pub fn scan(dir: &Path, shown: &dyn Fn(&Path) -> String) -> (Vec<Package>, Vec<LockfileError>) {
    let mut packages = Vec::new();
    let mut errors = Vec::new();
    let parsers: [(&str, Parser); 8] = [
        ("Cargo.lock", cargo),
        ("package-lock.json", npm),
        ("go.sum", go_sum),
        ("go.mod", go_mod),
        ("requirements.txt", requirements),
        ("poetry.lock", poetry),
        ("Gemfile.lock", gemfile),
        (".terraform.lock.hcl", terraform),
    ];
    for (file, parse) in parsers {
        let path = dir.join(file);
        if !path.is_file() || (file == "go.mod" && dir.join("go.sum").is_file()) {
            continue;
        }
        let name = shown(&path);
        match std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|text| parse(&text, &name))
        {
            Ok(mut found) => packages.append(&mut found),
            Err(message) => errors.push(LockfileError {
                file: name,
                message,
            }),
        }
    }
    (packages, errors)
}

fn cargo(text: &str, source: &str) -> Result<Vec<Package>, String> {
    let doc: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for p in doc
        .get("package")
        .and_then(|p| p.as_array())
        .into_iter()
        .flatten()
    {
        // Workspace and path crates have no source: they are the project, not dependencies.
        let Some(src) = p.get("source").and_then(|s| s.as_str()) else {
            continue;
        };
        let (Some(name), Some(version)) = (
            p.get("name").and_then(|v| v.as_str()),
            p.get("version").and_then(|v| v.as_str()),
        ) else {
            continue;
        };
        // git sources: kept, with the commit in a qualifier.
        let vcs = (!src.starts_with("registry+")).then_some(("vcs_url", src));
        let mut pkg = package("cargo", name, version, source, vcs)?;
        if let Some(sum) = p.get("checksum").and_then(|c| c.as_str()) {
            pkg.hash = Some(("SHA-256", sum.to_owned()));
        }
        out.push(pkg);
    }
    Ok(out)
}

fn npm(text: &str, source: &str) -> Result<Vec<Package>, String> {
    let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let integrity = |v: &serde_json::Value| -> Option<(&'static str, String)> {
        let i = v.get("integrity")?.as_str()?;
        let (alg, b64) = i.split_once('-')?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Some((
            match alg {
                "sha512" => "SHA-512",
                "sha256" => "SHA-256",
                "sha1" => "SHA-1",
                _ => return None,
            },
            hex,
        ))
    };
    if let Some(packages) = doc.get("packages").and_then(|p| p.as_object()) {
        // lockfileVersion 2 and 3.
        for (key, v) in packages {
            if key.is_empty() || v.get("link").and_then(|l| l.as_bool()) == Some(true) {
                continue;
            }
            let Some(idx) = key.rfind("node_modules/") else {
                continue;
            };
            let name = &key[idx + "node_modules/".len()..];
            let Some(version) = v.get("version").and_then(|x| x.as_str()) else {
                continue;
            };
            let mut pkg = package("npm", name, version, source, None)?;
            pkg.hash = integrity(v);
            out.push(pkg);
        }
    } else if let Some(deps) = doc.get("dependencies").and_then(|d| d.as_object()) {
        // lockfileVersion 1: a nested tree.
        let mut stack: Vec<&serde_json::Map<String, serde_json::Value>> = vec![deps];
        while let Some(map) = stack.pop() {
            for (name, v) in map {
                if let Some(version) = v.get("version").and_then(|x| x.as_str()) {
                    let mut pkg = package("npm", name, version, source, None)?;
                    pkg.hash = integrity(v);
                    out.push(pkg);
                }
                if let Some(nested) = v.get("dependencies").and_then(|d| d.as_object()) {
                    stack.push(nested);
                }
            }
        }
    } else {
        return Err("neither `packages` nor `dependencies`: not a package-lock.json".into());
    }
    out.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    out.dedup_by(|a, b| a.name == b.name && a.version == b.version);
    Ok(out)
}

fn go_sum(text: &str, source: &str) -> Result<Vec<Package>, String> {
    let mut out: Vec<Package> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.is_empty() {
            continue;
        }
        if parts.len() != 3 {
            return Err(format!("line {}: expected `module version hash`", n + 1));
        }
        // `/go.mod` lines only pin the module file of a version, not code that is built.
        if parts[1].ends_with("/go.mod") {
            continue;
        }
        if !out
            .iter()
            .any(|p| p.name == parts[0] && p.version == parts[1])
        {
            out.push(package("golang", parts[0], parts[1], source, None)?);
        }
    }
    Ok(out)
}

fn go_mod(text: &str, source: &str) -> Result<Vec<Package>, String> {
    let mut out = Vec::new();
    let mut in_block = false;
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or("").trim();
        if line.starts_with("require (") {
            in_block = true;
            continue;
        }
        if in_block && line == ")" {
            in_block = false;
            continue;
        }
        let spec = if in_block {
            Some(line)
        } else {
            line.strip_prefix("require ")
        };
        if let Some(spec) = spec {
            let parts: Vec<&str> = spec.split_whitespace().collect();
            if parts.len() >= 2 {
                out.push(package("golang", parts[0], parts[1], source, None)?);
            }
        }
    }
    Ok(out)
}

fn requirements(text: &str, source: &str) -> Result<Vec<Package>, String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with('-') {
            continue;
        }
        // name[extras]==version ; markers
        let spec = line.split(';').next().unwrap_or("").trim();
        if let Some((name, version)) = spec.split_once("==") {
            let name = name.split('[').next().unwrap_or(name).trim();
            let version = version.split_whitespace().next().unwrap_or("").trim();
            if !name.is_empty() && !version.is_empty() {
                out.push(package("pypi", name, version, source, None)?);
            }
        }
    }
    Ok(out)
}

fn poetry(text: &str, source: &str) -> Result<Vec<Package>, String> {
    let doc: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    doc.get("package")
        .and_then(|p| p.as_array())
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p.get("name")?.as_str()?, p.get("version")?.as_str()?)))
        .map(|(name, version)| package("pypi", name, version, source, None))
        .collect()
}

fn gemfile(text: &str, source: &str) -> Result<Vec<Package>, String> {
    let mut out = Vec::new();
    let mut section = "";
    for line in text.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() {
            section = line.trim();
            continue;
        }
        // In GEM specs, 4 spaces: a locked gem "name (version)"; 6 spaces: its requirements.
        if section != "GEM" || !line.starts_with("    ") || line.starts_with("     ") {
            continue;
        }
        let spec = line.trim();
        if let Some((name, rest)) = spec.split_once(" (") {
            let version = rest.trim_end_matches(')');
            // A platform gem: 1.15.4-x86_64-linux → version 1.15.4, platform qualifier.
            let (version, platform) = match version.split_once('-') {
                Some((v, p)) if p.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) => {
                    (v, Some(p))
                }
                _ => (version, None),
            };
            let platform = platform.map(|p| ("platform", p));
            out.push(package("gem", name, version, source, platform)?);
        }
    }
    Ok(out)
}

fn terraform(text: &str, source: &str) -> Result<Vec<Package>, String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("provider \"") {
            current = rest.split('"').next().map(str::to_owned);
        } else if let (Some(addr), Some(v)) = (&current, t.strip_prefix("version")) {
            let version = v.trim().trim_start_matches('=').trim().trim_matches('"');
            // No purl type exists for Terraform providers: `generic` with the registry
            // address as namespace.
            out.push(package("generic", addr, version, source, None)?);
            current = None;
        }
    }
    if out.is_empty() && text.contains("provider") {
        return Err("no `provider \"…\" { version = \"…\" }` blocks".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_encode_namespaces_and_names() {
        let purl = |kind, name, version| purl(kind, name, version, None).expect("purl");
        assert_eq!(
            purl("npm", "@babel/core", "7.24.0"),
            "pkg:npm/%40babel/core@7.24.0"
        );
        assert_eq!(
            purl("golang", "github.com/gin-gonic/gin", "v1.9.1"),
            "pkg:golang/github.com/gin-gonic/gin@v1.9.1"
        );
        assert_eq!(
            package("pypi", "Flask_Login", "0.6.3", "r", None)
                .expect("purl")
                .purl,
            "pkg:pypi/flask-login@0.6.3"
        );
        assert_eq!(purl("gem", "rack", "3.0.8"), "pkg:gem/rack@3.0.8");
        assert_eq!(
            super::purl(
                "cargo",
                "x",
                "1.0.0",
                Some(("vcs_url", "git+https://e.x/r#ab"))
            )
            .expect("purl"),
            "pkg:cargo/x@1.0.0?vcs_url=git%2Bhttps://e.x/r%23ab"
        );
    }

    #[test]
    fn gemfile_lock_specs_and_platforms() {
        let text = "GEM\n  remote: https://rubygems.org/\n  specs:\n    nokogiri (1.15.4-x86_64-linux)\n      racc (~> 1.4)\n    racc (1.7.3)\n\nPLATFORMS\n  x86_64-linux\n\nDEPENDENCIES\n  nokogiri\n";
        let got = gemfile(text, "Gemfile.lock").expect("parse");
        let purls: Vec<&str> = got.iter().map(|p| p.purl.as_str()).collect();
        assert_eq!(
            purls,
            vec![
                "pkg:gem/nokogiri@1.15.4?platform=x86_64-linux",
                "pkg:gem/racc@1.7.3"
            ]
        );
    }

    #[test]
    fn requirements_only_pinned() {
        let got = requirements("flask==3.0.0\nrequests[socks]==2.31.0 ; python_version>'3'\n# comment\nnumpy>=1.0\n-r other.txt\n", "r").expect("parse");
        assert_eq!(
            got.iter().map(|p| p.purl.as_str()).collect::<Vec<_>>(),
            vec!["pkg:pypi/flask@3.0.0", "pkg:pypi/requests@2.31.0"]
        );
    }

    #[test]
    fn go_sum_skips_go_mod_lines() {
        let text = "github.com/a/b v1.0.0 h1:abc=\ngithub.com/a/b v1.0.0/go.mod h1:def=\ngolang.org/x/net v0.17.0/go.mod h1:x=\n";
        let got = go_sum(text, "go.sum").expect("parse");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].purl, "pkg:golang/github.com/a/b@v1.0.0");
    }

    #[test]
    fn terraform_providers() {
        let text = "provider \"registry.terraform.io/hashicorp/aws\" {\n  version     = \"5.31.0\"\n  constraints = \"~> 5.0\"\n  hashes = [\n    \"h1:abc=\",\n  ]\n}\n";
        let got = terraform(text, "t").expect("parse");
        assert_eq!(
            got[0].purl,
            "pkg:generic/registry.terraform.io/hashicorp/aws@5.31.0"
        );
    }
}
