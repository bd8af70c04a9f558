//! The `jobnet` binary. It only wires: the command line ([`cli`], one module per command noun)
//! parses arguments and calls the library's facade, `jobnet::Context`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
