//! Every SQL statement of resa, one module per aggregate.
//!
//! Queries are written with sqlx's runtime API (`sqlx::query` with binds)
//! rather than the compile-time macros, so building needs no database and no
//! committed `.sqlx/` data; each module's tests run its statements against a
//! real PostgreSQL instead (see ARCHITECTURE.md).

pub mod admin;
mod anonymise;
pub mod audit;
pub mod bookings;
pub mod cancel;
pub mod catalogue;
pub mod checkin;
pub mod circuits;
pub mod directory;
pub mod equipment;
pub mod export;
pub mod notify;
pub mod occurrences;
pub mod reports;
pub mod requests;
pub mod retention;
pub mod sync;
pub mod territory;
pub mod vehicles;
pub mod web;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

/// The migrations of `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Errors of the store layer. The SQL error is kept as the source for logs;
/// callers match on the variants that have a meaning for them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another occurrence already holds (part of) the slot: the exclusion
    /// constraint refused the write.
    #[error("slot already taken")]
    SlotTaken,
    /// Two transactions got in each other's way (deadlock, serialisation
    /// failure): PostgreSQL undid one of them, which may simply run again.
    #[error("concurrent update, try again")]
    Contention,
    /// A unique key already exists (e.g. a slug or a mailbox address).
    #[error("already exists: {0}")]
    Duplicate(String),
    /// A referenced row does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A CHECK or foreign-key constraint refused the data.
    #[error("invalid data: {0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            let constraint = db.constraint().unwrap_or_default().to_owned();
            match db.code().as_deref() {
                // exclusion_violation
                Some("23P01") => return StoreError::SlotTaken,
                // deadlock_detected, serialization_failure
                Some("40P01") | Some("40001") => return StoreError::Contention,
                // unique_violation
                Some("23505") => return StoreError::Duplicate(constraint),
                // foreign_key_violation
                Some("23503") => return StoreError::NotFound(constraint),
                // check_violation, not_null_violation
                Some("23514") | Some("23502") => return StoreError::Invalid(db.message().to_owned()),
                _ => {}
            }
        }
        if let sqlx::Error::RowNotFound = e {
            return StoreError::NotFound("row".into());
        }
        StoreError::Database(e)
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The handle on the database shared by every task.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
    /// Signs the links of approval messages; without it they carry none.
    links: Option<std::sync::Arc<crate::notify::links::LinkSigner>>,
}

impl Store {
    /// Connects a pool; `url` is a `postgres://` URL.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store> {
        let options = PgConnectOptions::from_str(url)?.application_name("resa");
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Store { pool, links: None })
    }

    pub fn from_pool(pool: PgPool) -> Store {
        Store { pool, links: None }
    }

    /// The same store, signing approval links with `signer`.
    pub fn with_link_signer(mut self, signer: crate::notify::links::LinkSigner) -> Store {
        self.links = Some(std::sync::Arc::new(signer));
        self
    }

    pub fn link_signer(&self) -> Option<&crate::notify::links::LinkSigner> {
        self.links.as_deref()
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the pending migrations (forward only).
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }
}
