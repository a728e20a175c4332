//! Online, consistent backups of the SQLite database.

use std::path::Path;

use warrant_core::StoreError;
use warrant_core::store::StoreResult;

use crate::SqliteStore;
use crate::store::backend;

impl SqliteStore {
    /// Writes a consistent copy of the database to `dest` (which must not exist) while the
    /// server keeps running: `VACUUM INTO` reads one snapshot of the database, so writes in
    /// progress are either wholly in the copy or not at all.
    pub async fn backup_to(&self, dest: &Path) -> StoreResult<()> {
        if dest.exists() {
            return Err(StoreError::Conflict);
        }
        let text = dest
            .to_str()
            .ok_or_else(|| StoreError::Backend("the backup path is not UTF-8".into()))?;
        sqlx::query("VACUUM INTO ?")
            .bind(text)
            .execute(self.pool())
            .await
            .map_err(backend)?;
        // Wrapped keys and secret hashes: readable by the owner only, like the data directory.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| StoreError::Backend(format!("restricting the backup's mode: {e}")))?;
        Ok(())
    }
}
