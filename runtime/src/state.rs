//! The state directory: `store.db` (the store), `runs/` (run directories), `token` (the
//! control API's bearer token, 0600), `api.json` (where the control API of the running
//! runtime listens), `services.json` (where it serves each service locally, ML build), and
//! `lock` (held by the running runtime: one runtime per directory).

use crate::error::{Error, Result};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Takes the directory's lock, or says which runtime holds it.
pub fn lock(dir: &Path) -> Result<std::fs::File> {
    let path = dir.join("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
        let holder = std::fs::read_to_string(&path).unwrap_or_default();
        return Err(Error::Msg(format!(
            "another sflow runtime uses {} (pid {}); stop it first",
            dir.display(),
            holder.trim()
        )));
    }
    let _ = file.set_len(0);
    let _ = (&file).write_all(std::process::id().to_string().as_bytes());
    Ok(file)
}

/// The control API's token: read it, or create it (0600) on first start.
pub fn token(dir: &Path) -> Result<String> {
    let path = dir.join("token");
    if let Ok(t) = std::fs::read_to_string(&path) {
        let t = t.trim().to_string();
        if t.len() >= 32 {
            return Ok(t);
        }
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::Msg(format!("no randomness for the token: {e}")))?;
    let token = crate::executor::digest::hex(&bytes);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    f.write_all(token.as_bytes())
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io("chmod token", e))?;
    Ok(token)
}

/// Where the store is.
pub fn store_path(dir: &Path) -> PathBuf {
    dir.join("store.db")
}

/// Where the running runtime records the services it serves locally (`services.json`).
pub fn services_path(dir: &Path) -> PathBuf {
    dir.join("services.json")
}

/// What `services.json` says (service → url, model, replicas), if a runtime wrote it.
pub fn read_services(dir: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(services_path(dir)).ok()?).ok()
}

/// Records where the control API listens.
pub fn write_api_info(dir: &Path, url: &str) -> Result<()> {
    let info = serde_json::json!({ "url": url, "pid": std::process::id() });
    std::fs::write(dir.join("api.json"), info.to_string())
        .map_err(|e| Error::io("cannot write api.json", e))
}

/// Where the control API of the runtime using `dir` listens, if one recorded it.
pub fn read_api_info(dir: &Path) -> Option<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(dir.join("api.json")).ok()?).ok()
}
