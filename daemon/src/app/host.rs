//! The host itself: health and what it is.

use nuage_shared::{Health, HostInfo, HypervisorInfo};

use super::{Actor, App, AppError};

impl App {
    /// `GET /healthz`: the database answers a query and libvirt answers a call.
    pub async fn health(&self) -> Health {
        let database = self.db.ping().await;
        let hypervisor = self.hv_call(|hv| hv.ping()).await.is_ok();
        Health {
            status: if database && hypervisor {
                "ok"
            } else {
                "degraded"
            }
            .into(),
            database,
            hypervisor,
            simulated: self.simulated,
        }
    }

    /// `GET /api/v1/host` (admins).
    pub async fn host_info(&self, actor: &Actor) -> Result<HostInfo, AppError> {
        actor.require_admin()?;
        let facts = self.hv_call(|hv| hv.host_facts()).await?;
        let (capacity, network) = self.capacity_and_network().await?;
        Ok(HostInfo {
            capacity,
            network,
            hostname: facts.hostname.clone(),
            daemon_version: env!("CARGO_PKG_VERSION").into(),
            hypervisor: HypervisorInfo {
                uri: self.libvirt_uri.clone(),
                simulated: facts.simulated(),
                driver: facts.driver,
                version: facts.hypervisor_version,
                libvirt_version: facts.libvirt_version,
            },
            accel: self.accel,
            accel_reason: self.accel_reason.clone(),
            warnings: self.host_warnings.clone(),
            cpus: facts.cpus,
            memory_mib: facts.memory_mib,
        })
    }
}
