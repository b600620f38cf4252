//! Thin entry point: parse the command line and hand over to the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    resa::cli::main()
}
