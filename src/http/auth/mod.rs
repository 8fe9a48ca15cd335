//! Who is calling: static bearer tokens and OAuth 2.1 access tokens (JWT).
