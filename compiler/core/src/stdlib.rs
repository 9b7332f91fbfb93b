//! The standard library, embedded so that `sflowc` is one self-contained binary.
//!
//! The `.sflow` files under `stdlib/` declare agent kinds, data sources, detectors, label
//! sources and std steps with doc comments; the runtime implements them natively.

/// The prelude: in scope in every program without a `use`.
pub const PRELUDE: StdModule = StdModule {
    name: "prelude",
    path: "<std>/prelude.sflow",
    text: include_str!("../../../stdlib/prelude.sflow"),
};

/// One embedded stdlib module.
#[derive(Clone, Copy, Debug)]
pub struct StdModule {
    /// The module path after `std.` (`torch`), or `prelude`.
    pub name: &'static str,
    /// A display path for diagnostics and go-to-definition.
    pub path: &'static str,
    /// The source text.
    pub text: &'static str,
}

/// The importable modules: `use std.NAME…`.
pub const MODULES: &[StdModule] = &[
    StdModule {
        name: "data",
        path: "<std>/data.sflow",
        text: include_str!("../../../stdlib/data.sflow"),
    },
    StdModule {
        name: "detectors",
        path: "<std>/detectors.sflow",
        text: include_str!("../../../stdlib/detectors.sflow"),
    },
    StdModule {
        name: "labels",
        path: "<std>/labels.sflow",
        text: include_str!("../../../stdlib/labels.sflow"),
    },
    StdModule {
        name: "tracking",
        path: "<std>/tracking.sflow",
        text: include_str!("../../../stdlib/tracking.sflow"),
    },
    StdModule {
        name: "torch",
        path: "<std>/torch.sflow",
        text: include_str!("../../../stdlib/torch.sflow"),
    },
    StdModule {
        name: "explain",
        path: "<std>/explain.sflow",
        text: include_str!("../../../stdlib/explain.sflow"),
    },
];

/// The module named `name` (without `std.`), if it exists.
pub fn module(name: &str) -> Option<&'static StdModule> {
    MODULES.iter().find(|m| m.name == name)
}
