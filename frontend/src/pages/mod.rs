//! One module per page.

pub mod account;
pub mod admin;
pub mod backups;
pub mod create;
pub mod host;
pub mod login;
pub mod passkeys;
pub mod server;
pub mod servers;
pub mod users;
