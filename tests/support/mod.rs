//! Shared support code for the integration tests.
//!
//! Each test crate includes this with `mod support;` and uses only part of it,
//! so unused helpers must not warn.
#![allow(dead_code)]

pub mod assertions;
pub mod downstream;
pub mod fake_vultr;
#[cfg(unix)]
pub mod http;
pub mod in_process;
pub mod mcp;
pub mod oauth_issuer;
#[cfg(unix)]
pub mod postgres;
pub mod raw;
pub mod session;
