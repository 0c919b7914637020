//! nats-account-server: a drop-in Rust replacement for the Go `nats-account-server`.
//!
//! Data flows one way: [`cli`] → [`config`] → [`server`] (wires and runs) → [`http`] (routes) →
//! [`accounts`] (the rules for reading and storing JWTs) → [`trust`] / [`jwt`] (decode and
//! verify), [`store`] (where JWTs live) and [`notify`] (telling nats-servers over NATS).

pub mod accounts;
pub mod activations;
pub mod cache;
pub mod cli;
pub mod config;
pub mod health;
pub mod http;
pub mod jwt;
pub mod keys;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod migrate;
pub mod notify;
pub mod replica;
pub mod server;
pub mod store;
pub mod tls;
pub mod trust;
pub mod version;
