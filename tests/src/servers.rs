//! Real servers on loopback for the remote-repository tests: a single-node Garage (a
//! distributed S3-compatible object store, as an IT provider runs it) and OpenSSH's sshd
//! serving SFTP. Each runs from a scratch folder on free 127.0.0.1 ports and is killed when
//! dropped. `.ci/run` installs them (`garage` with cargo when missing, Debian's
//! openssh-server).

use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn wait_for_port(port: u16, what: &str, child: &mut Child, log: Option<&Path>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(e) = child.stderr.as_mut() {
                let _ = e.read_to_string(&mut err);
            }
            if let Some(l) = log {
                err += &fs::read_to_string(l).unwrap_or_default();
            }
            panic!("{what} exited ({status}) before listening on {port}:\n{err}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} not listening on {port} after 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn find(program: &str, extra: &[&str]) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(extra.iter().map(PathBuf::from));
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{program} is not installed: `bash .ci/run` installs it (see its remote-stores step)")
        })
}

/// A single-node Garage with one bucket and one key allowed on it.
#[derive(Debug)]
pub struct Garage {
    child: Option<Child>,
    bin: PathBuf,
    config: PathBuf,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The S3 API port.
    pub port: u16,
    /// The bucket.
    pub bucket: String,
    /// The key's id.
    pub key_id: String,
    /// The key's secret.
    pub secret: String,
    /// The server's log (one INFO line per S3 request).
    pub log: PathBuf,
}

impl Garage {
    /// Starts Garage in `dir` (created), lays out the node, creates `bucket` and a key.
    pub fn start(dir: &Path, bucket: &str) -> Garage {
        let bin = find("garage", &[]);
        fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let rpc = free_port();
        let mut secret = [0u8; 32];
        getrandom::getrandom(&mut secret).unwrap();
        let config = dir.join("garage.toml");
        fs::write(
            &config,
            format!(
                r#"metadata_dir = "{d}/meta"
data_dir = "{d}/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:{port}"
root_domain = ".s3.garage.localhost"
"#,
                d = dir.display(),
                secret = hex::encode(secret),
            ),
        )
        .unwrap();
        let mut g = Garage {
            child: None,
            bin,
            config,
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            bucket: bucket.to_string(),
            key_id: String::new(),
            secret: String::new(),
            log: dir.join("garage.log"),
        };
        g.run_server();
        let node = g.cli(&["node", "id", "-q"]);
        let node = node.trim().split('@').next().unwrap().to_string();
        g.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &node]);
        g.cli(&["layout", "apply", "--version", "1"]);
        g.cli(&["bucket", "create", bucket]);
        let info = g.cli(&["key", "create", "sharekeep-test"]);
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
                .unwrap_or_else(|| panic!("no {name} in garage's answer:\n{info}"))
        };
        g.key_id = field("Key ID:");
        g.secret = field("Secret key:");
        g.cli(&[
            "bucket", "allow", "--read", "--write", "--owner", bucket, "--key", &g.key_id,
        ]);
        g
    }

    fn run_server(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("garage's log");
        let mut child = Command::new(&self.bin)
            .arg("-c")
            .arg(&self.config)
            .arg("server")
            // Every S3 request is logged at INFO by the generic API server: the count of
            // requests (this Garage is built without its metrics endpoint).
            .env("RUST_LOG", "warn,garage_api_common=info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start garage");
        wait_for_port(self.port, "garage", &mut child, Some(&self.log));
        self.child = Some(child);
        // The RPC layer answers a little after the S3 port opens.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.try_cli(&["status"]).0 {
            assert!(Instant::now() < deadline, "garage status never answered");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn try_cli(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(&self.bin)
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run garage");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Runs `garage ARGS` against this node, asserting success; its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let (ok, text) = self.try_cli(args);
        assert!(ok, "garage {args:?} failed:\n{text}");
        text
    }

    /// The repository URL for `prefix` in the bucket.
    pub fn url(&self, prefix: &str) -> String {
        format!(
            "s3://{}/{prefix}?endpoint={}&region=garage",
            self.bucket, self.endpoint
        )
    }

    /// The environment a client needs.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), self.key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), self.secret.clone()),
        ]
    }

    /// Kills the server (SIGKILL: as a crash or a lost connection).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same ports and data.
    pub fn restart(&mut self) {
        self.kill();
        self.run_server();
    }

    /// The S3 requests the node has received so far (from its log).
    pub fn requests(&self) -> u64 {
        count_requests(&fs::read_to_string(&self.log).unwrap_or_default())
    }
}

