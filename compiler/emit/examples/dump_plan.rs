//! Development aid: `cargo run -p sflow-emit --example dump_plan -- FILE [plan|stream]`.
use sflow_compiler::analysis::analyze;
use sflow_compiler::sources::{join_relative, LoadedText, SourceLoader};
struct L;
impl SourceLoader for L {
    fn load(&self, from: &str, relative: &str) -> Result<LoadedText, String> {
        let path = join_relative(from, relative);
        std::fs::read_to_string(&path)
            .map(|text| LoadedText { path, text })
            .map_err(|e| e.to_string())
    }
}
fn main() {
    let path = std::env::args().nth(1).unwrap_or_default();
    let what = std::env::args()
        .nth(2)
        .unwrap_or_else(|| "plan".to_string());
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let a = analyze(&path, &text, &L);
    match sflow_compiler::lower::lower(&a) {
        Ok(p) if what == "plan" => {
            println!("{}", serde_json::to_string_pretty(&p).unwrap_or_default())
        }
        Ok(p) => match sflow_emit::build(&p, &Default::default()) {
            Ok(b) => print!("{}", b.stream()),
            Err(e) => eprintln!("{e}"),
        },
        Err(e) => eprintln!("{e} {:?}", a.diagnostics),
    }
}
