//! Personal API tokens.

use serde::{Deserialize, Serialize};

use crate::TokenId;

/// What a token may do: `read` only reads (every state-changing route answers 403), `full` does
/// what its owner does as a tenant, `admin` (an administrator's token only) also administers.
/// Ordered from the narrowest: a token never mints a broader one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TokenScope {
    Read,
    #[default]
    Full,
    Admin,
}

impl TokenScope {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Read => "read",
            TokenScope::Full => "full",
            TokenScope::Admin => "admin",
        }
    }
}

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
    #[serde(default)]
    pub scope: TokenScope,
    /// The client addresses it works from (CIDRs); anywhere when empty.
    #[serde(default)]
    pub allowed_cidrs: Vec<String>,
    /// The address it was last used from.
    #[serde(default)]
    pub last_client: Option<String>,
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
    /// `full` when omitted.
    #[serde(default)]
    pub scope: TokenScope,
    /// Addresses or CIDRs (`203.0.113.7`, `10.0.0.0/8`, `2001:db8::/32`) the token works from;
    /// from anywhere when omitted. At most 32.
    #[serde(default)]
    pub allowed_cidrs: Vec<String>,
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
    pub scope: TokenScope,
    pub allowed_cidrs: Vec<String>,
}
