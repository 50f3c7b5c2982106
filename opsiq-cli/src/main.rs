//! The `opsiq` binary; see the `opsiq_cli` crate.

fn main() -> std::process::ExitCode {
    opsiq_cli::main()
}
