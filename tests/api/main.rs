//! The one integration-test binary: real servers on loopback, temporary stores.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod auth;
mod bad_input;
mod browser;
mod campaigns;
mod checkout;
mod code_requests;
mod console;
mod crash;
mod customer_pages;
mod digests;
mod distributions;
mod durability;
mod helpers;
mod migration;
mod networks;
mod operations;
mod push;
mod reports;
mod restart;
mod security;
mod tour;
mod users;
mod vouchers;
