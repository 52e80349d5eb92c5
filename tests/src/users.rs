//! Real users and groups for tests, created with a unique prefix (`useradd`, `groupadd`) and
//! removed when dropped, also when the test fails. Checks are made by processes running as
//! those users (`setpriv` with their groups).

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A set of users and groups that exist while this value lives.
#[derive(Debug)]
pub struct Accounts {
    prefix: String,
    users: Vec<String>,
    groups: Vec<String>,
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Accounts {
    /// A new, empty set; names get a prefix unique to this process and call.
    pub fn new() -> Accounts {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        Accounts {
            prefix: format!("sk{}x{n}", std::process::id() % 100_000),
            users: Vec::new(),
            groups: Vec::new(),
        }
    }

    /// The real name of the account called `name` in this set.
    pub fn name(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }

    /// Creates a group.
    pub fn group(&mut self, name: &str) -> String {
        let real = self.name(name);
        run("groupadd", &[&real]);
        self.groups.push(real.clone());
        real
    }

    /// Creates a user (its own primary group) belonging to `groups` (names in this set).
    pub fn user(&mut self, name: &str, groups: &[&str]) -> String {
        let real = self.name(name);
        let groups: Vec<String> = groups.iter().map(|g| self.name(g)).collect();
        let mut args = vec!["-M", "-U", "-s", "/bin/sh"];
        let joined = groups.join(",");
        if !groups.is_empty() {
            args.push("-G");
            args.push(&joined);
        }
        args.push(&real);
        run("useradd", &args);
        self.users.push(real.clone());
        real
    }

    /// The sales department of the example policy: groups `commercial` and `dsi`, the
    /// assistant `adjoint` and members `alice` and `bob` (in `commercial`), outsider `eve`.
    pub fn department() -> Accounts {
        let mut a = Accounts::new();
        a.group("commercial");
        a.group("dsi");
        a.user("adjoint", &["commercial"]);
        a.user("alice", &["commercial"]);
        a.user("bob", &["commercial"]);
        a.user("eve", &[]);
        a
    }

    /// The uid of a user of this set.
    pub fn uid(&self, name: &str) -> u32 {
        nix::unistd::User::from_name(&self.name(name))
            .unwrap()
            .expect("user exists")
            .uid
            .as_raw()
    }

    /// Runs `sh -c script` as the user `name` (with their groups); returns (success, output).
    pub fn sh_as(&self, name: &str, script: &str) -> (bool, String) {
        let real = self.name(name);
        let u = nix::unistd::User::from_name(&real)
            .unwrap()
            .expect("user exists");
        let out = Command::new("setpriv")
            .arg(format!("--reuid={}", u.uid))
            .arg(format!("--regid={}", u.gid))
            .arg("--init-groups")
            .args(["sh", "-c", script])
            .stdin(Stdio::null())
            .output()
            .expect("setpriv");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

impl Default for Accounts {
    fn default() -> Self {
        Accounts::new()
    }
}

impl Drop for Accounts {
    fn drop(&mut self) {
        for u in &self.users {
            let _ = Command::new("userdel")
                .arg(u)
                .stderr(Stdio::null())
                .status();
        }
        for g in &self.groups {
            let _ = Command::new("groupdel")
                .arg(g)
                .stderr(Stdio::null())
                .status();
        }
    }
}
