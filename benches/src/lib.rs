//! Generators of benchmark programs, shared by the criterion benches and the tests that
//! check the generated programs are valid (a benchmark of a program full of errors would
//! measure the wrong thing).

use std::fmt::Write;

/// A program with one workflow of `steps` steps shaped as a binary tree: step `i` consumes
/// the output of step `(i - 1) / 2`. Each step has an image, a command using two params,
/// cpu/memory resources and a retry; the last-level outputs are the workflow's results.
pub fn binary_tree_program(steps: usize) -> String {
    let mut out = String::with_capacity(steps * 260);
    out.push_str("app bench {\n  namespace = \"bench\"\n  registry  = \"ghcr.io/acme\"\n}\n\n");
    out.push_str("workflow tree {\n  param depth: int   = 3\n  param rate:  float = 0.5\n\n");
    for i in 0..steps {
        let _ = writeln!(out, "  step s{i} {{");
        out.push_str("    image = \"python:3.12-slim\"\n");
        if i == 0 {
            out.push_str("    run   = \"python gen.py --depth {{depth}} --rate {{rate}} --out {{outputs.data}}\"\n");
        } else {
            let parent = (i - 1) / 2;
            out.push_str(
                "    run   = \"python step.py --depth {{depth}} --rate {{rate}} --in {{inputs.parent}} --out {{outputs.data}}\"\n",
            );
            let _ = writeln!(out, "    input  parent: Dataset = s{parent}.data");
        }
        out.push_str("    output data: Dataset\n");
        out.push_str("    resources { cpu = 500m, memory = 512Mi }\n");
        out.push_str("    retry 2 backoff 10s\n");
        out.push_str("  }\n");
    }
    out.push_str("}\n");
    out
}
