//! Where a repository is, as a user names it: a local path, `s3://bucket/prefix?endpoint=…`
//! or `sftp://user@host:port/path`; and the credentials a remote one needs, from the
//! environment or from a root-only file. Parsing only: opening is `remote.rs`'s.

use crate::error::{Error, Result};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A repository's location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local directory.
    Local(PathBuf),
    /// A bucket (and prefix) on an S3-compatible object store.
    S3(S3Location),
    /// A directory on an SFTP server.
    Sftp(SftpLocation),
}

/// `s3://bucket/prefix?endpoint=URL&region=NAME&style=path|virtual`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// The bucket.
    pub bucket: String,
    /// The prefix inside it (no leading or trailing slash; may be empty).
    pub prefix: String,
    /// The store's address (`None`: AWS).
    pub endpoint: Option<String>,
    /// The region (`us-east-1` unless given; Garage's default is `garage`).
    pub region: String,
    /// Bucket in the host name (AWS) instead of the path (Garage, MinIO, Ceph).
    pub virtual_host: bool,
}

/// `sftp://[user@]host[:port]/path?known_hosts=strict|add|accept`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftpLocation {
    /// The SSH user (`None`: ssh's default).
    pub user: Option<String>,
    /// The host.
    pub host: String,
    /// The port.
    pub port: u16,
    /// The directory on the server (absolute).
    pub path: String,
    /// How the server's host key is checked: `strict` (it must be in known_hosts: the
    /// default), `add` (trust on first use) or `accept` (never checked: tests only).
    pub known_hosts: String,
}

impl Location {
    /// Whether the repository is on another machine (then it must be encrypted).
    pub fn is_remote(&self) -> bool {
        !matches!(self, Location::Local(_))
    }

    /// The local directory, if local.
    pub fn as_local(&self) -> Option<&Path> {
        match self {
            Location::Local(p) => Some(p),
            _ => None,
        }
    }
}

impl Location {
    /// The location without store options: the prefix of every file's name in messages.
    pub fn base(&self) -> String {
        match self {
            Location::Local(p) => p.display().to_string(),
            Location::S3(s) if s.prefix.is_empty() => format!("s3://{}", s.bucket),
            Location::S3(s) => format!("s3://{}/{}", s.bucket, s.prefix),
            Location::Sftp(s) => format!(
                "sftp://{}{}:{}{}",
                s.user
                    .as_deref()
                    .map(|u| format!("{u}@"))
                    .unwrap_or_default(),
                s.host,
                s.port,
                s.path
            ),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base())?;
        match self {
            Location::S3(S3Location {
                endpoint: Some(e),
                region,
                ..
            }) => write!(f, "?endpoint={e}&region={region}"),
            _ => Ok(()),
        }
    }
}

fn bad(url: &str, why: &str) -> Error {
    Error::Invalid(format!("repository {url:?}: {why}"))
}

/// Splits `a=b&c=d` into pairs; refuses keys not in `known`.
fn query<'a>(url: &str, q: &'a str, known: &[&str]) -> Result<Vec<(&'a str, &'a str)>> {
    let mut out = Vec::new();
    for part in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| bad(url, &format!("{part:?} is not NAME=VALUE")))?;
        if !known.contains(&k) {
            return Err(bad(
                url,
                &format!("unknown option {k:?} (known: {})", known.join(", ")),
            ));
        }
        out.push((k, v));
    }
    Ok(out)
}

impl FromStr for Location {
    type Err = Error;

