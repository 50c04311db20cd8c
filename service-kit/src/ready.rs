//! The ready file: how whoever starts a service (a test harness, a script, a
//! supervisor) learns that it is up and which addresses it bound, without
//! reading its logs. With `READY_FILE` (`--ready-file`) set, a service writes,
//! once every listener is bound, a JSON object:
//!
//! ```json
//! {"service":"gateway","pid":4242,"listeners":{"http":"127.0.0.1:8080","ops":"127.0.0.1:9090"}}
//! ```
//!
//! It appears atomically (written aside, then renamed), so a reader never
//! sees half of it, and it is removed when the service stops. Listener names
//! per service are in docs/architecture.md, "Startup contract".

use std::{
    collections::BTreeMap,
    io,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    pub service: String,
    pub pid: u32,
    /// Listener name → bound address.
    pub listeners: BTreeMap<String, SocketAddr>,
}

impl Ready {
    /// Reads a ready file: None while it does not exist yet.
    pub fn read(path: &Path) -> io::Result<Option<Self>> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A written ready file; dropping it removes the file.
#[derive(Debug)]
pub struct ReadyFile(Option<PathBuf>);

impl ReadyFile {
    /// Writes `path` (if set) for `service` and its bound `listeners`.
    pub fn write(
        path: Option<&Path>,
        service: &str,
        listeners: &[(&str, io::Result<SocketAddr>)],
    ) -> io::Result<Self> {
        let Some(path) = path else {
            return Ok(Self(None));
        };
        let mut bound = BTreeMap::new();
        for (name, addr) in listeners {
            let addr = addr
                .as_ref()
                .map_err(|e| io::Error::new(e.kind(), e.to_string()))?;
            bound.insert((*name).to_owned(), *addr);
        }
        let ready = Ready {
            service: service.to_owned(),
            pid: std::process::id(),
            listeners: bound,
        };
        let aside = path.with_extension("partial");
        std::fs::write(&aside, serde_json::to_vec(&ready)?)?;
        std::fs::rename(&aside, path)?;
        Ok(Self(Some(path.to_owned())))
    }
}

impl Drop for ReadyFile {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_whole_read_back_and_removed_on_drop() {
        let dir = std::env::temp_dir().join(format!("ready-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("svc.ready");
        let addr: SocketAddr = "127.0.0.1:4242".parse().unwrap();
        assert_eq!(Ready::read(&path).unwrap(), None);
        let file = ReadyFile::write(Some(&path), "svc", &[("ops", Ok(addr))]).unwrap();
        let ready = Ready::read(&path).unwrap().unwrap();
        assert_eq!(ready.service, "svc");
        assert_eq!(ready.listeners["ops"], addr);
        drop(file);
        assert_eq!(Ready::read(&path).unwrap(), None);
        let _ = std::fs::remove_dir(&dir);
    }

    #[test]
    fn unset_writes_nothing() {
        ReadyFile::write(None, "svc", &[]).unwrap();
    }
}
