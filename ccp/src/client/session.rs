//! The signed-in session of the `ccp` client: a small JSON file in the user's
//! configuration directory (`$XDG_CONFIG_HOME/ccp/session.json`, else
//! `~/.config/ccp/session.json`; `--session` or `CCP_SESSION` name another),
//! readable by its owner only, replaced atomically.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Who the session belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    /// A person signed in through an identity provider; refreshable.
    Person,
    /// A machine credential; not refreshable (sign in again with its secret).
    Machine,
}

/// The stored session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionFile {
    /// The gateway the session was obtained from.
    pub gateway: String,
    /// Person or machine.
    pub kind: SessionKind,
    /// `person:<uuid>` or `credential:<uuid>`.
    pub principal: String,
    /// `profiles/<uuid>`; empty until the person creates a profile.
    pub profile: String,
    /// The BN9 a machine credential acts for.
    #[serde(default)]
    pub business: String,
    /// The access token sent as `authorization: Bearer …`.
    pub access_token: String,
    /// When the access token expires.
    pub access_expire_time: DateTime<Utc>,
    /// The refresh token (people only).
    #[serde(default)]
    pub refresh_token: String,
    /// When the refresh token expires.
    #[serde(default)]
    pub refresh_expire_time: Option<DateTime<Utc>>,
    /// The person's preferred language (`en`, `fr`) as their profile last said: the language
    /// human output is printed in when `--language` is not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// Returns the default session file: `session.json` in the user's
/// configuration directory for ccp (`$XDG_CONFIG_HOME/ccp`, else
/// `~/.config/ccp` on Linux), else `./.ccp-session.json`.
pub fn default_path() -> PathBuf {
    directories::ProjectDirs::from("", "", "ccp").map_or_else(
        || PathBuf::from(".ccp-session.json"),
        |dirs| dirs.config_dir().join("session.json"),
    )
}

/// Reads the session at `path`; None when there is none.
pub fn load(path: &Path) -> anyhow::Result<Option<SessionFile>> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let session = serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "the session file {} is damaged; run `ccp login` again",
                    path.display()
                )
            })?;
            Ok(Some(session))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("read {}", path.display())),
    }
}

/// Writes the session to `path` (owner-only permissions, atomic replace).
pub fn save(path: &Path, session: &SessionFile) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec_pretty(session)?;
    crate::private_file::write_atomic(path, &bytes)
}

/// Deletes the session file; Ok when there was none.
pub fn delete(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err).with_context(|| format!("delete {}", path.display())),
    }
}

/// Writes a secret to `path`, readable by its owner only.
pub fn save_secret(path: &Path, secret: &str) -> anyhow::Result<()> {
    crate::private_file::write_atomic(path, format!("{secret}\n").as_bytes())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_saved_session_reads_back_and_is_private() {
        let dir = std::env::temp_dir().join(format!("ccp-session-{}", uuid::Uuid::new_v4()));
        let path = dir.join("nested").join("session.json");
        assert!(load(&path).unwrap().is_none());
        let session = SessionFile {
            gateway: "http://127.0.0.1:50050".into(),
            kind: SessionKind::Person,
            principal: "person:0".into(),
            profile: String::new(),
            business: String::new(),
            access_token: "a".into(),
            access_expire_time: Utc::now(),
            refresh_token: "r".into(),
            refresh_expire_time: None,
            language: Some("fr".into()),
        };
        save(&path, &session).unwrap();
        let back = load(&path).unwrap().unwrap();
        assert_eq!(back.principal, "person:0");
        assert_eq!(back.language.as_deref(), Some("fr"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "group/other must not read the session");
        }
        delete(&path).unwrap();
        delete(&path).unwrap();
        assert!(load(&path).unwrap().is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
