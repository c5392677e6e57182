//! Integration tests of nuaged's HTTP API on libvirt's simulated `test:///default`, driving
//! `router(state)` with `oneshot`. One test binary, one module per area.

mod support;

mod account;
mod audit;
mod auth;
mod backups;
mod console;
mod events;
mod images;
mod layering;
mod passkeys;
mod resources;
mod service;
mod tokens;
mod unauthorized;
mod users;
mod vms;
