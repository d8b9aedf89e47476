//! Where the running suite is: `ccp up` records its data directory and
//! endpoints in a per-user state file (`suite.json` in the user's state
//! directory for ccp — `$XDG_STATE_HOME/ccp`, else `~/.local/state/ccp` on
//! Linux; `CCP_STATE_DIR` names another), and the client commands read it to
//! find the gateway and the development issuer's key from any directory.
//! `ccp up` removes the file when it stops.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::settings::SuiteSettings;

/// The environment variable that names the state directory instead of the
/// per-user default.
pub const STATE_DIR_ENV: &str = "CCP_STATE_DIR";

/// What `ccp up` records about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuiteState {
    /// The data directory (absolute): SQLite files, the internal key and the
    /// development issuer's key.
    pub data_dir: PathBuf,
    /// The gateway's URL.
    pub gateway: String,
    /// The identity service's URL.
    pub identity: String,
    /// The accounts service's URL.
    pub accounts: String,
    /// The delegation service's URL.
    pub delegation: String,
    /// The notifications service's operator API (empty in a file of an older `ccp up`).
    #[serde(default)]
    pub notifications: String,
    /// The process id of `ccp up`.
    pub pid: u32,
}

/// Returns the state directory: `CCP_STATE_DIR`, else the user's state
/// directory for ccp (its local data directory where the platform has no
/// state directory); None when there is no home directory.
pub fn state_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(STATE_DIR_ENV).filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let dirs = directories::ProjectDirs::from("", "", "ccp")?;
    Some(
        dirs.state_dir()
            .unwrap_or_else(|| dirs.data_local_dir())
            .to_path_buf(),
    )
}

/// Returns the state file of the running suite, when there is a state directory.
pub fn state_file() -> Option<PathBuf> {
    state_dir().map(|dir| dir.join("suite.json"))
}

impl SuiteState {
    /// Records this state in the state file (owner-only, atomic); returns its path.
    pub fn record(&self) -> anyhow::Result<PathBuf> {
        let path =
            state_file().context("no home directory for the state file; set CCP_STATE_DIR")?;
        let bytes = serde_json::to_vec_pretty(self)?;
        crate::private_file::write_atomic(&path, &bytes)?;
        Ok(path)
    }

    /// Removes the state file when it still records this process's suite (a
    /// newer `ccp up` may have replaced it).
    pub fn forget(&self) {
        let Some(path) = state_file() else { return };
        if let Ok(Found::Running(current)) = read(&path)
            && current == *self
        {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// What the state file says.
#[derive(Debug, Clone)]
pub enum Found {
    /// A suite that is running (as far as this machine can tell).
    Running(SuiteState),
    /// A suite whose process is gone (killed without stopping).
    Stale(SuiteState),
}

fn read(path: &Path) -> anyhow::Result<Found> {
    let bytes = std::fs::read(path)?;
    let state: SuiteState = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is damaged; start `ccp up` again", path.display()))?;
    if process_is_gone(state.pid) {
        return Ok(Found::Stale(state));
    }
    Ok(Found::Running(state))
}

#[cfg(target_os = "linux")]
fn process_is_gone(pid: u32) -> bool {
    Path::new("/proc/self").exists() && !Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(not(target_os = "linux"))]
fn process_is_gone(_pid: u32) -> bool {
    false
}

/// Returns the running suite recorded in the state file; None when there
/// is no state file or its suite is no longer running.
pub fn running() -> anyhow::Result<Option<SuiteState>> {
    let Some(path) = state_file() else {
        return Ok(None);
    };
    match read(&path) {
        Ok(Found::Running(state)) => Ok(Some(state)),
        Ok(Found::Stale(_)) => Ok(None),
        Err(err)
            if err
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound) =>
        {
            Ok(None)
        }
        Err(err) => Err(err),
    }
}

/// The message of a command that needs a running suite and found none.
pub fn no_suite_message() -> String {
    let recorded = state_file().map_or_else(
        || "no state directory (set CCP_STATE_DIR)".to_owned(),
        |path| format!("nothing running is recorded in {}", path.display()),
    );
    format!(
        "no running suite found ({recorded}): start `ccp up` in another terminal, \
         or pass --data-dir DIR (or set CCP_DATA_DIR) naming the data directory of the suite you run"
    )
}

/// Returns the data directory of the suite a client command talks to: the
/// one given (`--data-dir`), else one configured (`CCP_DATA_DIR`,
/// `data_dir` in `--config`, `identity.data_dir`), else the running suite's
/// from the state file. Fails with [`no_suite_message`] when there is none.
pub fn data_dir(settings: &SuiteSettings, given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = given {
        return Ok(dir.to_path_buf());
    }
    if let Some(dir) = &settings.identity.data_dir {
        return Ok(dir.clone());
    }
    if std::env::var_os("CCP_DATA_DIR").is_some_and(|d| !d.is_empty())
        || settings.data_dir != SuiteSettings::default().data_dir
    {
        return Ok(settings.data_dir.clone());
    }
    match running()? {
        Some(state) => Ok(state.data_dir),
        None => anyhow::bail!(no_suite_message()),
    }
}

/// Returns `settings` pointed at the suite an operator command (registry
/// import, demo load, explain) talks to: the data directory given, else the
/// configured one, else the running suite's; and, when the running suite is
/// the one, its accounts, gateway and notifications addresses unless
/// configured otherwise.
pub fn settings_for_suite(
    settings: &SuiteSettings,
    given: Option<&Path>,
) -> anyhow::Result<SuiteSettings> {
    let mut located = settings.clone();
    if let Some(dir) = given {
        located.data_dir = dir.to_path_buf();
        return Ok(located);
    }
    let defaults = SuiteSettings::default();
    let configured = std::env::var_os("CCP_DATA_DIR").is_some_and(|d| !d.is_empty())
        || settings.data_dir != defaults.data_dir;
    if configured {
        return Ok(located);
    }
    if let Some(state) = running()? {
        located.data_dir = state.data_dir;
        let listen = |url: &str| url.trim_start_matches("http://").to_owned();
        if located.accounts.server.listen == defaults.accounts.server.listen {
            located.accounts.server.listen = listen(&state.accounts);
        }
        if located.gateway.server.listen == defaults.gateway.server.listen {
            located.gateway.server.listen = listen(&state.gateway);
        }
        if located.notifications.server.listen == defaults.notifications.server.listen
            && !state.notifications.is_empty()
        {
            located.notifications.server.listen = listen(&state.notifications);
        }
    }
    Ok(located)
}
