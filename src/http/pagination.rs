//! `?limit=&cursor=` and the `{items, next_cursor}` shape every list uses.

use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::error::ApiError;

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 500;

/// `?limit=&cursor=` for lists ordered by id: the cursor is the last id of the previous page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
}

/// A `?limit=` value checked against the bounds every list shares.
pub fn limit(n: Option<u32>) -> Result<usize, ApiError> {
    match n {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT as u32).contains(&n) => Ok(n as usize),
        Some(_) => Err(ApiError::BadRequest(
            "limit must be between 1 and 500".into(),
        )),
    }
}

impl PageQuery {
    pub fn limit(&self) -> Result<usize, ApiError> {
        limit(self.limit)
    }

    /// Cursors over id-ordered trees are the last id seen.
    pub fn after_id(&self) -> Option<Uuid> {
        self.cursor
    }
}

/// The cursor for the page after `items` (none when the page was not full).
pub fn next_cursor<T>(items: &[T], limit: usize, id: impl Fn(&T) -> Uuid) -> Option<String> {
    (items.len() == limit)
        .then(|| items.last().map(|last| id(last).to_string()))
        .flatten()
}
