//! An nsc operator folder served read-only (Go v0.8 `-nsc`): `<root>/<Op>.jwt` is the operator,
//! `<root>/accounts/<Name>/<Name>.jwt` are the accounts (users are ignored). Account folders are
//! named after claim names, so keys are found by decoding the files; the index is rebuilt when
//! a key is missing or a file changed.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use super::{JwtStore, StoreError};
use crate::keys::AccountKey;

/// A read-only store over an nsc operator folder.
#[derive(Debug)]
pub struct NscStore {
    root: PathBuf,
    index: RwLock<HashMap<AccountKey, PathBuf>>,
}

fn error(action: &'static str, path: &Path, reason: impl ToString) -> StoreError {
    StoreError::Io {
        action,
        path: path.display().to_string(),
        source: std::io::Error::other(reason.to_string()),
    }
}

impl NscStore {
    /// Opens the operator folder `root` (it must hold nsc's `.nsc` file).
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        if !root.join(".nsc").is_file() {
            return Err(error(
                "opening",
                root,
                "not an nsc operator folder (no .nsc file; it is the folder holding <operator>.jwt and accounts/)",
            ));
        }
        let store = NscStore {
            root: root.to_path_buf(),
            index: RwLock::new(HashMap::new()),
        };
        store.rescan();
        Ok(store)
    }

    /// The operator JWT of the folder: `<root>/<folder name>.jwt`.
    pub fn operator_jwt_path(root: &Path) -> PathBuf {
        let name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        root.join(format!("{name}.jwt"))
    }

    /// The account JWT files: `accounts/<Name>/<Name>.jwt`.
    fn account_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        if let Ok(entries) = fs::read_dir(self.root.join("accounts")) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let file = entry.path().join(format!("{name}.jwt"));
                if file.is_file() {
                    files.push(file);
                }
            }
        }
        files.sort();
        files
    }

    /// Rebuilds the key → file index from the folder.
    pub fn rescan(&self) {
        let mut index = HashMap::new();
        for file in self.account_files() {
            let Ok(text) = fs::read_to_string(&file) else {
                continue;
            };
            match crate::jwt::decode_account(text.trim()) {
                Ok((token, _)) => {
                    if let Ok(key) = AccountKey::parse(&token.claims.sub) {
                        index.insert(key, file);
                    }
                }
                Err(e) => tracing::warn!("ignoring {}: {e}", file.display()),
            }
        }
        *self.index.write().unwrap_or_else(|e| e.into_inner()) = index;
    }

    fn indexed(&self, key: &AccountKey) -> Option<PathBuf> {
        self.index
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    fn read_for(&self, key: &AccountKey) -> Option<Vec<u8>> {
        let path = self.indexed(key)?;
        let bytes = fs::read(&path).ok()?;
        let text = String::from_utf8_lossy(&bytes);
        let sub = crate::jwt::decode_account(text.trim()).ok()?.0.claims.sub;
        (sub == key.as_str()).then_some(bytes)
    }
}

impl JwtStore for NscStore {
    fn load(&self, key: &AccountKey) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(bytes) = self.read_for(key) {
            return Ok(Some(bytes));
        }
        self.rescan();
        Ok(self.read_for(key))
    }

    fn save(&self, _key: &AccountKey, _jwt: &[u8]) -> Result<(), StoreError> {
        Err(StoreError::ReadOnly)
    }

    fn keys(&self) -> Result<Vec<AccountKey>, StoreError> {
        self.rescan();
        let mut keys: Vec<AccountKey> = self
            .index
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        keys.sort();
        Ok(keys)
    }

    fn describe(&self) -> String {
        format!("read-only store for the NSC folder {}", self.root.display())
    }

    fn is_read_only(&self) -> bool {
        true
    }

    fn check(&self) -> Result<(), StoreError> {
        super::usable::check_folder(&self.root, false)
    }
}
