//! Gives this crate's own binaries (tests, benches, examples) an rpath to libtorch, so they run
//! without `LD_LIBRARY_PATH`. Crates that depend on sflow-ml link their binaries themselves: they
//! need `LD_LIBRARY_PATH` (printed by scripts/setup-libtorch.sh) or an rpath of their own.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}
