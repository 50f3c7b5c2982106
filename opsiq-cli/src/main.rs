//! The `opsiq` binary; see the `opsiq_cli` crate.

/// mimalloc instead of the system allocator: the server allocates and frees many small
/// buffers on every request across many threads, where glibc's arenas fragment and contend
/// (about a fifth of a loaded server's CPU, see `benches/RESULTS.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    opsiq_cli::main()
}
