//! voucherd: a self-hosted voucher server. One process, one embedded sled store, actors for the
//! moving parts, an actix-web front. See `README.md` and `docs/ARCHITECTURE.md`.

pub mod actors;
pub mod app;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod feeds;
pub mod http;
pub mod reports;
pub mod security;
pub mod service;
pub mod store;
pub mod telemetry;
