//! End-to-end tests: the real `nuaged`, a real libvirtd with real guests under TCG, and a real
//! browser. One test binary; one module per area.

mod abuse;
mod account;
mod backups;
mod console;
mod contract;
mod debian;
mod failures;
mod foundation;
mod passkeys;
mod proxy;
mod relay;
mod resources;
mod tls;
mod vps;
