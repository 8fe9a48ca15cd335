//! vultr-inference-mcp: an MCP server that bridges AI clients to Vultr Serverless
//! Inference (subscriptions, the live model catalog, chat completions with tool calling).

pub mod app;
pub mod audio;
pub mod catalog;
pub mod chat;
pub mod collections;
pub mod compare;
pub mod config;
pub mod conversations;
pub mod delegate;
pub mod doctor;
pub mod fair_share;
pub mod http;
pub mod images;
pub mod keys;
pub mod kind_call;
pub mod local_file;
pub mod mcp;
pub mod media;
pub mod models;
pub mod observe;
pub mod principal;
pub mod rate_limit;
pub mod retrieval;
pub mod secret;
pub mod setting;
pub mod settings;
pub mod spend;
pub mod stdio;
pub mod store;
pub mod subscriptions;
pub mod tasks;
pub mod vultr;

#[cfg(test)]
mod proptest_strategies;
