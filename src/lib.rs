//! resa: resource booking for Exchange (rooms, vehicles, equipment), decided by
//! its own rule engine in PostgreSQL. See ARCHITECTURE.md for the map.

pub mod cli;
pub mod clock;
pub mod config;
pub mod devdb;
pub mod domain;
pub mod ews;
pub mod store;
