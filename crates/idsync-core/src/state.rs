//! What a profile remembers between runs, and where it is kept.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::model::{ExternalId, ProfileId};
use crate::source::Cursor;

/// The state of one profile between runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProfileState {
    /// Where the next delta read starts; `None` forces a full read.
    pub cursor: Option<Cursor>,
    /// When the last complete full read finished (Unix seconds).
    pub last_full_unix: Option<u64>,
    /// Objects whose operations failed: re-read and planned again next run,
    /// so that a delta cursor can move on without losing them.
    pub retry: BTreeSet<ExternalId>,
    /// A digest of the scope and mapping the last complete full read was
    /// planned with. When the profile's differ, the next run reads in full:
    /// a delta shows neither the objects that left the scope nor the
    /// fields a new mapping changes. `None` (a state saved before this
    /// existed) forces nothing.
    pub scope_digest: Option<String>,
    /// The members of each group as last read from the source: a delta
    /// looks up only the members that joined or left a changed group, and
    /// reads again the groups that named an object it deleted.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub members: BTreeMap<ExternalId, BTreeSet<ExternalId>>,
    /// Objects deleted or out of scope whose accounts are (or were) linked:
    /// a delta, which does not see them, must not count them as managed
    /// members of a group (a full read does not).
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub gone: BTreeSet<ExternalId>,
    /// How many accounts were linked to the profile after the last run: the
    /// base of the threshold's percentage for a delta, which does not list
    /// them all. `None` makes the next delta list them.
    pub linked: Option<usize>,
}

/// Where profile states are kept: in memory, a JSON file, a database.
#[async_trait]
pub trait StateStore: Send + Sync + fmt::Debug + 'static {
    /// The state of `profile`, or the default when there is none.
    async fn load(&self, profile: ProfileId) -> Result<ProfileState>;

    /// Saves the state of `profile`, atomically.
    async fn save(&self, profile: ProfileId, state: &ProfileState) -> Result<()>;
}

/// States in memory, for tests and embedding.
#[derive(Debug, Default)]
pub struct MemoryStateStore {
    states: Mutex<HashMap<ProfileId, ProfileState>>,
}

impl MemoryStateStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

fn poisoned() -> Error {
    Error::new(ErrorKind::Internal, "state lock poisoned").with_backend("state")
}

#[async_trait]
impl StateStore for MemoryStateStore {
    async fn load(&self, profile: ProfileId) -> Result<ProfileState> {
        Ok(self
            .states
            .lock()
            .map_err(|_| poisoned())?
            .get(&profile)
            .cloned()
            .unwrap_or_default())
    }

    async fn save(&self, profile: ProfileId, state: &ProfileState) -> Result<()> {
        self.states
            .lock()
            .map_err(|_| poisoned())?
            .insert(profile, state.clone());
        Ok(())
    }
}

/// States as JSON files, one per profile (`<dir>/<profile-id>.json`), each
/// written to a temporary file in the same folder, flushed, then renamed
/// over the old one: a crash leaves the old state or the new, never half.
/// The files are small, so the blocking file I/O is brief.
#[derive(Debug, Clone)]
pub struct JsonFileStateStore {
    dir: PathBuf,
}

impl JsonFileStateStore {
    /// A store in `dir`, created when missing.
    pub fn new(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, "create the state folder", e))?;
        Ok(JsonFileStateStore { dir })
    }

    fn path(&self, profile: ProfileId) -> PathBuf {
        self.dir.join(format!("{profile}.json"))
    }
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::new(ErrorKind::Unavailable, format!("cannot {what}: {e}"))
        .with_backend("state")
        .with_object(path.display())
        .with_source(e)
}

#[async_trait]
impl StateStore for JsonFileStateStore {
    async fn load(&self, profile: ProfileId) -> Result<ProfileState> {
        let path = self.path(profile);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::new(ErrorKind::InvalidData, format!("state file is not valid: {e}"))
                    .with_backend("state")
                    .with_object(path.display())
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ProfileState::default()),
            Err(e) => Err(io_error(&path, "read the state file", e)),
        }
    }

    async fn save(&self, profile: ProfileId, state: &ProfileState) -> Result<()> {
        use std::io::Write;
        let path = self.path(profile);
        let json = serde_json::to_vec(state)
            .map_err(|e| Error::new(ErrorKind::Internal, e.to_string()).with_backend("state"))?;
        let mut tmp =
            tempfile::NamedTempFile::new_in(&self.dir).map_err(|e| io_error(&path, "create a temporary file", e))?;
        tmp.write_all(&json)
            .map_err(|e| io_error(&path, "write the state", e))?;
        tmp.as_file()
            .sync_all()
            .map_err(|e| io_error(&path, "flush the state", e))?;
        tmp.persist(&path)
            .map_err(|e| io_error(&path, "replace the state file", e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_file_store_round_trips_and_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let store = JsonFileStateStore::new(dir.path().join("state")).unwrap();
        let profile = ProfileId::new_random();
        let loaded = futures::executor::block_on(store.load(profile)).unwrap();
        assert_eq!(loaded, ProfileState::default());
        let state = ProfileState {
            cursor: Some(Cursor("c1".into())),
            last_full_unix: Some(42),
            retry: [ExternalId::from("u1")].into_iter().collect(),
            scope_digest: Some("d1".into()),
            members: [(ExternalId::from("g1"), [ExternalId::from("u1")].into_iter().collect())]
                .into_iter()
                .collect(),
            gone: [ExternalId::from("u9")].into_iter().collect(),
            linked: Some(7),
        };
        futures::executor::block_on(store.save(profile, &state)).unwrap();
        assert_eq!(futures::executor::block_on(store.load(profile)).unwrap(), state);
        let names: Vec<_> = std::fs::read_dir(dir.path().join("state"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from(format!("{profile}.json"))],
            "no temporary file is left behind"
        );
    }

    #[test]
    fn a_corrupt_state_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = JsonFileStateStore::new(dir.path()).unwrap();
        let profile = ProfileId::new_random();
        std::fs::write(dir.path().join(format!("{profile}.json")), b"{not json").unwrap();
        let e = futures::executor::block_on(store.load(profile)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidData);
        assert!(e.to_string().contains("state file is not valid"), "{e}");
    }
}
