//! resa: resource booking for Exchange (rooms, vehicles, equipment), decided by
//! its own rule engine in PostgreSQL. See ARCHITECTURE.md for the map.

pub mod bench;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod devdb;
pub mod directory;
pub mod domain;
pub mod ews;
pub mod exchange;
pub mod metrics;
pub mod notify;
pub mod reports;
pub mod resources;
pub mod reversibility;
pub mod runtime;
pub mod sim;
pub mod store;
pub mod sync;
pub mod web;
