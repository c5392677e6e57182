//! The end-to-end harness: a real libvirtd, real guests under TCG, the real `nuaged` binary on a
//! free loopback port with its own data dir, and headless Chromium through chromedriver.
//!
//! Everything a test starts is torn down by `Drop`, also when the test fails: daemons get SIGTERM
//! (then SIGKILL), every libvirt domain whose disks lie in a test's temporary folder is destroyed
//! and undefined, and the folder is removed. When a test panics, the daemon's log is printed.
//!
//! One module per concern, everything re-exported from the root: `libvirt`, `scratch`, `guest`,
//! `daemon`, `api` (the one HTTP client of these tests and of the benchmarks), `browser`, `novnc`.

mod api;
mod browser;
mod daemon;
mod guest;
mod libvirt;
mod novnc;
mod scratch;

pub use api::*;
pub use browser::*;
pub use daemon::*;
pub use guest::*;
pub use libvirt::*;
pub use novnc::*;
pub use scratch::*;

use std::path::{Path, PathBuf};

pub use fantoccini;

/// The libvirt URI of the end-to-end tests.
pub const QEMU_SYSTEM: &str = "qemu:///system";

/// The admin password every test daemon is started with.
pub const ADMIN_PASSWORD: &str = "e2e-admin-password";

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}
