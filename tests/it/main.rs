mod cli;
mod harness;
mod schema;
