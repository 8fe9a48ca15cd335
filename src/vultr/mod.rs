//! Clients of the two Vultr APIs, their wire types and their one error enum.

pub mod account;
pub mod audio;
pub mod base_url;
pub mod chat;
pub mod error;
pub mod http;
pub mod images;
pub mod inference;
pub mod models;
pub mod retrieval;
pub mod stream;
pub mod vector_store;

pub use base_url::BaseUrl;
