use std::path::Path;

use zeroize::Zeroizing;

use crate::HsmError;

/// Reads a token PIN from a file: the whole file, surrounding whitespace trimmed.
///
/// The file must not be accessible to others (mode `o-rwx`): a PIN that any local user can
/// read protects nothing. Group access is allowed (a root-owned `0640` file shared with the
/// service's group is a common layout) but logged as a warning.
pub fn pin_from_file(path: &Path) -> Result<Zeroizing<String>, HsmError> {
    let err = |reason: String| HsmError::PinFile {
        path: path.display().to_string(),
        reason,
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .map_err(|e| err(e.to_string()))?
            .permissions()
            .mode();
        if mode & 0o007 != 0 {
            return Err(err(format!(
                "mode {:04o} lets other users access it; chmod o-rwx",
                mode & 0o7777
            )));
        }
        if mode & 0o070 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format_args!("{:04o}", mode & 0o7777),
                "the PIN file is accessible to its group"
            );
        }
    }
    let raw = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?);
    let pin = Zeroizing::new(raw.trim().to_owned());
    if pin.is_empty() {
        return Err(err("it is empty".into()));
    }
    Ok(pin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn reads_trimmed_and_refuses_world_readable_files() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        std::fs::write(&path, " 1234\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(pin_from_file(&path).unwrap().as_str(), "1234");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = pin_from_file(&path).unwrap_err().to_string();
        assert!(e.contains("other users") && !e.contains("1234"), "{e}");
        std::fs::write(&path, "\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(pin_from_file(&path).is_err());
        assert!(pin_from_file(&dir.path().join("missing")).is_err());
    }
}
