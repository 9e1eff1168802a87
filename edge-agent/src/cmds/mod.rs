//! One module per subcommand.

pub mod bench;
pub mod check;
pub mod detect;
pub mod models;
pub mod output;
pub mod plates;
pub mod run;
pub mod version;
pub mod zones;
