//! `voucherd export FILE` / `voucherd import FILE`: a backup of the whole store and its restore.
//!
//! The file is JSON lines: a header (`format`, `schema_version`), one line per record
//! (`{"tree","key","value"}` with hex bytes), and a trailer with the record count, so a truncated
//! file is refused instead of half-restored. sled locks its directory, so an export runs while no
//! server has the store open: nothing can write during it, and the copy is consistent.

use std::io::{BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Store, StoreError, TREE_NAMES, schema};
use crate::config::StoreSettings;

const FORMAT: &str = "voucherd-export";

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    schema_version: u32,
    exported_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Serialize, Deserialize)]
struct Record {
    tree: String,
    key: String,
    value: String,
}

#[derive(Serialize, Deserialize)]
struct Trailer {
    end: bool,
    records: u64,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Line {
    Record(Record),
    Trailer(Trailer),
}

/// Writes every tree; returns the number of records.
pub fn export(store: &Store, out: &mut impl Write) -> Result<u64, StoreError> {
    let header = Header {
        format: FORMAT.into(),
        version: 1,
        schema_version: store.meta().schema_version()?,
        exported_at: chrono::Utc::now(),
    };
    serde_json::to_writer(&mut *out, &header)?;
    out.write_all(b"\n")?;
    let mut records = 0u64;
    for name in TREE_NAMES {
        let tree = store.db().open_tree(name)?;
        for kv in tree.iter() {
            let (k, v) = kv?;
            let rec = Record {
                tree: (*name).to_owned(),
                key: hex::encode(k),
                value: hex::encode(v),
            };
            serde_json::to_writer(&mut *out, &rec)?;
            out.write_all(b"\n")?;
            records += 1;
        }
    }
    serde_json::to_writer(&mut *out, &Trailer { end: true, records })?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(records)
}

/// A store that holds nothing but what opening it wrote: its schema version.
fn is_fresh(store: &Store) -> Result<bool, StoreError> {
    for name in TREE_NAMES {
        let tree = store.db().open_tree(name)?;
        for kv in tree.iter() {
            let (k, _) = kv?;
            let written_by_open = *name == "meta" && &k[..] == b"schema_version";
            if !written_by_open {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Restores a backup into the store at `settings.path`, which must be absent or empty (holding
/// nothing but what opening it wrote). Returns the number of records. The records go into a new
/// store in a temporary directory beside it, which is renamed into place only once complete and
/// flushed: a crash or an error mid-import leaves no half-written store. Refuses a store with
/// data, a truncated file, an unknown tree, or a backup from a newer schema; migrations for an
/// older one run on the next open.
pub fn import(settings: &StoreSettings, input: impl BufRead) -> Result<u64, StoreError> {
    let target = settings.path.as_path();
    if target.exists() {
        let store = Store::open(settings)?;
        if !is_fresh(&store)? {
            return Err(StoreError::Conflict(
                "the store is not empty: import restores into an empty store only",
            ));
        }
    }
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into());
    let staging = target.with_file_name(format!(".{name}.import-{}", std::process::id()));
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    let written = write_records(&staging, input);
    let records = match written {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    if target.exists() {
        std::fs::remove_dir_all(target)?;
    }
    std::fs::rename(&staging, target)?;
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(records)
}

/// Reads the backup into a new sled database at `dir`, flushed and closed when this returns.
fn write_records(dir: &Path, input: impl BufRead) -> Result<u64, StoreError> {
    let bad = |m: String| StoreError::Corrupt(format!("backup: {m}"));
    let mut lines = input.lines();
    let header: Header = match lines.next() {
        Some(line) => serde_json::from_str(&line?)?,
        None => return Err(bad("empty file".into())),
    };
    if header.format != FORMAT || header.version != 1 {
        return Err(bad("not a voucherd export".into()));
    }
    if header.schema_version > schema::latest() {
        return Err(StoreError::Schema(format!(
            "the backup is at schema version {}, newer than this build knows ({})",
            header.schema_version,
            schema::latest()
        )));
    }
    let mut batches: std::collections::BTreeMap<String, sled::Batch> = Default::default();
    let mut records = 0u64;
    let mut finished = None;
    for line in lines {
        let line = line?;
        if finished.is_some() {
            return Err(bad("data after the trailer".into()));
        }
        match serde_json::from_str::<Line>(&line)? {
            Line::Record(rec) => {
                if !TREE_NAMES.contains(&rec.tree.as_str()) && !schema::is_retired(&rec.tree) {
                    return Err(bad(format!("unknown tree {}", rec.tree)));
                }
                let key = hex::decode(&rec.key).map_err(|e| bad(e.to_string()))?;
                let value = hex::decode(&rec.value).map_err(|e| bad(e.to_string()))?;
                batches.entry(rec.tree).or_default().insert(key, value);
                records += 1;
            }
            Line::Trailer(t) => finished = Some(t.records),
        }
    }
    match finished {
        Some(n) if n == records => {}
        Some(n) => return Err(bad(format!("trailer says {n} records, file has {records}"))),
        None => return Err(bad("no trailer: the file is truncated".into())),
    }
    let db = sled::Config::new().path(dir).open()?;
    for (name, batch) in batches {
        db.open_tree(name)?.apply_batch(batch)?;
    }
    schema::set_version_in(&db, header.schema_version)?;
    db.flush()?;
    Ok(records)
}

/// Creates (or truncates) the export file, readable by its owner only: it holds every user's
/// personal data and password hashes.
pub fn create_export_file(path: &Path) -> Result<std::fs::File, StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // `mode` applies only to a new file: an existing one is narrowed too.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}
