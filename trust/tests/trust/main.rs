//! The trust crate's integration suite: the federation file and its
//! errors, and bearer-token verification (algorithms, claims, leeway, the
//! cache of verified tokens).

mod common;
mod federation;
mod verify;
