//! Disk images: imported by administrators from the import directories, listed for everyone.

use std::path::{Path, PathBuf};

use nuage_shared::{validate_image_name, Image, ImportImage};

use super::{Actor, App, AppError};
use crate::db::{self, images::ImageRow, Refusal};
use crate::storage::{self, StorageError};

/// Resolves `path` (symlinks and `..` included) and accepts it only if it lies inside one of the
/// import directories. Anything else is refused without saying what exists where.
fn confine(path: &str, import_dirs: &[PathBuf]) -> Result<PathBuf, AppError> {
    let refused = || {
        AppError::Invalid(
            "The path must name a file inside one of the daemon's import directories.".into(),
        )
    };
    if path.is_empty() || path.contains('\0') {
        return Err(refused());
    }
    let real = std::fs::canonicalize(path).map_err(|_| refused())?;
    let inside = import_dirs
        .iter()
        .filter_map(|d| std::fs::canonicalize(d).ok())
        .any(|dir| real.starts_with(&dir) && real != dir);
    if inside {
        Ok(real)
    } else {
        Err(refused())
    }
}

/// The largest image an upload may carry.
pub const MAX_UPLOAD: u64 = 256 << 30;

/// Whether the store takes a copy of the source (imports) or the file itself (uploads).
#[derive(Clone, Copy)]
enum Keep {
    Copy,
    Move,
}

fn validate_os(os: Option<&str>) -> Result<(), AppError> {
    match os {
        Some(os) if os.len() > 64 || os.chars().any(char::is_control) => Err(AppError::Invalid(
            "The os label is at most 64 printable characters.".into(),
        )),
        _ => Ok(()),
    }
}

fn storage_error(e: StorageError) -> AppError {
    match e {
        StorageError::Rejected(m) => AppError::Invalid(m),
        other => AppError::internal("image storage failed", other),
    }
}

impl App {
    /// `GET /images` (everyone signed in).
    pub async fn list_images(&self, _actor: &Actor) -> Result<Vec<Image>, AppError> {
        let rows = self.db.call(|c| db::images::list(c)).await?;
        Ok(rows.into_iter().map(|r| r.image).collect())
    }

    /// `POST /images` (admins): validates the file with `qemu-img`, then copies it into the
    /// daemon's image store, so later changes to the import file cannot reach running servers.
    pub async fn import_image(&self, actor: &Actor, req: ImportImage) -> Result<Image, AppError> {
        actor.require_admin()?;
        validate_image_name(&req.name).map_err(|m| AppError::Invalid(m.into()))?;
        validate_os(req.os.as_deref())?;
        let source = confine(&req.path, &self.settings.import_dirs)?;
        let name = req.name.clone();
        if self
            .db
            .call(move |c| db::images::name_taken(c, &name))
            .await?
        {
            return Err(AppError::Conflict(format!(
                "An image named {} exists already.",
                req.name
            )));
        }
        let id = uuid::Uuid::new_v4().to_string();
        self.store_validated(id, req.name, req.os, &source, Keep::Copy)
            .await
    }

