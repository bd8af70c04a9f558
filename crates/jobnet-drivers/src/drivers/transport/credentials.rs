//! The credentials file: device logins, kept out of topology files (which refer to an entry by
//! name with `credentials: NAME`).
//!
//! ```yaml
//! fabric-admin:
//!   username: netops
//!   password: "..."                         # or:
//! gw-admin:
//!   username: admin
//!   key_file: /etc/jobnet/keys/id_ed25519   # an OpenSSH private key without passphrase
//! ```
//!
//! The file must not be readable by group or others (mode 0600 or stricter): jobnet refuses it
//! otherwise. Secrets never appear in messages, logs or `Debug` output.

use crate::base::diag::{Diagnostics, Loc};
use crate::base::yaml::{self, Kind};
use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// How to log in.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    Password(String),
    KeyFile(PathBuf),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Password(_) => f.write_str("Password(<redacted>)"),
            Auth::KeyFile(p) => write!(f, "KeyFile({})", p.display()),
        }
    }
}

/// One entry.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    pub username: String,
    pub auth: Auth,
    /// Answer to the privileged-mode (`enable`) password prompt, when a device asks.
    pub enable_password: Option<String>,
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = match &self.auth {
            Auth::Password(_) => "password <redacted>".to_string(),
            Auth::KeyFile(p) => format!("key file {}", p.display()),
        };
        write!(f, "Login({}, {how})", self.username)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("cannot read credentials file {path}: {source}; check the credentials file's path")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("credentials file {path} is readable by group or others (mode {mode:04o}); run `chmod 600 {path}`")]
    Insecure { path: String, mode: u32 },
    #[error("credentials file {path} is a directory (or not a regular file), not the YAML file of device logins; name the file itself")]
    NotAFile { path: String },
    #[error("invalid credentials file:\n{0}")]
    Invalid(String),
    #[error("no entry `{name}` in credentials file {path} (device {device}); add it")]
    Missing {
        name: String,
        path: String,
        device: String,
    },
}

impl crate::base::hint::Hinted for CredentialsError {
    fn hints(&self) -> Vec<crate::base::hint::Hint> {
        match self {
            CredentialsError::Io { .. } | CredentialsError::NotAFile { .. } => {
                vec![crate::base::hint::Hint::CredentialsPath]
            }
            CredentialsError::Insecure { .. }
            | CredentialsError::Invalid(_)
            | CredentialsError::Missing { .. } => vec![],
        }
    }
}

/// The parsed file.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    pub path: String,
    entries: BTreeMap<String, Login>,
}