/// S3 requests in a Garage log: its generic API server logs `ADDR METHOD /PATH` for each.
pub fn count_requests(log: &str) -> u64 {
    log.lines()
        .filter(|l| l.contains("garage_api_common::generic_server"))
        .filter(|l| {
            [" GET /", " PUT /", " POST /", " HEAD /", " DELETE /"]
                .iter()
                .any(|m| l.contains(m))
        })
        .count() as u64
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.kill();
    }
}

/// OpenSSH's sshd on a loopback port, letting the current user (root in CI) in with a
/// generated key, SFTP only.
#[derive(Debug)]
pub struct Sshd {
    child: Child,
    /// The port.
    pub port: u16,
    /// The client's private key.
    pub identity: PathBuf,
    /// The server's public host key line (for known_hosts).
    pub host_key: String,
}

impl Sshd {
    /// Starts sshd from `dir` (created).
    pub fn start(dir: &Path) -> Sshd {
        let sshd = find("sshd", &["/usr/sbin"]);
        fs::create_dir_all(dir).unwrap();
        let keygen = |path: &Path| {
            let st = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(path)
                .stdin(Stdio::null())
                .status()
                .expect("ssh-keygen");
            assert!(st.success());
        };
        let host = dir.join("host_key");
        let client = dir.join("client_key");
        keygen(&host);
        keygen(&client);
        fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
        let host_key = fs::read_to_string(dir.join("host_key.pub")).unwrap();
        let port = free_port();
        let config = dir.join("sshd_config");
        let user = whoami();
        fs::write(
            &config,
            format!(
                "ListenAddress 127.0.0.1\nPort {port}\nHostKey {host}\nAuthorizedKeysFile {keys}\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
                 PermitRootLogin prohibit-password\nAllowUsers {user}\nStrictModes no\nUsePAM no\n\
                 PidFile {pid}\nSubsystem sftp internal-sftp\nLogLevel ERROR\n",
                host = host.display(),
                keys = dir.join("authorized_keys").display(),
                pid = dir.join("sshd.pid").display(),
            ),
        )
        .unwrap();
        // Privilege separation needs its empty folder.
        let _ = fs::create_dir_all("/run/sshd");
        let mut child = Command::new(sshd)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sshd");
        wait_for_port(port, "sshd", &mut child, None);
        Sshd {
            child,
            port,
            identity: client,
            host_key,
        }
    }

    /// The repository URL for `path` on this server (host keys accepted without a check:
    /// the server was started a moment ago from a key made here).
    pub fn url(&self, path: &Path) -> String {
        format!(
            "sftp://{}@127.0.0.1:{}{}?known_hosts=accept",
            whoami(),
            self.port,
            path.display()
        )
    }

