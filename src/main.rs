use std::process::ExitCode;

fn main() -> ExitCode {
    rebuy::cli::main()
}
