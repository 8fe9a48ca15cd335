//! Tool behaviour, tested in process: the server runs in the test's own runtime
//! (`support::in_process`), rmcp's client talks to it over an in-memory pipe, and a fake
//! Vultr answers on loopback. One module per capability. What is about the process
//! (stdio, signals, start-up, logs, files) is tested on the binary in `tests/e2e`.

#[path = "../support/mod.rs"]
mod support;

mod audio;
mod budgets;
mod chat;
mod compare;
mod confirm;
mod continuation;
mod conversations;
mod delegate;
mod fairness;
mod fallback;
mod faults;
mod images;
mod isolation;
mod keys;
mod models;
mod rag;
mod retrieval;
mod streaming;
mod subscriptions;
mod tasks;
mod toolsets;
mod upstream_errors;
