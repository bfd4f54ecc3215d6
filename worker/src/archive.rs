//! Snapshots' archives: a working directory as a gzipped tar (the system's `tar`), written
//! aside and moved into place, so an archive that exists is whole.

use std::path::Path;
use tokio::process::Command;

async fn tar(args: &[&std::ffi::OsStr]) -> std::io::Result<()> {
    let output = Command::new("tar").args(args).env("LC_ALL", "C").output().await?;
    if output.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        Err(std::io::Error::other(format!("tar failed: {err}")))
    }
}

/// Archives `dir` (created empty if missing) into `archive`; its size in bytes.
pub async fn pack(dir: &Path, archive: &Path) -> std::io::Result<u64> {
    tokio::fs::create_dir_all(dir).await?;
    if let Some(parent) = archive.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    let partial = archive.with_extension("partial");
    tar(&["-czf".as_ref(), partial.as_os_str(), "-C".as_ref(), dir.as_os_str(), ".".as_ref()]).await?;
    tokio::fs::rename(&partial, archive).await?;
    Ok(tokio::fs::metadata(archive).await?.len())
}

/// Fills `dir` from `archive`, unless `dir` already holds something (a re-run of the same
/// start: what is there came from the archive, or from the command since).
pub async fn unpack_into_empty(archive: &Path, dir: &Path) -> std::io::Result<()> {
    tokio::fs::create_dir_all(dir).await?;
    if tokio::fs::read_dir(dir).await?.next_entry().await?.is_some() {
        return Ok(());
    }
    tar(&["-xzf".as_ref(), archive.as_os_str(), "-C".as_ref(), dir.as_os_str()]).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_directory_packed_and_unpacked_comes_back_whole() {
        let root = std::env::temp_dir().join(format!("taskq-archive-{}", std::process::id()));
        let (from, to, archive) = (root.join("from"), root.join("to"), root.join("snaps/s.tar.gz"));
        std::fs::create_dir_all(from.join("sub")).expect("dirs");
        std::fs::write(from.join("sub/file.txt"), "kept").expect("write");
        let size = pack(&from, &archive).await.expect("pack");
        assert!(size > 0 && size == std::fs::metadata(&archive).expect("archive").len());
        assert!(!archive.with_extension("partial").exists());
        unpack_into_empty(&archive, &to).await.expect("unpack");
        assert_eq!(std::fs::read_to_string(to.join("sub/file.txt")).expect("read"), "kept");
        std::fs::write(to.join("sub/file.txt"), "changed since").expect("write");
        unpack_into_empty(&archive, &to).await.expect("a second time");
        assert_eq!(std::fs::read_to_string(to.join("sub/file.txt")).expect("read"), "changed since", "not twice");
        assert!(unpack_into_empty(&root.join("missing.tar.gz"), &root.join("empty")).await.is_err());
        let _ = std::fs::remove_dir_all(root);
    }
}
