//! Who is calling: every request acts for one tenant, and every Redis key of a job carries it.
//!
//! Kiln runs in single-tenant dev mode until API keys exist: every request is the `default` tenant.

use crate::api::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

/// The tenant of dev mode, and of jobs submitted without keys.
pub const DEFAULT_TENANT: &str = "default";

/// The calling tenant's name: `[a-z0-9_-]{1,64}`, so it is safe inside Redis keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant(pub String);

impl Tenant {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(_parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Tenant(DEFAULT_TENANT.to_owned()))
    }
}
