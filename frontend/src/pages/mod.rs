//! One module per page.

pub mod host;
pub mod login;
