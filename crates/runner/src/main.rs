//! `nucleus-run`: run a command (or report the machine) in a nucleus sandbox.

mod cli;
mod doctor;
mod generate;
mod logging;
mod output;
mod remote;
mod sessions;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => {
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(nucleus_runner::exit::SETUP_FAILED as u8);
        }
    };
    if let Err(warning) = logging::init(cli.log_level, cli.log_format) {
        eprintln!("nucleus-run: warning: {warning}");
    }
    if let Some(warning) = nucleus_runner::guard::ignored_env_warning() {
        eprintln!("nucleus-run: warning: {warning}");
    }
    let code = match cli.sub {
        Some(cli::Sub::Doctor {
            json,
            verbose,
            bind,
            runsc,
            from_json,
        }) => doctor::run(&doctor::Options {
            json,
            verbose,
            binds: bind,
            runsc,
            from_json,
        }),
        Some(cli::Sub::Seccomp { cmd }) => output::seccomp(cmd),
        Some(cli::Sub::Completions { shell }) => generate::completions(shell),
        Some(cli::Sub::Man) => generate::man(),
        Some(cli::Sub::Serve {
            socket,
            max_sandboxes,
            netns_pool,
            spares,
            request_timeout,
        }) => output::serve(socket, max_sandboxes, netns_pool, spares, request_timeout),
        Some(cli::Sub::Session { cmd }) => sessions::run(cmd),
        None => output::run(cli.run),
    };
    ExitCode::from(code as u8)
}
