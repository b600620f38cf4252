//! The one integration-test binary: every module shares the harness (a
//! private PostgreSQL with a fresh database per test).

mod bench;
mod circuits;
mod cli;
mod daemon;
mod demo;
mod directory;
mod faults;
mod harness;
mod reload;
mod reports;
mod requests;
mod resources;
mod retention;
mod reversibility;
mod rollup;
mod schema;
mod sim;
mod territory;
mod tls;
mod vehicles;
mod web;
mod web_admin;
mod web_exchange;
