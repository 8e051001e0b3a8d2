//! Image benchmark: what `atmos deployment build` adds to building and pushing a small image
//! with the real buildah, and what its signed provenance costs.
//!
//! Starts the CNCF registry (`docker-registry serve`) on a loopback port, makes a repository
//! whose one component is a `FROM scratch` image holding 1 MiB of random bytes (new bytes and
//! a new commit every run, so nothing is cached: each run builds and pushes a new layer), and
//! measures the median wall time and peak RSS of:
//!
//! - **floor**: `buildah bud` + `buildah push --digestfile` of the same image, by hand;
//! - **atmos build**: the same through atmos (private export of the commit, the push, the
//!   registry's digest, the builds note, the SBOM note), without a signing key;
//! - **atmos build --signing-key**: plus the signed record and the provenance (statement,
//!   DSSE signature, attached to the image as an OCI referrer).
//!
//! Run: `cargo bench -p atmos-cli --bench images` (`-- --runs N`, default 7). Needs buildah,
//! docker-registry and ssh-keygen (`.ci/run` installs the first two); without them it says so
//! and measures nothing. Figures go in docs/benchmarks.md.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{atmos_binary, git, sample};

struct Registry(Child);

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn registry(dir: &Path) -> (Registry, String) {
    let config = dir.join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:0\n  secret: bench\n",
            dir.join("registry-data").display()
        ),
    )
    .expect("write");
    let log = dir.join("registry.log");
    // Held at once, so that it is stopped (and waited for) however this function ends.
    let child = Registry(
        Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("docker-registry"),
    );
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(port) = text
            .split("listening on 127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .filter(|p| !p.is_empty())
        {
            return (child, format!("127.0.0.1:{port}"));
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the registry did not start: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn main() {
    common::measure_mode();
    let args: Vec<String> = std::env::args().collect();
    let runs = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(7usize);
    for tool in ["buildah", "docker-registry", "ssh-keygen"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            println!("images: skipped, {tool} is not installed (.ci/run installs it)");
            return;
        }
    }
    let atmos = atmos_binary();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let (_registry, host) = registry(root);
    std::fs::write(
        root.join("storage.conf"),
        format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{0}/graph\"\nrunroot = \"{0}/run\"\n",
            root.display()
        ),
    )
    .expect("write");
    std::fs::write(
        root.join("registries.conf"),
        format!("[[registry]]\nlocation = \"{host}\"\ninsecure = true\n"),
    )
    .expect("write");
    let key = root.join("key");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(made.success());

    let repo = root.join("repo");
    let api = repo.join("services/api");
    std::fs::create_dir_all(repo.join("deployments")).expect("mkdir");
    std::fs::create_dir_all(&api).expect("mkdir");
    std::fs::write(
        repo.join("deployments/svc.yaml"),
        format!(
            "deployment:\n  name: svc\n  components:\n    nixpack:\n      api:\n        vars: {{image: {{registry: \"{host}\", name: bench/api}}}}\n        settings:\n          nixpack: {{builder: buildah, path: services/api, deploy: 'true'}}\n  targets:\n    dev: {{}}\n"
        ),
    )
    .expect("write");
    std::fs::write(api.join("Dockerfile"), "FROM scratch\nCOPY blob /blob\n").expect("write");
    std::fs::write(api.join("blob"), "seed").expect("write");
    git(&repo, &["init", "-q"]);
    git(&repo, &["config", "user.email", "ci@example.com"]);
    git(&repo, &["config", "user.name", "CI"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "seed"]);
    let floor_dir = root.join("floor");
    std::fs::create_dir_all(&floor_dir).expect("mkdir");
    std::fs::write(
        floor_dir.join("Dockerfile"),
        "FROM scratch\nCOPY blob /blob\n",
    )
    .expect("write");

    let env = format!(
        "export CONTAINERS_STORAGE_CONF='{0}/storage.conf' CONTAINERS_REGISTRIES_CONF='{0}/registries.conf' BUILDAH_ISOLATION=chroot; ",
        root.display()
    );
    let fresh = "head -c 1048576 /dev/urandom > services/api/blob && git commit -qam run && ";
    let floor = format!(
        "{env}cd '{0}' && head -c 1048576 /dev/urandom > blob && buildah bud -q -f Dockerfile -t {host}/bench/floor:$$ . >/dev/null && buildah push -q --digestfile digest {host}/bench/floor:$$ >/dev/null",
        floor_dir.display()
    );
    let plain = format!(
        "{env}cd '{}' && {fresh}'{}' deployment build svc --target dev >/dev/null",
        repo.display(),
        atmos.display()
    );
    let signed = format!(
        "{env}cd '{}' && {fresh}'{}' deployment build svc --target dev --signing-key '{}' >/dev/null",
        repo.display(),
        atmos.display(),
        key.display()
    );
    println!("images: build and push of a 1 MiB FROM scratch image, median of {runs} runs");
    println!("| what | wall | peak RSS (largest process) |");
    println!("|---|---|---|");
    for (name, script) in [
        ("floor: buildah bud + buildah push", floor),
        ("atmos deployment build", plain),
        (
            "atmos deployment build --signing-key (record signed, provenance signed and attached)",
            signed,
        ),
    ] {
        let (ms, kb) = sample(&script, runs);
        println!("| {name} | {ms:.0} ms | {:.1} MiB |", kb as f64 / 1024.0);
    }
}
