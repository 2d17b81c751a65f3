//! Checkpoint folders of a run (`OUT/checkpoints/step-N/`): written whole or not at all, the
//! newest few kept, removed so that a kill at any moment leaves each whole or gone, read back.
//! Fine-tuning and pretraining both keep theirs here.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use savant_core::train::{Session, Task};

use crate::io::write_atomic;

/// Checkpoints kept in `OUT/checkpoints` (the newest ones).
const KEEP_CHECKPOINTS: usize = 2;

/// Writes `checkpoints/step-N/` of a fine-tuning run (with a streamed run's position).
pub fn write_session<T: Task>(session: &mut Session<T>, dir: &Path, stream_position: Option<&[u8]>) -> Result<()> {
    let c = pollster::block_on(session.checkpoint())?;
    write_checkpoint(&c, dir, session.trainer.step, stream_position)
}

/// Writes `checkpoints/step-N/` of a run's checkpoint (fine-tuning's or pretraining's).
pub fn write_checkpoint(
    c: &savant_core::train::SessionCheckpoint,
    dir: &Path,
    step: usize,
    stream_position: Option<&[u8]>,
) -> Result<()> {
    let mut files: Vec<(&str, &[u8])> = vec![("model.safetensors", &c.model)];
    if let Some(position) = stream_position {
        files.push(("stream.json", position));
    }
    if let Some(best) = &c.best_model {
        files.push(("best.safetensors", best));
    }
    files.push(("optimizer.bpk", &c.optimizer));
    files.push(("state.json", c.state_json.as_bytes()));
    write_files(dir, step, &files)
}

/// Writes `dir/step-N/` whole or not at all (a temporary folder renamed into place), then drops
/// all but the newest [`KEEP_CHECKPOINTS`].
pub fn write_files(dir: &Path, step: usize, files: &[(&str, &[u8])]) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let final_dir = dir.join(format!("step-{step:08}"));
    let tmp = dir.join(format!(".tmp-step-{step:08}"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&tmp)?;
    for (name, bytes) in files {
        write_atomic(&tmp.join(name), |w| Ok(w.write_all(bytes)?))?;
    }
    if final_dir.exists() {
        retire(&final_dir)?;
    }
    std::fs::rename(&tmp, &final_dir).with_context(|| format!("renaming {} into place", tmp.display()))?;
    let mut all = step_dirs(dir)?;
    while all.len() > KEEP_CHECKPOINTS {
        let (_, old) = all.remove(0);
        retire(&old).ok();
    }
    // What a kill left mid-removal.
    for e in std::fs::read_dir(dir)?.flatten() {
        if e.file_name().to_string_lossy().starts_with(".old-") {
            std::fs::remove_dir_all(e.path()).ok();
        }
    }
    Ok(())
}

/// Removes a checkpoint folder so that a kill at any moment leaves it whole or gone: renamed
/// out of its name first (atomic), then deleted. Deleted in place, a kill left `step-N` without
/// some of its files (the kill test caught one lacking optimizer.bpk).
pub fn retire(path: &Path) -> Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let gone = path.with_file_name(format!(".old-{name}"));
    if gone.exists() {
        std::fs::remove_dir_all(&gone).with_context(|| format!("removing {}", gone.display()))?;
    }
    std::fs::rename(path, &gone).with_context(|| format!("renaming {} out of the way", path.display()))?;
    std::fs::remove_dir_all(&gone).with_context(|| format!("removing {}", gone.display()))
}

/// `step-N` folders, oldest first.
pub fn step_dirs(dir: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(n) = name.strip_prefix("step-").and_then(|n| n.parse::<usize>().ok()) {
            out.push((n, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// The newest checkpoint, read whole.
pub fn latest_session(dir: &Path) -> Result<Option<(PathBuf, savant_core::train::SessionCheckpoint)>> {
    let Some((_, path)) = step_dirs(dir)?.pop() else { return Ok(None) };
    let read = |f: &str| std::fs::read(path.join(f)).with_context(|| format!("reading {}", path.join(f).display()));
    let best = path.join("best.safetensors");
    let checkpoint = savant_core::train::SessionCheckpoint {
        state_json: String::from_utf8(read("state.json")?).context("state.json is not UTF-8")?,
        model: read("model.safetensors")?,
        best_model: if best.exists() { Some(read("best.safetensors")?) } else { None },
        optimizer: read("optimizer.bpk")?,
    };
    Ok(Some((path, checkpoint)))
}

/// Readies `output` for a run (`train`'s and `pretrain`'s): with `resume`, its newest checkpoint
/// (refused when there is none); else a folder holding any of `results` or checkpoints is
/// refused unless `overwrite`, which sets them aside first.
pub fn start_run(
    output: &Path,
    results: &[&str],
    resume: bool,
    overwrite: bool,
) -> Result<Option<(PathBuf, savant_core::train::SessionCheckpoint)>> {
    let checkpoints = output.join("checkpoints");
    if resume {
        let found = latest_session(&checkpoints)?;
        return found
            .map(Some)
            .ok_or_else(|| anyhow::anyhow!("--resume: {} holds no checkpoint", checkpoints.display()));
    }
    let held: Vec<PathBuf> =
        results.iter().chain(&["checkpoints"]).map(|f| output.join(f)).filter(|p| p.exists()).collect();
    if held.is_empty() {
        return Ok(None);
    }
    if !overwrite {
        anyhow::bail!(
            "{} already holds a run: --resume continues it, --overwrite replaces it (or pick another -o)",
            output.display()
        );
    }
    for p in held.iter().filter(|p| p.is_dir()) {
        retire(p)?;
    }
    Ok(None)
}