    fn from_str(url: &str) -> Result<Location> {
        if let Some(rest) = url.strip_prefix("s3://") {
            let (path, q) = rest.split_once('?').unwrap_or((rest, ""));
            let path = path.trim_matches('/');
            let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
            if bucket.is_empty() {
                return Err(bad(url, "no bucket: write s3://BUCKET/PREFIX"));
            }
            let mut s3 = S3Location {
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
                endpoint: None,
                region: "us-east-1".into(),
                virtual_host: false,
            };
            let mut style = None;
            for (k, v) in query(url, q, &["endpoint", "region", "style"])? {
                match k {
                    "endpoint" => {
                        if !(v.starts_with("http://") || v.starts_with("https://")) {
                            return Err(bad(url, "endpoint must start with http:// or https://"));
                        }
                        s3.endpoint = Some(v.trim_end_matches('/').to_string());
                    }
                    "region" => s3.region = v.to_string(),
                    _ => style = Some(v),
                }
            }
            s3.virtual_host = match style {
                Some("virtual") => true,
                Some("path") => false,
                Some(o) => return Err(bad(url, &format!("style {o:?}: path or virtual"))),
                // AWS names buckets in the host; self-hosted stores in the path.
                None => s3.endpoint.is_none(),
            };
            return Ok(Location::S3(s3));
        }
        if let Some(rest) = url.strip_prefix("sftp://") {
            let (main, q) = rest.split_once('?').unwrap_or((rest, ""));
            let (authority, path) = match main.find('/') {
                Some(i) => (&main[..i], &main[i..]),
                None => return Err(bad(url, "no path: write sftp://USER@HOST:PORT/PATH")),
            };
            let (user, hostport) = match authority.rsplit_once('@') {
                Some((u, _)) if u.contains(':') => {
                    return Err(bad(
                        "sftp://…",
                        "passwords in addresses are not accepted: log in with a key (SHAREKEEP_SSH_IDENTITY)",
                    ))
                }
                Some((u, h)) => (Some(u.to_string()), h),
                None => (None, authority),
            };
            let (host, port) = match hostport.rsplit_once(':') {
                Some((h, p)) => (
                    h,
                    p.parse::<u16>()
                        .map_err(|_| bad(url, &format!("port {p:?} is not a number")))?,
                ),
                None => (hostport, 22),
            };
            if host.is_empty() {
                return Err(bad(url, "no host"));
            }
            let path = path.trim_end_matches('/');
            if path.is_empty() || path.split('/').any(|c| c == "..") {
                return Err(bad(url, "give the repository's folder, without `..`"));
            }
            let mut known_hosts = "strict".to_string();
            for (_, v) in query(url, q, &["known_hosts"])? {
                if !["strict", "add", "accept"].contains(&v) {
                    return Err(bad(url, "known_hosts is strict, add or accept"));
                }
                known_hosts = v.to_string();
            }
            return Ok(Location::Sftp(SftpLocation {
                user,
                host: host.to_string(),
                port,
                path: path.to_string(),
                known_hosts,
            }));
        }
        if let Some((scheme, _)) = url.split_once("://") {
            return Err(bad(
                url,
                &format!("{scheme}:// is not a supported store (s3://, sftp:// or a local path)"),
            ));
        }
        if url.is_empty() {
            return Err(bad(url, "empty"));
        }
        Ok(Location::Local(PathBuf::from(url)))
    }
}

/// A repository address as it may be shown (logs, `status`, reports): parsed and printed
/// again, so nothing but the location itself is shown.
pub fn redact_url(url: &str) -> String {
    url.parse::<Location>()
        .map(|l| l.to_string())
        .unwrap_or_else(|_| "<an address that does not parse>".into())
}

/// Refuses a file of secrets (`what`: "credentials", "key file") that others than its owner
/// may read, or that is not ours: it holds keys to every backup.
#[cfg(windows)]
pub fn require_private(path: &Path, what: &str) -> Result<()> {
    match crate::platform::open_to_others(path).map_err(|e| Error::io(path, e))? {
        None => Ok(()),
        Some(why) => Err(Error::Invalid(format!(
            "{what} {}: must be private to its owner; it {why}: {}",
            path.display(),
            crate::platform::private_hint(path, false)
        ))),
    }
}