impl Credentials {
    pub fn load(path: &Path) -> Result<Self, CredentialsError> {
        let p = path.display().to_string();
        let io = |source| CredentialsError::Io {
            path: p.clone(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        if !meta.is_file() {
            return Err(CredentialsError::NotAFile { path: p });
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(CredentialsError::Insecure { path: p, mode });
        }
        let text = crate::base::limits::read_text(path, crate::base::limits::CREDENTIALS)
            .map_err(|e| io(e.into_io()))?;
        let c = Self::parse(&text, &p)?;
        // Keys are refused as OpenSSH refuses them: readable by group or others.
        for login in c.entries.values() {
            if let Auth::KeyFile(k) = &login.auth {
                if let Ok(m) = std::fs::metadata(k) {
                    let mode = m.permissions().mode() & 0o777;
                    if mode & 0o077 != 0 {
                        return Err(CredentialsError::Insecure {
                            path: k.display().to_string(),
                            mode,
                        });
                    }
                }
            }
        }
        Ok(c)
    }

    pub fn parse(text: &str, path: &str) -> Result<Self, CredentialsError> {
        let mut d = Diagnostics::new(path);
        let mut entries = BTreeMap::new();
        match yaml::parse_all_errors(text) {
            Err(errors) => {
                for e in errors {
                    d.error(e.loc, e.message, "fix the YAML");
                }
            }
            Ok(None) => {}
            Ok(Some(root)) => match &root.kind {
                Kind::Map(pairs) => {
                    for (k, v) in pairs {
                        let name = k.as_str().unwrap_or_default().to_string();
                        if let Some(login) = entry(&name, v, &mut d) {
                            entries.insert(name, login);
                        }
                    }
                }
                _ if root.is_null() => {}
                _ => d.error(
                    Loc { line: 1, col: 1 },
                    "the credentials file must be a mapping of entry names",
                    "see docs/operations.md",
                ),
            },
        }
        if d.has_errors() {
            return Err(CredentialsError::Invalid(crate::base::diag::lines(
                &d.sorted(),
            )));
        }
        Ok(Credentials {
            path: path.to_string(),
            entries,
        })
    }

    /// The login for `name`, used for `device`.
    pub fn get(&self, name: &str, device: &str) -> Result<&Login, CredentialsError> {
        self.entries
            .get(name)
            .ok_or_else(|| CredentialsError::Missing {
                name: name.into(),
                path: self.path.clone(),
                device: device.into(),
            })
    }
}

/// One entry `name`; `None` (with the error recorded) when it has no usable way to log in.
fn entry(name: &str, v: &yaml::Node, d: &mut Diagnostics) -> Option<Login> {
    let Some(fields) = v.pairs() else {
        d.error(
            v.loc,
            format!("entry `{name}` must be a mapping"),
            "give username and password or key_file",
        );
        return None;
    };
    let get = |key: &str| yaml::get(fields, key);
    const KEYS: &[&str] = &["username", "password", "key_file", "enable_password"];
    // Name the key, never its value: it may be a secret.
    for (key, loc) in yaml::unknown_keys(fields, KEYS) {
        d.error(
            loc,
            format!("unknown key `{key}` in entry `{name}`"),
            "allowed: username, password, key_file, enable_password",
        );
    }
    let username = get("username")
        .and_then(|n| n.as_str())
        .unwrap_or_default()
        .to_string();
    if username.is_empty() {
        d.error(
            v.loc,
            format!("entry `{name}` lacks `username`"),
            "add `username: ...`",
        );
    }
    let auth = match (
        get("password").and_then(|n| n.as_str()),
        get("key_file").and_then(|n| n.as_str()),
    ) {
        (Some(p), None) if !p.is_empty() => Auth::Password(p.to_string()),
        (None, Some(k)) if k.starts_with('/') => Auth::KeyFile(PathBuf::from(k)),
        _ => {
            d.error(v.loc, format!("entry `{name}` needs exactly one of `password` or `key_file` (an absolute path)"), "see docs/operations.md");
            return None;
        }
    };
    let enable_password = get("enable_password")
        .and_then(|n| n.as_str())
        .map(str::to_string);
    Some(Login {
        username,
        auth,
        enable_password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_never_shows_secrets() {
        let c = Credentials::parse(
            "a: {username: u, password: s3cret}\nb: {username: v, key_file: /k}\n",
            "c.yaml",
        )
        .unwrap();
        assert_eq!(
            c.get("a", "sw1").unwrap().auth,
            Auth::Password("s3cret".into())
        );
        assert!(!format!("{:?}", c).contains("s3cret"));
        assert_eq!(
            format!("{:?}", Auth::Password("s3cret".into())),
            "Password(<redacted>)"
        );
        assert!(c
            .get("zzz", "sw1")
            .unwrap_err()
            .to_string()
            .contains("no entry `zzz`"));
        let e = Credentials::parse(
            "a: {username: u, password: s3cret, pasword: typo}\n",
            "c.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("unknown key `pasword`") && !e.contains("typo") && !e.contains("s3cret"),
            "{e}"
        );
        assert!(Credentials::parse("a: {username: u}\n", "c.yaml").is_err());
        assert!(
            Credentials::parse("a: {username: u, password: x, key_file: /k}\n", "c.yaml").is_err()
        );
    }

    #[test]
    fn refuses_readable_files() {
        let p = std::env::temp_dir().join(format!("jobnet-cred-{}.yaml", std::process::id()));
        std::fs::write(&p, "a: {username: u, password: p}\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            Credentials::load(&p),
            Err(CredentialsError::Insecure { mode: 0o644, .. })
        ));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Credentials::load(&p).is_ok());
        let e = Credentials::load(p.parent().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("is a directory"), "{e}");
        assert!(!e.contains("chmod"), "{e}");
        // A key readable by others is refused, as OpenSSH refuses it.
        let key = p.with_extension("key");
        std::fs::write(&key, "key").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(
            &p,
            format!("a: {{username: u, key_file: {}}}\n", key.display()),
        )
        .unwrap();
        let e = Credentials::load(&p).unwrap_err().to_string();
        assert!(
            e.contains(&format!("{} is readable by group or others", key.display())),
            "{e}"
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Credentials::load(&p).is_ok());
        let _ = std::fs::remove_file(&key);
        let _ = std::fs::remove_file(p);
    }
}
