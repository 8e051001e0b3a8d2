//! Real images through a real registry: buildah and podman (Debian's packages, the `vfs`
//! storage driver, no daemon) build and push to the CNCF registry (`docker-registry`)
//! started on a free loopback port; the digest recorded is the one the registry serves
//! (checked with skopeo, an independent client); every target deploys that digest; a digest
//! the registry no longer serves stops the next rollout before anything runs.
//! `.ci/run` installs buildah, podman, skopeo and docker-registry when missing.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::support::{Repo, Run, args, wait_until};

/// A registry on a free loopback port, stopped when dropped.
pub(crate) struct Registry {
    child: Child,
    port: u16,
    _dir: TempDir,
}

impl Registry {
    pub(crate) fn start() -> Registry {
        Registry::start_with(None)
    }

    /// A registry that asks for `user` and `password` (HTTP Basic, an htpasswd file with a
    /// bcrypt hash made by Python's `crypt`), as a hosted registry asks for a token.
    pub(crate) fn start_with_login(user: &str, password: &str) -> Registry {
        Registry::start_with(Some((user, password)))
    }

    fn start_with(login: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("config.yml");
        let mut text = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n  secret: atmos-test\n",
            dir.path().join("data").display()
        );
        if let Some((user, password)) = login {
            let hash = Command::new("python3")
                .args([
                    "-c",
                    "import crypt, sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))",
                    password,
                ])
                .output()
                .expect("python3");
            assert!(
                hash.status.success(),
                "{}",
                String::from_utf8_lossy(&hash.stderr)
            );
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(
                &htpasswd,
                format!("{user}:{}\n", String::from_utf8_lossy(&hash.stdout).trim()),
            )
            .expect("write");
            text.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: atmos-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        std::fs::write(&config, text).expect("write");
        let log = dir.path().join("log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("docker-registry (Debian's docker-registry package; .ci/run installs it)");
        let mut port = 0;
        wait_until(Duration::from_secs(30), "the registry to listen", || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            match text
                .split("listening on 127.0.0.1:")
                .nth(1)
                .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|p| p.parse().ok())
            {
                Some(p) => {
                    port = p;
                    true
                }
                None => false,
            }
        });
        Registry {
            child,
            port,
            _dir: dir,
        }
    }

    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The engines' configuration for one test: a private `vfs` image store and the registry
/// marked plain HTTP, as `CONTAINERS_STORAGE_CONF` and `CONTAINERS_REGISTRIES_CONF`.
pub(crate) struct Engines {
    dir: TempDir,
}

impl Engines {
    pub(crate) fn new(registry: &Registry) -> Engines {
        Engines::for_registries(&[registry])
    }

    /// Engines that reach every one of `registries` on plain HTTP.
    pub(crate) fn for_registries(registries: &[&Registry]) -> Engines {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{0}/graph\"\nrunroot = \"{0}/run\"\n",
                dir.path().display()
            ),
        )
        .expect("write");
        let conf: String = registries
            .iter()
            .map(|r| {
                format!(
                    "[[registry]]\nlocation = \"{}\"\ninsecure = true\n",
                    r.host()
                )
            })
            .collect();
        std::fs::write(dir.path().join("registries.conf"), conf).expect("write");
        Engines { dir }
    }

    pub(crate) fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "CONTAINERS_STORAGE_CONF".into(),
                self.dir.path().join("storage.conf").display().to_string(),
            ),
            (
                "CONTAINERS_REGISTRIES_CONF".into(),
                self.dir
                    .path()
                    .join("registries.conf")
                    .display()
                    .to_string(),
            ),
            ("BUILDAH_ISOLATION".into(), "chroot".into()),
        ]
    }
}

pub(crate) fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo (Debian's skopeo package; .ci/run installs it)");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn deployment(registry: &str) -> String {
    format!(
        r#"deployment:
  name: svc
  components:
    nixpack:
      api:
        vars: {{image: {{registry: "{registry}", name: shop/api}}}}
        settings:
          nixpack:
            builder: buildah
            path: services/api
            deploy: 'echo "$ATMOS_IMAGE@$ATMOS_IMAGE_DIGEST" >> "$OUT/deployed.$ATMOS_TARGET"'
      worker:
        vars: {{image: {{registry: "{registry}", name: shop/worker}}}}
        settings:
          nixpack:
            builder: podman
            path: services/worker
            deploy: 'echo "$ATMOS_IMAGE@$ATMOS_IMAGE_DIGEST" >> "$OUT/deployed.$ATMOS_TARGET"'
  targets:
    dev: {{}}
    staging:
      promotion: {{from: dev}}
    prod:
      promotion: {{from: staging}}
"#
    )
}

