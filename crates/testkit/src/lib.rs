//! What the workspace's tests share: fresh names, folders and SQLite files ([`temp_dir`],
//! [`private_file`], [`sqlite_file`]), ports ([`free_port`], [`listen`], [`serve`]), a devnet
//! ([`devnet`], [`provider`]), a PostgreSQL database of one's own ([`postgres_database`]), and
//! signed requests ([`signed_cosign`], [`sign`]).
//!
//! A dev-dependency only: no crate may depend on it otherwise, so it is never in a release
//! build. Its helpers panic with a message saying what went wrong (and what to install): a
//! test that cannot run fails, it never skips.

mod devnet;
mod files;
mod ports;
mod postgres;
mod requests;
mod serve;

pub use devnet::{devnet, provider, provider_with};
pub use files::{SqliteFile, private_file, sqlite_file, temp_dir, unique_name};
pub use ports::free_port;
pub use postgres::{PG_URL_VAR, drop_stale_postgres_databases, postgres_database};
pub use requests::{sign, signed_cosign, signed_cosign_json};
pub use serve::{listen, serve};
