//! End-to-end tests: the real binary over stdio, driven by rmcp's MCP client, against a
//! fake Vultr server on loopback. One module per capability.

#[path = "../support/mod.rs"]
mod support;

mod audio;
mod audit;
#[cfg(unix)]
mod bounds;
mod commands;
mod conversations;
mod delegate;
#[cfg(unix)]
mod doctor;
mod every_kind;
mod example;
mod faults;
mod help;
#[cfg(unix)]
mod http;
#[cfg(unix)]
mod http_auth;
#[cfg(unix)]
mod http_logging;
mod images;
mod metrics;
#[cfg(unix)]
mod newcomer;
#[cfg(unix)]
mod postgres;
mod protocol;
mod rag;
#[cfg(unix)]
mod replicas;
#[cfg(unix)]
mod replicas_shared;
mod retrieval;
mod security;
mod stdio;
#[cfg(unix)]
mod store;
mod tasks;
mod toolsets;
mod traces;