pub(crate) fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn buildah_and_podman_images_are_deployed_by_the_digest_the_registry_serves_and_only_while_it_does()
{
    let registry = Registry::start();
    let engines = Engines::new(&registry);
    let repo = Repo::new();
    let out = tempfile::tempdir().expect("tempdir");
    repo.write("svc.yaml", deployment(&registry.host()));
    for (service, text) in [
        ("api", "hello from api\n"),
        ("worker", "hello from worker\n"),
    ] {
        repo.write_file(&format!("services/{service}/hello.txt"), text);
        repo.write_file(
            &format!("services/{service}/Dockerfile"),
            "FROM scratch\nCOPY hello.txt /hello.txt\n",
        );
    }
    let sha = repo.commit("init");
    let mut env: Vec<(String, String)> = engines.env();
    env.push(("OUT".into(), out.path().display().to_string()));
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let run = |line: &'static str| -> Run { repo.atmos_env(&args(line), &env_ref) };

    // Build and push: the digest recorded is the one the registry serves for the tag.
    run("deployment build svc --target dev").code(0);
    let note = repo.git(&["notes", "--ref", "atmos/svc/builds", "show", &sha]);
    for (component, repository) in [("api", "shop/api"), ("worker", "shop/worker")] {
        let record: serde_json::Value = note
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|r| r["component"] == component)
            .expect("a build record");
        let image = format!("{}/{repository}:{}", registry.host(), &sha[..12]);
        assert_eq!(record["image"], image.as_str());
        assert_eq!(record["pushed"], true);
        let served = skopeo(&[
            "inspect",
            "--tls-verify=false",
            "--format",
            "{{.Digest}}",
            &format!("docker://{image}"),
        ]);
        assert_eq!(
            record["digest"],
            served.as_str(),
            "{component}: the recorded digest is the one the registry serves"
        );
    }

    // dev, staging and prod deploy that digest.
    run("deployment rollout svc --target dev").code(0);
    run("deployment rollout svc --target staging --promote-from dev").code(0);
    run("deployment rollout svc --target prod --promote-from staging").code(0);
    let dev = lines(&out.path().join("deployed.dev"));
    assert_eq!(dev.len(), 2, "{dev:?}");
    for target in ["staging", "prod"] {
        let mut deployed = lines(&out.path().join(format!("deployed.{target}")));
        deployed.sort();
        let mut expected = dev.clone();
        expected.sort();
        assert_eq!(deployed, expected, "{target} deploys what dev deployed");
    }
    let api = dev
        .iter()
        .find(|l| l.contains("/shop/api:"))
        .expect("api deployed")
        .clone();
    let digest = api.split('@').nth(1).expect("a digest").to_owned();
    assert!(digest.starts_with("sha256:"), "{api}");

    // The registry stops serving it: the next rollout refuses before anything runs.
    skopeo(&[
        "delete",
        "--tls-verify=false",
        &format!("docker://{}/shop/api@{digest}", registry.host()),
    ]);
    let records = repo.tags("svc", "dev", "api").len();
    let refused = run("deployment rollout svc --target dev --force");
    refused.code(1).stderr_has(&[
        &format!(
            "api: the registry does not serve {}/shop/api:{}@{digest}",
            registry.host(),
            &sha[..12]
        ),
        "so nothing ran",
        "build and push it again",
    ]);
    assert_eq!(
        lines(&out.path().join("deployed.dev")).len(),
        2,
        "nothing ran"
    );
    assert_eq!(
        repo.tags("svc", "dev", "api").len(),
        records,
        "not even an intent was recorded"
    );
    // --offline does not ask, and says so.
    run("deployment rollout svc --target dev --force --offline")
        .code(0)
        .stderr_has(&["--offline: its registry was not asked whether it serves that digest"]);
}
