//! The types of the language (§5 of the spec).

use crate::symbols::DefId;
use std::fmt;

/// A type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Ty {
    /// `int`
    Int,
    /// `float`
    Float,
    /// `ratio`: a float in [0, 1], a subtype of `float`.
    Ratio,
    /// `bool`
    Bool,
    /// `string`
    String,
    /// `duration`
    Duration,
    /// `cpu` quantity
    Cpu,
    /// `memory` quantity
    Memory,
    /// `Dataset` artifact
    Dataset,
    /// `Model` artifact; carries the metric record of the step that produced it, when known.
    Model(Option<DefId>),
    /// `File` artifact
    File,
    /// `Dir` artifact
    Dir,
    /// `Batch`: samples collected at run time, with `.size: int`.
    Batch,
    /// A service (with `.model`, `.latency`, …), the given one when known.
    Service(Option<DefId>),
    /// A workflow, the given one when known.
    Workflow(Option<DefId>),
    /// `Detector` (from `std.detectors`)
    Detector,
    /// `LabelSource` (from `std.labels`)
    LabelSource,
    /// `Tracking`: an experiment tracker (from `std.tracking`)
    Tracking,
    /// `Objective`: what `Improver.tune` optimizes (`maximize(…)`/`minimize(…)`, prelude)
    Objective,
    /// `Search`: a hyper-parameter search strategy (`random_search()`/`tpe(…)`, prelude)
    Search,
    /// `list<T>`
    List(Box<Ty>),
    /// `a..b`
    Range(Box<Ty>),
    /// `{ key = value, … }`
    Record,
    /// A service's latency record (`.p50/.p95/.p99`).
    Latency,
    /// An event (`training.succeeded`), only meaningful after `on`.
    Event,
    /// An error was already reported: compatible with everything, so one mistake gives one
    /// diagnostic, not a cascade.
    Unknown,
}

/// The unit family of a value, for comparisons and arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// int, float, ratio
    Number,
    /// duration
    Duration,
    /// cpu
    Cpu,
    /// memory
    Memory,
    /// string
    Text,
    /// bool
    Truth,
    /// Dataset, Model, File, Dir, Batch
    Artifact,
    /// anything else
    Other,
}

impl Ty {
    /// The type a built-in type name denotes (`list` needs its argument, so it is not here).
    pub fn builtin(name: &str) -> Option<Ty> {
        Some(match name {
            "int" => Ty::Int,
            "float" => Ty::Float,
            "ratio" => Ty::Ratio,
            "bool" => Ty::Bool,
            "string" => Ty::String,
            "duration" => Ty::Duration,
            "cpu" => Ty::Cpu,
            "memory" => Ty::Memory,
            "Dataset" => Ty::Dataset,
            "Model" => Ty::Model(None),
            "File" => Ty::File,
            "Dir" => Ty::Dir,
            "Batch" => Ty::Batch,
            "Service" => Ty::Service(None),
            "Workflow" => Ty::Workflow(None),
            "Detector" => Ty::Detector,
            "LabelSource" => Ty::LabelSource,
            "Tracking" => Ty::Tracking,
            "Objective" => Ty::Objective,
            "Search" => Ty::Search,
            _ => return None,
        })
    }

    /// The unit family.
    pub fn family(&self) -> Family {
        match self {
            Ty::Int | Ty::Float | Ty::Ratio => Family::Number,
            Ty::Duration => Family::Duration,
            Ty::Cpu => Family::Cpu,
            Ty::Memory => Family::Memory,
            Ty::String => Family::Text,
            Ty::Bool => Family::Truth,
            Ty::Dataset | Ty::Model(_) | Ty::File | Ty::Dir | Ty::Batch => Family::Artifact,
            _ => Family::Other,
        }
    }

    /// Whether this is an artifact type (what steps consume and produce).
    pub fn is_artifact(&self) -> bool {
        self.family() == Family::Artifact
    }

    /// Whether a step may output this type (`Batch` is runtime-only).
    pub fn is_step_output(&self) -> bool {
        matches!(
            self,
            Ty::Dataset | Ty::Model(_) | Ty::File | Ty::Dir | Ty::Unknown
        )
    }

    /// Whether this is `int`, `float` or `ratio`.
    pub fn is_number(&self) -> bool {
        self.family() == Family::Number
    }

    /// Whether a value of type `self` may stand where `expected` is required.
    pub fn fits(&self, expected: &Ty) -> bool {
        match (self, expected) {
            (Ty::Unknown, _) | (_, Ty::Unknown) => true,
            (Ty::Int, Ty::Float) | (Ty::Ratio, Ty::Float) => true,
            (Ty::Model(_), Ty::Model(_)) => true,
            (Ty::Service(a), Ty::Service(b)) | (Ty::Workflow(a), Ty::Workflow(b)) => {
                a.is_none() || b.is_none() || a == b
            }
            (Ty::List(a), Ty::List(b)) | (Ty::Range(a), Ty::Range(b)) => a.fits(b),
            (a, b) => a == b,
        }
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Int => f.write_str("int"),
            Ty::Float => f.write_str("float"),
            Ty::Ratio => f.write_str("ratio"),
            Ty::Bool => f.write_str("bool"),
            Ty::String => f.write_str("string"),
            Ty::Duration => f.write_str("duration"),
            Ty::Cpu => f.write_str("cpu"),
            Ty::Memory => f.write_str("memory"),
            Ty::Dataset => f.write_str("Dataset"),
            Ty::Model(_) => f.write_str("Model"),
            Ty::File => f.write_str("File"),
            Ty::Dir => f.write_str("Dir"),
            Ty::Batch => f.write_str("Batch"),
            Ty::Service(_) => f.write_str("Service"),
            Ty::Workflow(_) => f.write_str("Workflow"),
            Ty::Detector => f.write_str("Detector"),
            Ty::LabelSource => f.write_str("LabelSource"),
            Ty::Tracking => f.write_str("Tracking"),
            Ty::Objective => f.write_str("Objective"),
            Ty::Search => f.write_str("Search"),
            Ty::List(t) => write!(f, "list<{t}>"),
            Ty::Range(t) => write!(f, "range of {t}"),
            Ty::Record => f.write_str("record"),
            Ty::Latency => f.write_str("latency record"),
            Ty::Event => f.write_str("event"),
            Ty::Unknown => f.write_str("unknown"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_is_a_float_but_not_the_reverse() {
        assert!(Ty::Ratio.fits(&Ty::Float));
        assert!(!Ty::Float.fits(&Ty::Ratio));
        assert!(Ty::Int.fits(&Ty::Float));
        assert!(!Ty::Duration.fits(&Ty::Int));
        assert!(Ty::Unknown.fits(&Ty::Duration));
        assert!(Ty::List(Box::new(Ty::Ratio)).fits(&Ty::List(Box::new(Ty::Float))));
    }
}
