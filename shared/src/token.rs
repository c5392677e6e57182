//! Personal API tokens.

use serde::{Deserialize, Serialize};

use crate::TokenId;

/// A personal API token as `GET /tokens` lists it (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiToken {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: TokenId,
    pub name: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
}

/// `POST /tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub name: String,
    /// Never expires when omitted.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

/// The answer to `POST /tokens`: the secret is shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewToken {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: TokenId,
    pub token: String,
    pub name: String,
    pub expires_at: Option<String>,
}
