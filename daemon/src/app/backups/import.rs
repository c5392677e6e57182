//! Import: a portable archive read from the request body, verified, and recreated as a
//! server on this host (quota-checked).

use std::sync::Arc;

use nuage_shared::{validate_vm_name, Job, JobKind, Vm};

use super::blocking_lost;
use crate::app::{Actor, App, AppError};
use crate::db::{self};

impl App {
    /// `POST /vms/import` (admins): reads an archive from `body` as it arrives, verifies every
    /// checksum, and only then creates the server, for `owner` (default: the caller), quota-
    /// checked, stopped. A bad archive is 422 and leaves nothing behind.
    pub async fn import_vm<S, E>(
        self: &Arc<Self>,
        actor: &Actor,
        owner: Option<String>,
        name: Option<String>,
        total: u64,
        body: S,
    ) -> Result<(Vm, Job), AppError>
    where
        S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Send + Unpin + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        use futures_util::TryStreamExt;
        actor.require_admin()?;
        let owner_id = owner.unwrap_or_else(|| actor.user_id.to_string());
        let key = owner_id.clone();
        if self
            .db
            .call(move |c| db::users::user_by_id(c, &key))
            .await?
            .is_none()
        {
            return Err(AppError::Invalid("No such owner.".into()));
        }
        if let Some(n) = &name {
            validate_vm_name(n).map_err(|m| AppError::Invalid(m.into()))?;
        }
        let (job, handle) = self
            .job_begin(&actor.user_id, JobKind::Import, None, None)
            .await?;
        let work = self.work_dir(&job.id);
        let h = handle.clone();
        let reader = tokio_util::io::StreamReader::new(
            body.map_err(|e| std::io::Error::other(e.to_string())),
        );
        let bridge = tokio_util::io::SyncIoBridge::new(reader);
        let unpacked = tokio::task::spawn_blocking(move || {
            Self::unpack(
                std::io::BufReader::with_capacity(1 << 20, bridge),
                total,
                &work,
                &h,
            )
        })
        .await
        .map_err(blocking_lost)
        .and_then(|r| r);
        let outcome = match unpacked {
            Ok((desc, disk)) => {
                // The server keeps its identity for cloud-init when it moves.
                let instance = desc.source_vm_id.clone();
                self.materialize(&owner_id, &desc, name, instance, disk)
                    .await
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok(vm) => {
                let mut job = job;
                job.vm_id = Some(vm.id.clone());
                let job = self.job_end(job, Ok(())).await;
                Ok((vm, job))
            }
            Err(e) => {
                self.job_end(job, Err(&e)).await;
                Err(e)
            }
        }
    }
}
