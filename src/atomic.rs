//! Atomic file writes: what a crash, a kill or a full disk leaves under the file's name is the
//! old file or the new one, never a torn mix. A failed write removes its temporary file; a
//! process killed mid-write can leave it (`.NAME.PID.tmp`, beside the file).

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` through a temporary file in the same directory (so the rename
/// cannot cross file systems), flushed to disk, then renamed over `path`; the directory is
/// synced so the rename itself survives a crash. On error the temporary file is removed.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let run = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    };
    run().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
