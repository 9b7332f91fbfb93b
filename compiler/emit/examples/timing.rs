//! Where `build` spends its time on a generated program (docs/performance.md, "Build"):
//! `cargo run --release -p sflow-emit --example timing -- STEPS`. The program is the one of
//! `sflow_benches::binary_tree_program` (copied: the benches crate depends on this one).
use std::time::Instant;
fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let program = sflow_benches_like(n);
    let t = Instant::now();
    let a = sflow_compiler::analysis::analyze(
        "bench.sflow",
        &program,
        &sflow_compiler::sources::NoFiles,
    );
    let t_an = t.elapsed();
    let t = Instant::now();
    if let Some(d) = a.diagnostics.first() {
        eprintln!("{:?}", d);
    }
    let plan = sflow_compiler::lower::lower(&a).expect("lowers");
    let t_lo = t.elapsed();
    let t = Instant::now();
    let b = sflow_emit::build(&plan, &Default::default()).expect("builds");
    let t_em = t.elapsed();
    let t = Instant::now();
    let wt = sflow_emit::workflows::workflow_template(
        &sflow_emit::meta::Context::new(&plan).expect("ctx"),
        &plan.workflows[0],
    );
    let t_obj = t.elapsed();
    let t = Instant::now();
    let y = sflow_emit::yaml::to_yaml(&wt).expect("yaml");
    let t_yaml = t.elapsed();
    let t = Instant::now();
    let j = serde_json::to_string(&wt).expect("json");
    let t_json = t.elapsed();
    let t = Instant::now();
    let ctx = sflow_emit::meta::Context::new(&plan).expect("ctx");
    let t_ctx = t.elapsed();
    let t = Instant::now();
    let mut objs = sflow_emit::Objects::default();
    sflow_emit::storage::plan_config_map(&ctx, &mut objs).expect("cm");
    let t_cm = t.elapsed();
    println!("context {t_ctx:?} plan configmap {t_cm:?}");
    let t = Instant::now();
    let pj = serde_json::to_string_pretty(&plan).expect("json");
    let t_plan = t.elapsed();
    println!("analyze {t_an:?} lower {t_lo:?} emit {t_em:?} (wt objects {t_obj:?}, wt yaml {t_yaml:?} {} bytes, wt json {t_json:?} {} bytes, plan json {t_plan:?} {} bytes) total out {}", y.len(), j.len(), pj.len(), b.manifests.iter().map(|m| m.yaml.len()).sum::<usize>());
}
fn sflow_benches_like(steps: usize) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    out.push_str("app bench {\n  namespace = \"bench\"\n  registry  = \"ghcr.io/acme\"\n}\n\nworkflow tree {\n  param depth: int   = 3\n  param rate:  float = 0.5\n\n");
    for i in 0..steps {
        let _ = writeln!(out, "  step s{i} {{");
        out.push_str("    image = \"python:3.12-slim\"\n");
        if i == 0 {
            out.push_str("    run   = \"python gen.py --depth {{depth}} --rate {{rate}} --out {{outputs.data}}\"\n");
        } else {
            out.push_str("    run   = \"python step.py --depth {{depth}} --rate {{rate}} --in {{inputs.parent}} --out {{outputs.data}}\"\n");
            let _ = writeln!(out, "    input  parent: Dataset = s{}.data", (i - 1) / 2);
        }
        out.push_str("    output data: Dataset\n    resources { cpu = 500m, memory = 512Mi }\n    retry 2 backoff 10s\n  }\n");
    }
    out.push_str("}\n");
    out
}
