//! The `kiln` binary: parse configuration, set up logging, hand over to [`kiln::server`].

use clap::Parser;
use kiln::config::{Cli, LogFormat};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    kiln::announce::set_format(cli.common.log_format);
    let filter =
        EnvFilter::try_from_env("KILN_LOG").unwrap_or_else(|_| EnvFilter::new("info,wasmtime=warn,cranelift=warn"));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.common.log_format {
        LogFormat::Json => subscriber.json().init(),
        LogFormat::Text => subscriber.init(),
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            kiln::announce::fatal(&format!("cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(kiln::server::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            kiln::announce::fatal(&format!("{e:#}"));
            // The client commands' exit codes (0-3) are part of their interface; all else is 1.
            kiln::client::exit_code(&e)
        }
    }
}