    /// The environment a client needs.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![(
            "SHAREKEEP_SSH_IDENTITY".into(),
            self.identity.display().to_string(),
        )]
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // `known_hosts=accept` recorded the throwaway host key: forget it.
        let _ = Command::new("ssh-keygen")
            .args(["-R", &format!("[127.0.0.1]:{}", self.port)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn whoami() -> String {
    let uid = rustix::process::geteuid().as_raw();
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| "root".into())
}

/// Samba's smbd on a free 127.0.0.1 port, with its own folders (under `dir/samba`), serving the
/// shares of an include file sharekeep writes; killed when dropped.
#[derive(Debug)]
pub struct Smbd {
    child: Option<Child>,
    /// The SMB port.
    pub port: u16,
    /// Its smb.conf (for `smbcontrol -s`, `testparm`, sharekeepd's `samba_conf`).
    pub conf: PathBuf,
}

impl Smbd {
    /// Starts smbd with the shares of `include`; each of `users` (system accounts) gets an
    /// SMB password, `password`.
    pub fn start(dir: &Path, include: &Path, users: &[String], password: &str) -> Smbd {
        let d = dir.join("samba");
        for sub in ["private", "state", "cache", "lock", "pid"] {
            fs::create_dir_all(d.join(sub)).unwrap();
        }
        let port = free_port();
        let s = |x: &str| d.join(x).display().to_string();
        let conf = d.join("smb.conf");
        fs::write(
            &conf,
            format!(
                "[global]\n   server role = standalone server\n   interfaces = 127.0.0.1\n   bind interfaces only = yes\n   smb ports = {port}\n   disable netbios = yes\n   private dir = {}\n   state directory = {}\n   cache directory = {}\n   lock directory = {}\n   pid directory = {}\n   ncalrpc dir = {}/ncalrpc\n   log file = {}/log.%m\n   passdb backend = tdbsam:{}/passdb.tdb\n   map to guest = never\n   load printers = no\n   printing = bsd\n   printcap name = /dev/null\n   disable spoolss = yes\n   include = {}\n",
                s("private"), s("state"), s("cache"), s("lock"), s("pid"), s("lock"), s("state"), s("private"), include.display()
            ),
        )
        .unwrap();
        for u in users {
            let mut child = Command::new("smbpasswd")
                .args(["-c", conf.to_str().unwrap(), "-a", "-s", u])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .expect("smbpasswd (apt-get install samba)");
            std::io::Write::write_all(
                child.stdin.as_mut().unwrap(),
                format!("{password}\n{password}\n").as_bytes(),
            )
            .unwrap();
            assert!(child.wait().unwrap().success(), "smbpasswd for {u}");
        }
        let out = d.join("smbd.out");
        let mut child = Command::new("smbd")
            .args([
                "--foreground",
                "--no-process-group",
                "-s",
                conf.to_str().unwrap(),
                "--debug-stdout",
                "-d",
                "0",
            ])
            .stdout(fs::File::create(&out).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("smbd (apt-get install samba)");
        wait_for_port(port, "smbd", &mut child, Some(&out));
        Smbd {
            child: Some(child),
            port,
            conf,
        }
    }

    /// Runs smbclient `commands` on `//127.0.0.1/share` as `user`; (success, output).
    /// smbclient reports some refusals only in its output: any `NT_STATUS_` is a failure.
    pub fn client(
        &self,
        share: &str,
        user: &str,
        password: &str,
        commands: &str,
    ) -> (bool, String) {
        let out = Command::new("smbclient")
            .arg(format!("//127.0.0.1/{share}"))
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                &format!("{user}%{password}"),
                "-c",
                commands,
            ])
            .stdin(Stdio::null())
            .output()
            .expect("smbclient (apt-get install smbclient)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let failed = !out.status.success() || text.contains("NT_STATUS_");
        (!failed, text)
    }

    /// Lists the server's shares as `user`: succeeds only if the credentials are good (the
    /// positive control of a refusal: the same login is accepted, only the share or the
    /// action is refused).
    pub fn login_ok(&self, user: &str, password: &str) -> bool {
        Command::new("smbclient")
            .args([
                "-L",
                "//127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                &format!("{user}%{password}"),
            ])
            .stdin(Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success())
    }
}

impl Drop for Smbd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The NT status smbclient reported, if any.
pub fn nt_status(out: &str) -> Option<&str> {
    let at = out.find("NT_STATUS_")?;
    let rest = &out[at..];
    Some(
        &rest[..rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len())],
    )
}
