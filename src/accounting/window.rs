//! [`Window`]: the `[since, until)` period a report, a costs table or a scenario reads.

use crate::error::{Error, Result};

/// A `[since, until)` time window (ns; both bounds optional).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window {
    pub since: Option<i64>,
    pub until: Option<i64>,
}

impl Window {
    pub fn contains(&self, ts: i64) -> bool {
        self.since.is_none_or(|s| ts >= s) && self.until.is_none_or(|u| ts < u)
    }

    /// Rejects `until <= since`.
    pub fn check(&self) -> Result<()> {
        if let (Some(s), Some(u)) = (self.since, self.until) {
            if u <= s {
                return Err(Error::validation("until", "must be after since"));
            }
        }
        Ok(())
    }
}
