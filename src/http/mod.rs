//! The streamable HTTP transport: the same MCP server for remote clients, behind Host and
//! Origin checks and authentication, each request acting for its principal.

pub mod auth;
