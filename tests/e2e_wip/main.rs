//! TEMPORARY scratch target (helper session): compiles the new e2e modules while
//! tests/e2e is being edited by someone else. Deleted when done.

#[path = "../support/mod.rs"]
mod support;
