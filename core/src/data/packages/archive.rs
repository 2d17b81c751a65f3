//! A wheel (zip) read in place, with the guards a downloaded archive needs: entry names that
//! climb out of their folder or are absolute are refused, and so is any entry that declares or
//! inflates to more than [`MAX_ENTRY_BYTES`] (a zip bomb).

use crate::{Error, Result};
use std::io::{Read, Seek, Write};

/// Largest uncompressed entry accepted. The biggest real entry is the 87 MiB model; anything near
/// this is a zip bomb or a broken archive.
pub const MAX_ENTRY_BYTES: u64 = 1 << 30;

/// A zip archive that only hands out entries with safe names and sane sizes.
pub struct Archive<R> {
    zip: zip::ZipArchive<R>,
    label: String,
}

impl<R: Read + Seek> Archive<R> {
    /// `label` names the archive in every message (a file name, or `inner.zip in outer.whl`).
    pub fn new(reader: R, label: impl Into<String>) -> Result<Self> {
        let label = label.into();
        let zip = zip::ZipArchive::new(reader)
            .map_err(|e| Error::Archive(format!("{label} is not a readable zip archive: {e}")))?;
        Ok(Archive { zip, label })
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// Entry names under `prefix` ending in `suffix`, sorted; folders left out, and with
    /// `direct` only those directly in `prefix` (not in a sub-folder).
    pub fn names(&self, prefix: &str, suffix: &str, direct: bool) -> Vec<String> {
        let mut names: Vec<String> = self
            .zip
            .file_names()
            .filter(|n| n.starts_with(prefix) && n.ends_with(suffix) && !n.ends_with('/'))
            .filter(|n| !direct || !n[prefix.len()..].contains('/'))
            .map(str::to_string)
            .collect();
        names.sort();
        names
    }

    pub fn read(&mut self, name: &str) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.copy(name, &mut buf)?;
        Ok(buf)
    }

    /// Inflates entry `name` into `out`; returns its length.
    pub fn copy(&mut self, name: &str, out: &mut dyn Write) -> Result<u64> {
        check_entry_name(name, &self.label)?;
        let label = &self.label;
        let entry = self.zip.by_name(name).map_err(|e| Error::Archive(format!("{label} has no entry {name} ({e})")))?;
        if entry.size() > MAX_ENTRY_BYTES {
            return Err(Error::Archive(format!(
                "refusing entry {name} in {label}: it declares {} bytes uncompressed, over the {MAX_ENTRY_BYTES} byte limit (zip bomb?)",
                entry.size()
            )));
        }
        let mut limited = entry.take(MAX_ENTRY_BYTES + 1);
        let n = std::io::copy(&mut limited, out)
            .map_err(|e| Error::Archive(format!("reading {name} from {label}: {e}")))?;
        if n > MAX_ENTRY_BYTES {
            return Err(Error::Archive(format!(
                "refusing entry {name} in {label}: it inflates to more than {MAX_ENTRY_BYTES} bytes (zip bomb?)"
            )));
        }
        Ok(n)
    }
}

/// Refuses absolute names and `..` components, which could escape the output folder when an
/// entry name becomes a path (the model files).
pub fn check_entry_name(name: &str, label: &str) -> Result<()> {
    let drive = name.as_bytes().get(1) == Some(&b':');
    if name.starts_with('/') || name.starts_with('\\') || drive {
        return Err(Error::Archive(format!("refusing entry {name:?} in {label}: absolute path")));
    }
    if name.split(['/', '\\']).any(|part| part == "..") {
        return Err(Error::Archive(format!("refusing entry {name:?} in {label}: `..` in the path")));
    }
    Ok(())
}
