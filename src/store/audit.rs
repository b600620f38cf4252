//! The append-only audit log: who did what to which object, and when.

use super::{Result, Store};
use chrono::{DateTime, Utc};

impl Store {
    /// Appends one audit entry. The table refuses updates and deletes.
    pub async fn record_audit(
        &self,
        at: DateTime<Utc>,
        actor: &str,
        action: &str,
        object_kind: &str,
        object_id: Option<&str>,
        details: serde_json::Value,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (at, actor, action, object_kind, object_id, details) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(at)
        .bind(actor)
        .bind(action)
        .bind(object_kind)
        .bind(object_id)
        .bind(details)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