    /// Puts `source` in the store (copied from one descriptor, or moved for an upload), validates
    /// that copy with qemu-img, names it `<id>.<format>` and records it. On failure the store is
    /// as it was.
    async fn store_validated(
        &self,
        id: String,
        name: String,
        os: Option<String>,
        source: &Path,
        keep: Keep,
    ) -> Result<Image, AppError> {
        let store = self.settings.data_dir.join("images");
        let (src, dest_dir, image_id) = (source.to_owned(), store, id.clone());
        let (info, dest) = tokio::task::spawn_blocking(move || -> Result<_, StorageError> {
            // The file is validated once it is the daemon's own copy, so nothing can change
            // it between the check and its use. The source is opened once, without following
            // a link, and copied from that descriptor.
            let partial = dest_dir.join(format!(".import-{image_id}"));
            match keep {
                Keep::Copy => {
                    let mut from = storage::open_for_import(&src)?;
                    // Images are shared by every tenant and read by QEMU's user: not secret.
                    storage::copy_sparse(&mut from, &partial, 0o644)?;
                }
                Keep::Move => {
                    std::fs::rename(&src, &partial).map_err(|source| StorageError::Io {
                        path: partial.display().to_string(),
                        source,
                    })?
                }
            }
            let checked = storage::inspect_image(&partial).and_then(|info| {
                let dest = dest_dir.join(format!("{image_id}.{}", info.format));
                // Shared by every tenant's servers and read by QEMU's user: not secret.
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o644))
                    .map_err(|source| StorageError::Io {
                        path: partial.display().to_string(),
                        source,
                    })?;
                std::fs::rename(&partial, &dest).map_err(|source| StorageError::Io {
                    path: dest.display().to_string(),
                    source,
                })?;
                Ok((info, dest))
            });
            if checked.is_err() {
                let _ = std::fs::remove_file(&partial);
            }
            checked
        })
        .await
        .map_err(|e| AppError::internal("image import was lost", e))?
        .map_err(storage_error)?;

        let row = ImageRow {
            image: Image {
                id: id.into(),
                name: name.clone(),
                format: info.format.into(),
                virtual_size_bytes: info.virtual_size,
                os,
                created_at: db::now_rfc3339(),
            },
            path: dest.to_string_lossy().into_owned(),
        };
        let stored = row.clone();
        match self.db.call(move |c| db::images::insert(c, &stored)).await {
            Ok(()) => Ok(row.image),
            Err(e) => {
                let _ = std::fs::remove_file(&dest);
                if e.is_unique_violation() {
                    Err(AppError::Conflict(format!(
                        "An image named {name} exists already."
                    )))
                } else {
                    Err(e.into())
                }
            }
        }
    }

    /// `POST /images/upload` (admins): streams the body into the store (at most `MAX_UPLOAD`
    /// bytes), then validates it exactly like an import. Nothing is left behind on failure.
    pub async fn upload_image<S, E>(
        &self,
        actor: &Actor,
        name: String,
        os: Option<String>,
        mut body: S,
    ) -> Result<Image, AppError>
    where
        S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        use futures_util::StreamExt;
        use tokio::io::AsyncWriteExt;
        actor.require_admin()?;
        validate_image_name(&name).map_err(|m| AppError::Invalid(m.into()))?;
        validate_os(os.as_deref())?;
        let key = name.clone();
        if self
            .db
            .call(move |c| db::images::name_taken(c, &key))
            .await?
        {
            return Err(AppError::Conflict(format!(
                "An image named {name} exists already."
            )));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let partial = self
            .settings
            .data_dir
            .join("images")
            .join(format!(".upload-{id}"));
        let written: Result<u64, AppError> = async {
            let mut file = tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&partial)
                .await
                .map_err(|e| AppError::internal("cannot create the upload file", e))?;
            let mut total = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = chunk
                    .map_err(|e| AppError::Invalid(format!("The upload was interrupted: {e}")))?;
                total += chunk.len() as u64;
                if total > MAX_UPLOAD {
                    return Err(AppError::Invalid(format!(
                        "An uploaded image is at most {} GiB.",
                        MAX_UPLOAD >> 30
                    )));
                }
                file.write_all(&chunk)
                    .await
                    .map_err(|e| AppError::internal("cannot write the upload", e))?;
            }
            file.sync_all()
                .await
                .map_err(|e| AppError::internal("cannot write the upload", e))?;
            Ok(total)
        }
        .await;
        let result = match written {
            Ok(0) => Err(AppError::Invalid("The upload is empty.".into())),
            Ok(_) => {
                self.store_validated(id, name, os, &partial, Keep::Move)
                    .await
            }
            Err(e) => Err(e),
        };
        let _ = tokio::fs::remove_file(&partial).await;
        result
    }

    /// `DELETE /images/{id}` (admins): refused while a server still stands on it.
    pub async fn delete_image(&self, actor: &Actor, id: &str) -> Result<(), AppError> {
        actor.require_admin()?;
        let key = id.to_owned();
        let path = self
            .db
            .call(move |c| db::images::delete_unused(c, &key))
            .await?
            .map_err(|r| match r {
                Refusal::NotFound => AppError::NotFound("image"),
                Refusal::InUse { count, .. } => AppError::Conflict(format!(
                    "The image is the base of {count} server(s); delete them first."
                )),
                other => other.into(),
            })?;
        if let Err(e) = std::fs::remove_file(Path::new(&path)) {
            tracing::warn!(path, error = %e, "cannot remove a deleted image's file");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_inside_an_import_dir_are_accepted() {
        let tmp = tempfile::tempdir().unwrap();
        let import = tmp.path().join("import");
        std::fs::create_dir(&import).unwrap();
        std::fs::write(import.join("ok.img"), b"x").unwrap();
        std::fs::write(tmp.path().join("outside.img"), b"x").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("outside.img"), import.join("link.img"))
            .unwrap();
        let dirs = vec![import.clone()];
        assert!(confine(import.join("ok.img").to_str().unwrap(), &dirs).is_ok());
        for bad in [
            tmp.path().join("outside.img"),
            import.join("../outside.img"),
            import.join("link.img"),
            import.clone(),
            import.join("missing.img"),
            "/etc/shadow".into(),
        ] {
            assert!(
                confine(bad.to_str().unwrap(), &dirs).is_err(),
                "{}",
                bad.display()
            );
        }
        assert!(confine("", &dirs).is_err());
    }
}
