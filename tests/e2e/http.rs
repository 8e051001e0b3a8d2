//! The guard behind a real smart-HTTP git server: Apache (Debian's `apache2`) serving
//! `git-http-backend` on a loopback port with basic-auth users, the bare repository's
//! `pre-receive` hook running `atmos deployment verify --pre-receive` with the `REMOTE_USER`
//! Apache authenticated. Honest rollouts from two clones at once land; a non-deployer, a
//! record that names someone other than its pusher and a hand-pushed state ref are refused,
//! and the pusher is shown why.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::support::{Background, Run, atmos_cmd, git_in as git_ok, wait_until};

const DEPLOYMENT: &str = "deployment:
  name: svc
  components:
    script:
      api:
        settings: {script: {apply: 'true'}}
  targets:
    dev: {}
    staging:
      promotion:
        from: dev
        deployers: {from_groups: [release]}
";

/// The rules: alice releases; accounts map to identities; every record is bound to its
/// pusher.
const ATMOS_YAML: &str = "git:
  remote: origin
  lock_ttl: 10m
approvers:
  groups:
    release: [alice@example.com]
identities:
  pushers:
    alice: alice@example.com
    carol: carol@example.com
  bind_pushes: true
";

const USERS: [(&str, &str); 2] = [("alice", "alice-secret"), ("carol", "carol-secret")];

fn git(dir: &Path, args: &[&str]) -> Run {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("git")
        .into()
}

/// Apache on 127.0.0.1 serving `repos/origin.git` over smart HTTP to the basic-auth users.
struct Apache {
    dir: TempDir,
    port: u16,
    child: Child,
}

