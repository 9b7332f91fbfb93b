//! The `sflow` binary.

fn main() {
    std::process::exit(sflow_runtime::cli::main());
}
