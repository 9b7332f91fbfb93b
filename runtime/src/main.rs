//! The `sflow` binary.

/// mimalloc rather than the system allocator: the executor allocates and frees per step on
/// several threads, where glibc's malloc was a measurable share of each step's cost (see
/// runtime/Cargo.toml and docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(sflow_runtime::cli::main());
}
