//! With the `ml` feature, gives the `sflow` binary (and this crate's tests) an rpath to
//! libtorch, so they run without `LD_LIBRARY_PATH`. `DEP_TCH_LIBTORCH_LIB` comes from
//! torch-sys, an optional dependency enabled by the feature; without it this does nothing.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}
