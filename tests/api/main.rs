//! End-to-end tests of the public API: a real server on 127.0.0.1:0, a temp SQLite file, real
//! HTTP. Each test is named after the promise it checks.

#[path = "../common/mod.rs"]
mod common;

mod action_endpoint;
mod analytics;
mod auth;
mod chats;
mod clients;
mod contacts;
mod durability;
mod envelope;
mod hostile;
mod idempotency;
mod kb;
mod openapi;
mod operations;
mod proactive;
mod ratelimit;
mod spec_examples;
mod tenancy;
mod tickets;
mod webhooks;