/// Refuses a file of secrets (`what`: "credentials", "key file") that others than its owner
/// may read, or that is not ours: it holds keys to every backup.
#[cfg(unix)]
pub fn require_private(path: &Path, what: &str) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let me = rustix::process::geteuid().as_raw();
    if meta.mode() & 0o077 != 0 || meta.uid() != me {
        return Err(Error::Invalid(format!(
            "{what} {}: must be private to their owner (owner uid {}, mode {:04o}; want uid {me}, mode 0600): `chown {me} {} && chmod 600 {}`",
            path.display(),
            meta.uid(),
            meta.mode() & 0o7777,
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

/// What a remote repository needs to be reached: S3 keys, the SSH identity. Never shown.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// `AWS_ACCESS_KEY_ID`.
    pub s3_access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub s3_secret_access_key: Option<String>,
    /// `AWS_SESSION_TOKEN`.
    pub s3_session_token: Option<String>,
    /// `SHAREKEEP_SSH_IDENTITY`: the private key for SFTP (else ssh's own defaults).
    pub ssh_identity: Option<PathBuf>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("s3_access_key_id", &self.s3_access_key_id.is_some())
            .field("ssh_identity", &self.ssh_identity)
            .finish_non_exhaustive()
    }
}

const NAMES: [&str; 4] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "SHAREKEEP_SSH_IDENTITY",
];

impl Credentials {
    fn set(&mut self, name: &str, value: String) {
        match name {
            "AWS_ACCESS_KEY_ID" => self.s3_access_key_id = Some(value),
            "AWS_SECRET_ACCESS_KEY" => self.s3_secret_access_key = Some(value),
            "AWS_SESSION_TOKEN" => self.s3_session_token = Some(value),
            _ => self.ssh_identity = Some(PathBuf::from(value)),
        }
    }

    /// From the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, `SHAREKEEP_SSH_IDENTITY`).
    pub fn from_env() -> Credentials {
        let mut c = Credentials::default();
        for name in NAMES {
            if let Ok(v) = std::env::var(name) {
                if !v.is_empty() {
                    c.set(name, v);
                }
            }
        }
        c
    }

    /// From a file of `NAME=VALUE` lines (the same names as the environment; `#` comments),
    /// which must be private to its owner (and owned by root when read by root): it holds
    /// keys to every backup.
    pub fn from_file(path: &Path) -> Result<Credentials> {
        require_private(path, "credentials")?;
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut c = Credentials::default();
        let mut problems = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_once('=') {
                Some((k, v)) if NAMES.contains(&k.trim()) => {
                    let v = v.trim().trim_matches('"').to_string();
                    c.set(k.trim(), v);
                }
                Some((k, _)) => problems.push(format!(
                    "line {}: unknown name {:?} (known: {})",
                    i + 1,
                    k.trim(),
                    NAMES.join(", ")
                )),
                None => problems.push(format!("line {}: not NAME=VALUE", i + 1)),
            }
        }
        if !problems.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: {}",
                path.display(),
                problems.join("; ")
            )));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_locations() {
        let table: &[(&str, Location)] = &[
            ("/srv/repo", Location::Local("/srv/repo".into())),
            (
                "s3://bk/sales/main?endpoint=http://127.0.0.1:3900&region=garage",
                Location::S3(S3Location {
                    bucket: "bk".into(),
                    prefix: "sales/main".into(),
                    endpoint: Some("http://127.0.0.1:3900".into()),
                    region: "garage".into(),
                    virtual_host: false,
                }),
            ),
            (
                "s3://bk",
                Location::S3(S3Location {
                    bucket: "bk".into(),
                    prefix: String::new(),
                    endpoint: None,
                    region: "us-east-1".into(),
                    virtual_host: true,
                }),
            ),
            (
                "sftp://backup@nas:2222/volume1/sales",
                Location::Sftp(SftpLocation {
                    user: Some("backup".into()),
                    host: "nas".into(),
                    port: 2222,
                    path: "/volume1/sales".into(),
                    known_hosts: "strict".into(),
                }),
            ),
            (
                "sftp://nas/r/?known_hosts=accept",
                Location::Sftp(SftpLocation {
                    user: None,
                    host: "nas".into(),
                    port: 22,
                    path: "/r".into(),
                    known_hosts: "accept".into(),
                }),
            ),
        ];
        for (url, want) in table {
            assert_eq!(&url.parse::<Location>().unwrap(), want, "{url}");
        }
        for (url, why) in [
            ("s3://", "no bucket"),
            ("s3://b?endpoint=127.0.0.1", "http://"),
            ("s3://b?secret=x", "unknown option"),
            ("sftp://nas", "no path"),
            ("sftp://nas:x/r", "not a number"),
            ("sftp://nas/../etc", "without `..`"),
            ("ftp://nas/r", "not a supported store"),
            (
                "sftp://me:secret@nas/r",
                "passwords in addresses are not accepted",
            ),
        ] {
            let err = url.parse::<Location>().unwrap_err().to_string();
            assert!(err.contains(why), "{url}: {err}");
        }
        assert_eq!(
            "s3://bk/p?endpoint=http://h:1&region=r"
                .parse::<Location>()
                .unwrap()
                .to_string(),
            "s3://bk/p?endpoint=http://h:1&region=r"
        );
    }

    #[test]
    #[cfg(unix)]
    fn a_credentials_file_must_be_private_and_well_formed() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("creds");
        std::fs::write(
            &p,
            "# Garage\nAWS_ACCESS_KEY_ID=GK123\nAWS_SECRET_ACCESS_KEY=\"s3cr3t\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Credentials::from_file(&p).unwrap_err().to_string();
        assert!(err.contains("private"), "{err}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = Credentials::from_file(&p).unwrap();
        assert_eq!(c.s3_access_key_id.as_deref(), Some("GK123"));
        assert_eq!(c.s3_secret_access_key.as_deref(), Some("s3cr3t"));
        assert!(!format!("{c:?}").contains("s3cr3t"), "never shown");
        std::fs::write(&p, "AWS_SECRET=1\nnonsense\n").unwrap();
        let err = Credentials::from_file(&p).unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("line 2"), "{err}");
    }
}
