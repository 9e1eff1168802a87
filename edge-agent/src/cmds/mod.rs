//! One module per subcommand.

pub mod agent;
pub mod audit;
pub mod bench;
pub mod check;
pub mod detect;
pub mod emit;
pub mod models;
pub mod output;
pub mod plates;
pub mod probe;
pub mod remote;
pub mod replay;
pub mod resources;
pub mod run;
pub mod schema;
pub mod sign_remote;
pub mod verify;
pub mod version;
pub mod watch;
pub mod zones;