impl Apache {
    fn start() -> Apache {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let repos = root.join("repos");
        std::fs::create_dir_all(&repos).expect("mkdir");
        git_ok(
            &repos,
            &["init", "-q", "--bare", "-b", "main", "origin.git"],
        );
        let origin = repos.join("origin.git");
        git_ok(&origin, &["config", "http.receivepack", "true"]);
        crate::support::install_guard(&origin);
        let passwords = root.join("htpasswd");
        for (i, (user, password)) in USERS.iter().enumerate() {
            let mut args = vec!["-b", "-B"];
            if i == 0 {
                args.push("-c");
            }
            let made = Command::new("htpasswd")
                .args(&args)
                .arg(&passwords)
                .args([user, password])
                .output()
                .expect("htpasswd (Debian's apache2-utils; .ci/run installs apache2)");
            assert!(
                made.status.success(),
                "{}",
                String::from_utf8_lossy(&made.stderr)
            );
        }
        // Started as root, Apache serves as `nobody`, which must own what it writes.
        let root_user = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        if root_user {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            let owned = Command::new("chown")
                .args(["-R", "nobody:nogroup"])
                .arg(&repos)
                .status()
                .expect("chown");
            assert!(owned.success());
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let modules = "/usr/lib/apache2/modules";
        let load = [
            "mpm_prefork",
            "authn_core",
            "authn_file",
            "authz_core",
            "authz_user",
            "auth_basic",
            "alias",
            "cgi",
            "env",
        ]
        .iter()
        .map(|m| format!("LoadModule {m}_module {modules}/mod_{m}.so\n"))
        .collect::<String>();
        let conf = root.join("httpd.conf");
        std::fs::write(
            &conf,
            format!(
                "ServerRoot {r}\nServerName 127.0.0.1\nListen 127.0.0.1:{port}\nPidFile {r}/httpd.pid\nErrorLog {r}/error.log\nDefaultRuntimeDir {r}\n{load}User nobody\nGroup nogroup\nSetEnv GIT_PROJECT_ROOT {repos}\nSetEnv GIT_HTTP_EXPORT_ALL 1\nScriptAlias /git/ /usr/lib/git-core/git-http-backend/\n<Location /git/>\n  AuthType Basic\n  AuthName git\n  AuthUserFile {pw}\n  Require valid-user\n</Location>\n",
                r = root.display(),
                repos = repos.display(),
                pw = passwords.display(),
            ),
        )
        .expect("httpd.conf");
        // Its own process group: the parent and its prefork workers stop together.
        let child = Command::new("apache2")
            .args(["-f"])
            .arg(&conf)
            .arg("-DFOREGROUND")
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("apache2 (Debian's apache2; .ci/run installs it)");
        let server = Apache { dir, port, child };
        wait_until(Duration::from_secs(20), "Apache answers", || {
            git(server.dir.path(), &["ls-remote", &server.url("alice")]).code == 0
        });
        server
    }

    fn url(&self, user: &str) -> String {
        let password = USERS
            .iter()
            .find(|(u, _)| *u == user)
            .map_or("wrong", |(_, p)| *p);
        format!(
            "http://{user}:{password}@127.0.0.1:{}/git/origin.git",
            self.port
        )
    }

    /// A clone pushing as HTTP user `user`, writing records as `email`.
    fn clone(&self, name: &str, user: &str, email: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        git_ok(
            self.dir.path(),
            &["clone", "-q", "--branch", "main", &self.url(user), name],
        );
        git_ok(&path, &["config", "user.email", email]);
        git_ok(&path, &["config", "user.name", name]);
        path
    }

    /// The refs the server holds under `prefix`.
    fn refs(&self, prefix: &str) -> Vec<String> {
        git_ok(self.dir.path(), &["ls-remote", &self.url("alice")])
            .lines()
            .filter_map(|l| l.split_once('\t').map(|(_, r)| r.to_owned()))
            .filter(|r| r.starts_with(prefix) && !r.ends_with("^{}"))
            .collect()
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        // SIGTERM to the group: Apache stops its workers and exits. A SIGKILL of the parent
        // alone would leave the workers running, orphaned, holding the port.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-TERM", "--", &group])
            .stderr(Stdio::null())
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

/// The server with the rules on main, pushed by alice (a branch push: the guard passes it).
fn served() -> Apache {
    let server = Apache::start();
    let seed = server.dir.path().join("seed");
    std::fs::create_dir_all(seed.join("deployments")).expect("mkdir");
    git_ok(&seed, &["init", "-q", "-b", "main"]);
    git_ok(&seed, &["config", "user.email", "alice@example.com"]);
    git_ok(&seed, &["config", "user.name", "alice"]);
    git_ok(&seed, &["remote", "add", "origin", &server.url("alice")]);
    std::fs::write(seed.join("deployments/svc.yaml"), DEPLOYMENT).expect("write");
    std::fs::write(seed.join("atmos.yaml"), ATMOS_YAML).expect("write");
    git_ok(&seed, &["add", "-A"]);
    git_ok(&seed, &["commit", "-q", "-m", "rules"]);
    git_ok(&seed, &["push", "-q", "origin", "HEAD:main"]);
    server
}

fn atmos(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = atmos_cmd(dir);
    cmd.args(args).env_remove("ATMOS_ACTOR");
    cmd
}

/// Run atmos in `dir` to its end.
fn run_atmos(dir: &Path, args: &[&str]) -> Run {
    atmos(dir, args).output().expect("atmos").into()
}

#[test]
fn honest_rollouts_from_two_clones_at_once_pass_the_guard_over_http() {
    let server = served();
    let one = server.clone("one", "alice", "alice@example.com");
    let two = server.clone("two", "alice", "alice@example.com");
    let a = Background::spawn(atmos(
        &one,
        &[
            "deployment",
            "rollout",
            "svc",
            "--target",
            "dev",
            "--wait-for-lock",
            "--force",
        ],
    ));
    let b = Background::spawn(atmos(
        &two,
        &[
            "deployment",
            "rollout",
            "svc",
            "--target",
            "dev",
            "--wait-for-lock",
            "--force",
        ],
    ));
    a.finish().code(0);
    b.finish().code(0);
    // Two runs: two intents and two outcomes on the server, every one accepted by the guard.
    let tags = server.refs("refs/tags/atmos/deployments/svc/dev/api/");
    assert_eq!(tags.len(), 4, "{tags:#?}");
    // alice promotes to staging (a deployer there).
    let run = run_atmos(
        &one,
        &[
            "deployment",
            "rollout",
            "svc",
            "--target",
            "staging",
            "--promote-from",
            "dev",
        ],
    );
    run.code(0);
    let check = server.clone("check", "alice", "alice@example.com");
    let run = run_atmos(&check, &["deployment", "verify", "svc"]);
    run.code(0);
}

#[test]
fn a_non_deployer_a_borrowed_name_and_a_hand_pushed_state_ref_are_refused_over_http() {
    let server = served();
    let alice = server.clone("alice", "alice", "alice@example.com");
    let run = run_atmos(&alice, &["deployment", "rollout", "svc", "--target", "dev"]);
    run.code(0);
    let before = server.refs("refs/");

    // carol is no deployer of staging. Her client refuses her; so she makes her clone's
    // trusted ref say she releases, rolls out offline, and pushes the records by hand: the
    // server judges by its own rules, refuses, and tells her why.
    let carol = server.clone("carol", "carol", "carol@example.com");
    std::fs::write(
        carol.join("atmos.yaml"),
        ATMOS_YAML.replace(
            "[alice@example.com]",
            "[alice@example.com, carol@example.com]",
        ),
    )
    .expect("write");
    git_ok(&carol, &["commit", "-q", "-am", "carol releases"]);
    git_ok(&carol, &["update-ref", "refs/remotes/origin/main", "HEAD"]);
    git_ok(
        &carol,
        &[
            "fetch",
            "-q",
            "origin",
            "+refs/atmos/*:refs/atmos/*",
            "+refs/tags/atmos/*:refs/tags/atmos/*",
        ],
    );
    let run = run_atmos(
        &carol,
        &[
            "deployment",
            "rollout",
            "svc",
            "--target",
            "staging",
            "--promote-from",
            "dev",
            "--offline",
        ],
    );
    run.code(0);
    let push = git(
        &carol,
        &[
            "push",
            "--atomic",
            "origin",
            "refs/atmos/*:refs/atmos/*",
            "refs/tags/atmos/*:refs/tags/atmos/*",
        ],
    );
    assert_ne!(push.code, 0, "{}", push.stderr);
    assert!(
        push.stderr.contains("remote:")
            && push
                .stderr
                .contains("carol@example.com may not deploy to staging: deployers are release"),
        "{}",
        push.stderr
    );

    // carol writes her record in alice's name (unsigned) and pushes it as carol.
    let borrowed = server.clone("borrowed", "carol", "alice@example.com");
    let run = run_atmos(
        &borrowed,
        &[
            "deployment",
            "rollout",
            "svc",
            "--target",
            "staging",
            "--promote-from",
            "dev",
        ],
    );
    assert_ne!(run.code, 0, "{}", run.stdout);
    run.stderr_has(&[
        "written by alice@example.com, but pushed by carol@example.com (REMOTE_USER=carol)",
    ]);

    // A state ref moved by hand over HTTP: refused, with the guard's reason shown by git.
    let head = git_ok(&carol, &["rev-parse", "HEAD"]);
    let push = git(
        &carol,
        &[
            "push",
            "origin",
            &format!("{head}:refs/atmos/deployments/svc/staging/api"),
        ],
    );
    assert_ne!(push.code, 0, "{}", push.stderr);
    assert!(
        push.stderr.contains("remote:")
            && push
                .stderr
                .contains("refs/atmos/deployments/svc/staging/api"),
        "{}",
        push.stderr
    );
    assert_eq!(
        server.refs("refs/"),
        before,
        "a refused push changed the server"
    );
}
