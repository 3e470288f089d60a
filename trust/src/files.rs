//! Secret files (private keys): created new, readable and writable by the
//! owner only, and synced before they are used. Every crate of the
//! workspace writes its secrets through [`write_private`].

use std::io::Write as _;
use std::path::Path;

/// Creates `path` with `contents`, mode 0600 on Unix. Fails if the file
/// already exists (a key is never overwritten by accident).
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Publishes `contents` at `path`, readable by the owner only, unless a
/// file is already there: whole or not at all, so that processes starting
/// together (replicas on one volume) all end up reading the one file
/// published first and none reads a half-written one. The contents go to a
/// temporary file beside `path` (0600), synced, then moved to `path` only
/// if nothing is there (`tempfile`'s `persist_noclobber`: a hard link on
/// Unix), and the directory synced. Answers whether this call published it.
pub fn publish_private(path: &Path, contents: &[u8]) -> std::io::Result<bool> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut temporary = tempfile::Builder::new()
        .prefix(".publishing-")
        .suffix(".partial")
        .tempfile_in(dir)?;
    temporary.write_all(contents)?;
    temporary.as_file().sync_all()?;
    match temporary.persist_noclobber(path) {
        Ok(_) => {
            std::fs::File::open(dir)?.sync_all()?;
            Ok(true)
        }
        // The temporary file is removed as the error is dropped.
        Err(refused) if refused.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(refused) => Err(refused.error),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_secret_file_is_the_owners_alone_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        super::write_private(&path, b"secret").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"secret");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(super::write_private(&path, b"other").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"secret");
    }

    #[test]
    fn a_secret_published_by_many_at_once_is_one_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session.key");
        let writers: Vec<_> = (0..8u8)
            .map(|n| {
                let path = path.clone();
                std::thread::spawn(move || super::publish_private(&path, &[n; 32]).unwrap())
            })
            .collect();
        let won: Vec<bool> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        assert_eq!(
            won.iter().filter(|w| **w).count(),
            1,
            "exactly one publishes"
        );
        let contents = std::fs::read(&path).unwrap();
        assert_eq!(contents.len(), 32);
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "readable by its owner only");
        }
        let winner = won.iter().position(|w| *w).unwrap() as u8;
        assert_eq!(contents, vec![winner; 32]);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file is left behind"
        );
        assert!(!super::publish_private(&path, &[9; 32]).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), vec![winner; 32]);
    }
}
