//! Parser tests: the north-star program, snapshots of many tiny broken inputs (one line per
//! diagnostic: `CODE line:col-line:col message | label | help`), recovery across declarations
//! and steps, and property tests that parsing never panics and always gives sound spans.

use proptest::prelude::*;
use sflow_compiler::diagnostics::{Code, Diagnostic};
use sflow_compiler::span::{FileId, LineIndex, Span};
use sflow_compiler::syntax::ast::{
    Action, Expr, ExprKind, Item, KindMember, PortSort, StepMember, StrPart, TriggerSource,
    UnaryOp, UseTarget, Workflow,
};
use sflow_compiler::syntax::comments::CommentKind;
use sflow_compiler::syntax::{parse, Parse};

const MNIST: &str = include_str!("../../../examples/mnist/mnist.sflow");

fn parse0(text: &str) -> Parse {
    parse(FileId(0), text)
}

/// One line per diagnostic, then the declarations that parsed.
fn render(text: &str) -> String {
    let parse = parse0(text);
    let index = LineIndex::new(text);
    let mut out = String::new();
    for d in &parse.diagnostics {
        out.push_str(&render_diag(text, &index, d));
        out.push('\n');
    }
    let items: Vec<String> = parse
        .file
        .items
        .iter()
        .map(|i| match i.name() {
            Some(n) => format!("{} {}", i.keyword(), n.name),
            None => i.keyword().to_string(),
        })
        .collect();
    out.push_str(&format!("items: [{}]", items.join(", ")));
    out
}

fn render_diag(text: &str, index: &LineIndex, d: &Diagnostic) -> String {
    let span = d.primary.at.span;
    let a = index.line_col(text, span.start());
    let b = index.line_col(text, span.end());
    format!(
        "{} {}:{}-{}:{} {} | {} | {}",
        d.code,
        a.line,
        a.column,
        b.line,
        b.column,
        d.message,
        d.primary.message,
        d.help.as_deref().unwrap_or("-")
    )
}

/// Renders each case as `>>> input` followed by what it gives.
fn render_cases(cases: &[&str]) -> String {
    cases
        .iter()
        .map(|c| format!(">>> {c}\n{}\n", render(c)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn workflow<'a>(parse: &'a Parse, name: &str) -> &'a Workflow {
    parse
        .file
        .items
        .iter()
        .find_map(|i| match i {
            Item::Workflow(w) if w.name.name == name => Some(w),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no workflow `{name}`"))
}

fn path(e: &Expr) -> String {
    e.as_path()
        .map(|p| {
            p.iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(".")
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// The north-star program

#[test]
fn mnist_parses_without_diagnostics_and_has_the_expected_shape() {
    let parse = parse0(MNIST);
    assert!(parse.diagnostics.is_empty(), "{:#?}", parse.diagnostics);
    let items = &parse.file.items;
    let kinds: Vec<&str> = items.iter().map(|i| i.keyword()).collect();
    assert_eq!(
        kinds,
        [
            "app", "use", "use", "use", "use", "workflow", "service", "agent", "agent", "agent",
            "agent", "trigger", "trigger", "policy", "policy", "policy"
        ]
    );

    // The doc comment is attached to the app, markers stripped.
    let Item::App(app) = &items[0] else {
        panic!("not an app")
    };
    let doc = app.doc.as_ref().map(|d| d.text.as_str());
    assert_eq!(
        doc,
        Some(
            "The Scanflow MNIST case study: keep a digit classifier accurate while the\n\
             incoming images drift, and keep its serving latency under its objective."
        )
    );
    assert_eq!(
        app.fields
            .iter()
            .map(|f| f.name.name.as_str())
            .collect::<Vec<_>>(),
        ["namespace", "registry"]
    );

    let Item::Use(first_use) = &items[1] else {
        panic!("not a use")
    };
    match &first_use.target {
        UseTarget::Path {
            path,
            items: Some(list),
        } => {
            assert_eq!(
                path.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
                ["std", "torch"]
            );
            assert_eq!(
                list.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
                ["train_classifier", "evaluate"]
            );
        }
        other => panic!("{other:?}"),
    }

    let training = workflow(&parse, "training");
    assert_eq!(
        training
            .params()
            .map(|p| p.name.name.as_str())
            .collect::<Vec<_>>(),
        ["epochs", "lr"]
    );
    assert_eq!(
        training
            .steps()
            .map(|s| s.name.name.as_str())
            .collect::<Vec<_>>(),
        ["fit", "report"]
    );
    let fit = training.steps().next().expect("fit");
    assert_eq!(fit.ports(PortSort::Input).count(), 1);
    assert_eq!(fit.ports(PortSort::Output).count(), 1);
    assert_eq!(
        fit.ports(PortSort::Metric)
            .map(|p| p.name.name.as_str())
            .collect::<Vec<_>>(),
        ["accuracy"]
    );
    assert!(fit
        .members
        .iter()
        .any(|m| matches!(m, StepMember::Resources(r) if r.fields.len() == 2)));
    let retry = fit.members.iter().find_map(|m| match m {
        StepMember::Retry(r) => Some(r),
        _ => None,
    });
    let retry = retry.expect("retry");
    assert_eq!(retry.count.kind, ExprKind::Int(2));
    assert!(
        matches!(&retry.backoff, Some(Expr { kind: ExprKind::Suffixed { unit, .. }, .. }) if unit == "s")
    );

    // `run` of `report`: text and interpolations, with spans inside the string.
    let report = training.steps().nth(1).expect("report");
    let run = report.field("run").expect("run field");
    let ExprKind::Str(lit) = &run.value.kind else {
        panic!("run is not a string")
    };
    let parts: Vec<String> = lit
        .parts
        .iter()
        .map(|p| match p {
            StrPart::Text { value, .. } => format!("text {value:?}"),
            StrPart::Interp { expr, span } => {
                assert_eq!(span.text(MNIST), format!("{{{{{}}}}}", path(expr)));
                assert_eq!(expr.span.text(MNIST), path(expr));
                format!("interp {}", path(expr))
            }
        })
        .collect();
    assert_eq!(
        parts,
        [
            "text \"python report.py --model \"",
            "interp inputs.model",
            "text \" --out \"",
            "interp outputs.card"
        ]
    );

    let Item::Service(predictor) = &items[6] else {
        panic!("not a service")
    };
    let replicas = predictor.field("replicas").expect("replicas");
    assert!(matches!(replicas.value.kind, ExprKind::Range { .. }));
    assert_eq!(predictor.slos().count(), 1);

    let Item::Agent(tracker) = &items[7] else {
        panic!("not an agent")
    };
    assert_eq!(
        (tracker.name.name.as_str(), tracker.kind.name.as_str()),
        ("tracker", "Tracker")
    );
    assert_eq!(tracker.fields.len(), 2);

    let Item::Trigger(nightly) = &items[11] else {
        panic!("not a trigger")
    };
    assert!(
        matches!(&nightly.source, TriggerSource::Schedule(s) if s.as_plain().as_deref() == Some("0 2 * * *"))
    );
    assert!(
        matches!(&nightly.action, Action::Run(r) if r.workflow.name == "training" && r.with.is_empty())
    );
    let Item::Trigger(new_data) = &items[12] else {
        panic!("not a trigger")
    };
    match &new_data.source {
        TriggerSource::Every { count, sensor, .. } => {
            assert_eq!(count.kind, ExprKind::Int(1000));
            assert_eq!(path(sensor), "tracker.new_samples");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(&new_data.action, Action::Call(e) if matches!(e.kind, ExprKind::Call { .. })));

    let Item::Policy(scale_out) = &items[15] else {
        panic!("not a policy")
    };
    assert_eq!(scale_out.name.name, "scale_out");
    let hold = scale_out.hold_for.as_ref().expect("for");
    assert!(
        matches!(&hold.kind, ExprKind::Suffixed { digits, unit, .. } if digits == "1" && unit == "m")
    );
    assert_eq!(hold.span.text(MNIST), "1m");
    assert!(scale_out.cooldown.is_some());
    assert!(scale_out.rate_limit.is_none());
    let [Action::Call(call)] = scale_out.then.as_slice() else {
        panic!("one call action")
    };
    let ExprKind::Call { args, .. } = &call.kind else {
        panic!("not a call")
    };
    assert!(matches!(
        &args[1].value.kind,
        ExprKind::Unary { op: UnaryOp::Plus, operand } if operand.kind == ExprKind::Int(1)
    ));

    // Comments are all kept for the formatter.
    assert_eq!(parse.comments.len(), 2);
    assert!(parse.comments.iter().all(|c| c.kind == CommentKind::Doc));
    assert_eq!(parse.file.span, Span::new(0, MNIST.len()));
}

#[test]
fn every_node_span_of_the_north_star_is_sound() {
    let parse = parse0(MNIST);
    for item in &parse.file.items {
        let text = item.span().text(MNIST);
        assert!(
            text.starts_with(item.keyword().split(' ').next().unwrap_or("")),
            "{text}"
        );
        assert!(text.ends_with('}') || !text.contains('{'), "{text}");
        if let Some(name) = item.name() {
            assert_eq!(name.span.text(MNIST), name.name);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Snapshots of broken inputs

#[test]
fn broken_declarations() {
    insta::assert_snapshot!(render_cases(&[
        "step fit",
        "input x: int",
        "workfow w {}",
        "hello world",
        "app {",
        "app a",
        "app a { namespace \"x\" }",
        "app a { namespace = }",
        "app a { 42 }",
        "app a { x = 1",
        "app a {} }",
        "app a {}\ngarbage here",
        "use",
        "use std.",
        "use std.a b",
        "use std.{a b}",
        "type T",
        "type T =",
        "type T = list<int",
        "extern fn f(x: int)",
        "extern fn f(x int) -> int",
        "extern wat",
        "workflow step { }",
        "app in {}",
        "agent kind: Tracker {}",
        "use std.x.{step, ok}",
    ]));
}

#[test]
fn broken_workflows_and_steps() {
    insta::assert_snapshot!(render_cases(&[
        "workflow w { step s { input x: }",
        "workflow w {",
        "workflow { }",
        "workflow w { foo }",
        "workflow w { param p int }",
        "workflow w { param p: int = }",
        "workflow w { param p: int in }",
        "workflow w { step {} }",
        "workflow w { step s image = 1 }",
        "workflow w { step s { 42 } }",
        "workflow w { step s { input x Model } }",
        "workflow w { step s { input x: Model = } }",
        "workflow w { step s { output m: Model = x } }",
        "workflow w { step s { retry } }",
        "workflow w { step s { retry 2 backoff } }",
        "workflow w { step s { retry 2 backof 3s } }",
        "workflow w { step s { timeout } }",
        "workflow w { step s { resources { cpu 2 } } }",
        "workflow w { step s { input in: int } }",
        "workflow w { step s {} } }",
        "workflow w { step s {} junk }",
        "workflow w {\n  step b {\n    after = [a\n  }\n  step c { image = \"x\" }\n}",
        "workflow w {\n  step b {\n    image \"x\"\n    run = \n    retry 2\n  }\n}",
    ]));
}

#[test]
fn broken_services_agents_triggers_and_policies() {
    insta::assert_snapshot!(render_cases(&[
        "service s { slo }",
        "service s { replicas = 1.. }",
        "agent a Tracker {}",
        "agent a: {}",
        "agent a: Tracker { watch }",
        "agent kind K { config x: }",
        "agent kind K { config x: int? = 3 }",
        "agent kind K { config x: ? }",
        "agent kind K { sensor }",
        "agent kind K { action a(x int) }",
        "agent kind K { action a() -> }",
        "agent kind K { wat }",
        "trigger t",
        "trigger t schedule \"x\"",
        "trigger t: foo",
        "trigger t: schedule foo",
        "trigger t: schedule \"x\" run w",
        "trigger t: schedule \"x\" ->",
        "trigger t: every 1000 -> run w",
        "trigger t: every -> run w",
        "trigger t: on -> run w",
        "trigger t: on a.b -> run",
        "trigger t: on a.b -> a.b",
        "trigger t: on a.b -> run w with { a }",
        "policy p { when a > 1 }",
        "policy p { a > 1 }",
        "policy p { when }",
        "policy p { when a > 1 then }",
        "policy p { when a > 1 for 1m }",
        "policy p { when a then b() max 3 1h }",
        "policy p { when a then b() c() }",
        "policy p { when a then b() cooldown 1m cooldown 2m }",
        "policy p { when a then b() max 1 per 1h max 2 per 1h }",
        "policy p { when a then b }",
    ]));
}

#[test]
fn broken_expressions() {
    insta::assert_snapshot!(render_cases(&[
        "app a { x = 1 + }",
        "app a { x = * 2 }",
        "app a { x = [1 2] }",
        "app a { x = [1, }",
        "app a { x = f(a b) }",
        "app a { x = f(a = ) }",
        "app a { x = (1 + 2 }",
        "app a { x = a. }",
        "app a { x = { a } }",
        "app a { x = @ }",
        "app a { x = step }",
        "app a { x = 1 < 2 < 3 }",
        "app a { x = 1..2..3 }",
        "app a { x = a b }",
    ]));
}

#[test]
fn broken_literals_and_lexical_errors() {
    insta::assert_snapshot!(render_cases(&[
        "app a { x = \"abc }",
        "app a { x = \"one\ntwo\" }\nuse std.a",
        "app a { x = \"a\\qb\" }",
        "app a { x = \"{{ a \" }",
        "app a { x = \"{{ }}\" }",
        "app a { x = \"{{ a + }}\" }",
        "app a { x = \"{{ a b }}\" }",
        "app a { x = \"x {{ a. }} y\" }",
        "app a { x = 1e }",
        "app a { x = 1E }",
        "app a { x = 99999999999999999999 }",
        "app a { x = 1e999 }",
        "app a { x = 10_000 }",
        "app a { x = 4Gi2 }",
        "/* open",
        "app a {} /* open",
        "app a { x = 1 } // fine \"",
    ]));
}

// ---------------------------------------------------------------------------------------------
// Recovery: one run reports every independent error and keeps the good declarations

const BROKEN_FILE: &str = r#"/// A broken program: five independent mistakes.
app demo {
  namespace = "demo"
}

use std.data.mnist

workflow training {
  param epochs: int = 3

  step fit {
    image = "python:3.12"
    input data: Dataset = mnist(split = "train")
    output model: = Model
  }

  step evaluate {
    input model: Model = fit.model
    retry 2 backof 10s
  }

  step report {
    image = "python:3.12-slim"
    run   = "python report.py {{ inputs.model }}"
  }
}

service predictor {
  model    = training.fit.model
  replicas = 1..
}

agent tracker: Tracker { watch = predictor }

trigger nightly: schedule "0 2 * * *" run training

policy retrain {
  when tracker.new_samples > 100
  then planner.improve(tracker.batch)
}

policy broken {
  when tracker.new_samples > 100
}
"#;

#[test]
fn recovery_reports_every_error_and_keeps_the_rest() {
    let parse = parse0(BROKEN_FILE);
    let index = LineIndex::new(BROKEN_FILE);
    let rendered: Vec<String> = parse
        .diagnostics
        .iter()
        .map(|d| render_diag(BROKEN_FILE, &index, d))
        .collect();
    insta::assert_snapshot!(format!(
        "{}\n{}",
        rendered.join("\n"),
        render(BROKEN_FILE).lines().last().unwrap_or("")
    ));
    assert_eq!(parse.diagnostics.len(), 5);
    assert!(parse.diagnostics.iter().all(|d| d.code == Code::E0001));
    // The workflow survives with all its steps; the broken ones keep the members that parsed.
    let training = workflow(&parse, "training");
    assert_eq!(training.params().count(), 1);
    let steps: Vec<(&str, usize)> = training
        .steps()
        .map(|s| (s.name.name.as_str(), s.members.len()))
        .collect();
    assert_eq!(steps, [("fit", 2), ("evaluate", 2), ("report", 2)]);
    assert_eq!(
        parse
            .file
            .items
            .first()
            .and_then(|i| i.doc())
            .map(|d| d.text.as_str()),
        Some("A broken program: five independent mistakes.")
    );
}

#[test]
fn missing_braces_are_contained() {
    insta::assert_snapshot!(render_cases(&[
        "workflow w {\n  step a {\n    image = \"x\"\n  step b { run = \"y\" }\n}\nservice s { model = w.b.m }",
        "app a {\n  x = 1\n\nworkflow w {}\n",
        "workflow w {\n  step a { image = \"x\" }\n\npolicy p { when a then b() }\n",
        "workflow w {\n  step a { run = \"x }\n  step b { run = \"y\" }\n}",
        "app a { x = }\n\nworkflow step {}\n\ntrigger t: schedule \"0 2 * * *\" run w\n\nuse std.data.mnist\n",
    ]));
}

#[test]
fn broken_steps_keep_their_good_members() {
    let text = "workflow w {\n  step s {\n    image = \n    input x: \n    output y: File\n    retry 2\n  }\n  step t { image = \"x\" }\n}\n";
    insta::assert_snapshot!(render(text));
    let parse = parse0(text);
    let w = workflow(&parse, "w");
    let s = w.steps().next().expect("step s");
    // Later stages can tell that `s` was only partly parsed; `t` is intact.
    assert!(parse.has_error_within(s.span));
    assert!(!parse.has_error_within(w.steps().nth(1).expect("step t").span));
    assert!(s
        .members
        .iter()
        .any(|m| matches!(m, StepMember::Port(p) if p.name.name == "y")));
    assert!(s.members.iter().any(|m| matches!(m, StepMember::Retry(_))));
    assert_eq!(w.steps().count(), 2);
}

// ---------------------------------------------------------------------------------------------
// Accepted forms beyond the north star

#[test]
fn accepts_the_whole_language() {
    let text = r#"
use "./other.sflow"
use std.data.mnist
type Images = list<list<File>>

workflow tune {
  param lr: float = 0.001 in log(1e-4, 1e-1); param arch: string in ["mlp", "cnn"], param n: int = 3 in 1..10
  /// The only step.
  step s {
    image = "x"; run = "y {{ lr }}"
    after = [s], cache = true
    timeout = 5m
    retry = 2
    resources = { cpu = 500m, memory = 512Mi, gpu = 1 }
  }
}

service s {
  model = tune.s.model
  resources { cpu = 1 }
  slo latency.p99 <= 1s
  slo errors < 0.01
  port = 8080
}

agent p: Planner
agent kind Custom {
  config x: int = 1
  config y: string?
  sensor s: Batch
  action go(n: int = 2) -> run tune with { n = n }
  action hook(url: string) -> webhook "http://x"
  action plain()
}

trigger a: webhook "/x" -> run tune with { lr = 0.1, arch = "cnn" }
trigger b: on tune.succeeded -> p.rollback(s)
trigger c: every n tracker.new_samples -> p.scale(s, -1)

policy q {
  when not (a.b > 1 || c == "x") and d != -2.5e+3
  for 10m
  then p.scale(s, +1), p.replace(s, m)
  max 3 per 1h
  cooldown 2m
}

extern fn ks(p_value: ratio = 0.05) -> Detector
extern step train_classifier(arch: string, epochs: int, lr: float) {
  input data: Dataset
  output model: Model
  metric accuracy: ratio
}
"#;
    let parse = parse0(text);
    assert!(parse.diagnostics.is_empty(), "{:#?}", parse.diagnostics);
    assert_eq!(parse.file.items.len(), 13);
    let tune = workflow(&parse, "tune");
    assert_eq!(tune.params().filter(|p| p.space.is_some()).count(), 3);
    let configs: Vec<(&str, bool, bool)> = parse
        .file
        .items
        .iter()
        .filter_map(|i| match i {
            Item::AgentKind(k) => Some(k),
            _ => None,
        })
        .flat_map(|k| &k.members)
        .filter_map(|m| match m {
            KindMember::Config(c) => Some((c.name.name.as_str(), c.optional, c.default.is_some())),
            _ => None,
        })
        .collect();
    assert_eq!(configs, vec![("x", false, true), ("y", true, false)]);
    let step = tune.steps().next().expect("step");
    assert_eq!(
        step.doc.as_ref().map(|d| d.text.as_str()),
        Some("The only step.")
    );
    assert!(step
        .members
        .iter()
        .any(|m| matches!(m, StepMember::Timeout(_))));
    assert!(step
        .members
        .iter()
        .any(|m| matches!(m, StepMember::Resources(r) if r.fields.len() == 3)));
}

// ---------------------------------------------------------------------------------------------
// Properties: never panic, sound spans, no rule names in messages

/// Checks what every parse must satisfy, whatever the input.
fn check_invariants(text: &str) {
    let parse = parse0(text);
    let sound = |span: Span| {
        span.start <= span.end
            && span.end() <= text.len()
            && text.is_char_boundary(span.start())
            && text.is_char_boundary(span.end())
    };
    for d in &parse.diagnostics {
        assert!(sound(d.primary.at.span), "{d:?} in {text:?}");
        assert!(d.secondary.iter().all(|l| sound(l.at.span)), "{d:?}");
        assert!(d.help.is_some(), "{d:?}");
        assert!(
            matches!(d.code, Code::E0001 | Code::E0002 | Code::E0003),
            "{d:?}"
        );
        for needle in [
            "kw_",
            "_decl",
            "lbrace",
            "rbrace",
            "EOI",
            "_name",
            "infix_op",
            "type_expr",
            "Rule",
        ] {
            assert!(
                !d.message.contains(needle) && !d.primary.message.contains(needle),
                "{needle}: {d:?}"
            );
        }
        assert!(
            !d.message.starts_with("internal error"),
            "{d:?} in {text:?}"
        );
    }
    for item in &parse.file.items {
        assert!(sound(item.span()), "{item:?}");
    }
    for c in &parse.comments {
        assert!(sound(c.span));
    }
}

const TOKENS: &[&str] = &[
    "app",
    "use",
    "type",
    "workflow",
    "service",
    "agent",
    "kind",
    "trigger",
    "policy",
    "extern",
    "fn",
    "step",
    "param",
    "input",
    "output",
    "metric",
    "resources",
    "retry",
    "backoff",
    "timeout",
    "slo",
    "config",
    "sensor",
    "action",
    "schedule",
    "every",
    "on",
    "webhook",
    "run",
    "with",
    "when",
    "for",
    "then",
    "cooldown",
    "max",
    "per",
    "in",
    "not",
    "and",
    "or",
    "true",
    "false",
    "x",
    "fit",
    "std",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "<",
    ">",
    ":",
    ",",
    ";",
    "=",
    "==",
    "!=",
    "<=",
    ">=",
    "->",
    ".",
    "..",
    "+",
    "-",
    "*",
    "/",
    "!",
    "&&",
    "||",
    "1",
    "42",
    "0.5",
    "1e-3",
    "1e",
    "250ms",
    "4Gi",
    "99999999999999999999",
    "\"s\"",
    "\"{{ x }}\"",
    "\"{{\"",
    "\"\\q\"",
    "\"",
    "//",
    "/*",
    "*/",
    "///",
    "\n",
    "@",
    "é",
];

fn token_soup() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::sample::select(TOKENS), 0..80),
        any::<bool>(),
    )
        .prop_map(|(tokens, spaced)| tokens.join(if spaced { " " } else { "" }))
}

/// A mutation of the north-star program: delete, insert or duplicate a range.
fn mutated_mnist() -> impl Strategy<Value = String> {
    (
        0..3u8,
        0..MNIST.len(),
        0..40usize,
        prop::sample::select(TOKENS),
    )
        .prop_map(|(op, at, len, token)| {
            let end = (at + len).min(MNIST.len());
            let (a, b) = (&MNIST[..at], &MNIST[at..]);
            match op {
                0 => format!("{a}{}", &MNIST[end..]),
                1 => format!("{a}{token}{b}"),
                _ => format!("{a}{}{b}", &MNIST[at..end]),
            }
        })
}

/// Every span of a syntax tree node, found in the tree's `Debug` rendering (so that no node is
/// forgotten), except the spans of plain text inside string literals (which may start or end
/// with a blank) and of doc comments (which are comments).
fn node_spans(parse: &Parse) -> Vec<Span> {
    let debug = format!("{:?}", parse.file.items);
    let bytes = debug.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    // Whether the next span is that of a `StrPart::Text` or a `Doc`.
    let mut skip_next = false;
    while i < bytes.len() {
        if bytes[i] == b'"' {
            // Skip a quoted string of the rendering (the user's text may hold anything).
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            continue;
        }
        let rest = &debug[i..];
        for prefix in ["Text { value: ", "Doc { text: "] {
            if rest.starts_with(prefix) {
                skip_next = true;
            }
        }
        if let Some(tail) = rest.strip_prefix("Span { start: ") {
            let (start, tail) = tail.split_once(", end: ").unwrap_or(("0", ""));
            let end = tail.split(' ').next().unwrap_or("0");
            let span = Span::new(start.parse().unwrap_or(0), end.parse().unwrap_or(0));
            if !std::mem::take(&mut skip_next) {
                spans.push(span);
            }
            i += "Span { start: ".len();
            continue;
        }
        i += 1;
    }
    spans
}

/// No node's span starts or ends with whitespace or a comment: it runs from its first token to
/// its last, so that diagnostics underline just the construct.
fn check_node_spans(text: &str) {
    let parse = parse0(text);
    for span in node_spans(&parse) {
        let Some(s) = text.get(span.start()..span.end()) else {
            panic!("span {span:?} outside the text or off character boundaries in {text:?}");
        };
        if s.is_empty() {
            continue;
        }
        // A comment at an edge starts with `//` or `/*`, or ends with `*/`. (A lone `/` is a
        // token: a broken node may end with a stray one, as in `workflow app { /`.)
        let starts =
            s.starts_with(char::is_whitespace) || s.starts_with("//") || s.starts_with("/*");
        let ends = s.ends_with(char::is_whitespace) || s.ends_with("*/");
        assert!(
            !starts && !ends,
            "span {span:?} = {s:?} has trivia at an edge"
        );
    }
}

#[test]
fn a_broken_node_may_end_with_a_stray_slash() {
    // Found by the token-soup property: the broken workflow's span ends at the `/`.
    check_node_spans("app param workflow app { /");
    check_node_spans("app a {}\nworkflow w { step s { x = 1 / } }");
}

#[test]
fn node_spans_end_at_their_last_token() {
    let text = "app a {\n  namespace = \"x\" // the namespace\n  registry = \"r\"\n}\ntype T = list<int>  \n\nworkflow w {\n  param p: int = 3 in 1..10  // p\n  param q: int\n  step s {\n    metric accuracy: int\n    output model: Model\n    input data: Dataset = s.model\n    retry 2 backoff 10s  \n    timeout 5m\n    resources { cpu = 1 }\n    image = \"x\" /* image */\n    run = f(a = 1 , b) + 2\n  }\n}\nagent k: Kind\n\ntrigger t: schedule \"x\" -> run w\n\nagent kind K {\n  config c: int = 1\n  sensor s: int\n  action a(x: int = 2 , y: T)\n}\nservice v {\n  slo latency.p95 < 50ms\n  replicas = 1..8\n}\npolicy p {\n  when a > 1\n  for 1m\n  then k.a(1)\n  cooldown 2m\n  max 3 per 1h\n}\nextern fn f(x: int) -> int\n";
    let parse = parse0(text);
    assert!(parse.diagnostics.is_empty(), "{:#?}", parse.diagnostics);
    check_node_spans(text);
    check_node_spans(MNIST);
    // The regression: a port's span used to take in the line break and the next line's indent.
    let w = workflow(&parse, "w");
    let s = w.steps().next().expect("step s");
    let StepMember::Port(metric) = &s.members[0] else {
        panic!("not a port")
    };
    assert_eq!(metric.span.text(text), "metric accuracy: int");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_arbitrary_strings(text in "\\PC{0,200}") {
        check_invariants(&text);
    }

    #[test]
    fn node_spans_have_no_trivia_at_their_edges(text in mutated_mnist()) {
        check_node_spans(&text);
    }

    #[test]
    fn node_spans_have_no_trivia_at_their_edges_in_token_soup(text in token_soup()) {
        check_node_spans(&text);
    }

    #[test]
    fn never_panics_on_token_soup(text in token_soup()) {
        check_invariants(&text);
    }

    #[test]
    fn never_panics_on_mutations_of_the_north_star(text in mutated_mnist()) {
        check_invariants(&text);
    }
}

#[test]
fn odd_inputs_do_not_panic() {
    for text in [
        "",
        " ",
        "\n",
        "\u{FEFF}app a {}",
        "\"",
        "\"\\",
        "\"{{",
        "{{",
        "}}",
        "/*",
        "*/",
        "///",
        "app a { x = \"\\é\" }",
        "app a { x = \"é\\",
        "app\u{0}",
        "app a { x = 1.e5 }",
        "app a { x = 1.5.2 }",
        "trigger t: every 1000tracker.x -> run w",
        "app a { x = \"{{\"{{\"{{\" }",
        "workflow w { step s { input x: list<list<> } }",
        "use std.{}",
    ] {
        check_invariants(text);
    }
}

// ---------------------------------------------------------------------------------------------
// Speed

/// A workflow of `n` steps shaped as a binary tree (step i consumes step (i-1)/2), each with two
/// params, an image, a command, resources and a retry.
fn big_workflow(n: usize) -> String {
    let mut text = String::from("app big { namespace = \"big\" }\n\nworkflow big {\n");
    for i in 0..n {
        text.push_str(&format!(
            "  param lr_{i}: float = 0.001\n  param epochs_{i}: int = 3 in 1..10\n"
        ));
    }
    for i in 0..n {
        text.push_str(&format!(
            "  step s{i} {{\n    image = \"ghcr.io/acme/train:1.{i}\"\n"
        ));
        text.push_str(&format!(
            "    run   = \"python train.py --lr {{{{ lr_{i} }}}} --epochs {{{{ epochs_{i} }}}} --out {{{{ outputs.out }}}}\"\n"
        ));
        if i > 0 {
            text.push_str(&format!("    input data: File = s{}.out\n", (i - 1) / 2));
        }
        text.push_str("    output out: File\n    resources { cpu = 500m, memory = 2Gi }\n    retry 2 backoff 10s\n  }\n");
    }
    text.push_str("}\n");
    text
}

#[test]
fn a_big_workflow_parses() {
    let text = big_workflow(200);
    let parse = parse0(&text);
    assert!(parse.diagnostics.is_empty());
    assert_eq!(workflow(&parse, "big").steps().count(), 200);
}

/// `cargo test --release -p sflow-compiler --test parser -- --ignored --nocapture parse_speed`
#[test]
#[ignore = "timing; run in release"]
fn parse_speed() {
    let text = big_workflow(5000);
    let mut best = std::time::Duration::MAX;
    for _ in 0..5 {
        let start = std::time::Instant::now();
        let parse = parse0(&text);
        best = best.min(start.elapsed());
        assert!(parse.diagnostics.is_empty());
    }
    // Linear: ten times the input takes about ten times as long.
    let small = big_workflow(500);
    let start = std::time::Instant::now();
    let _ = parse0(&small);
    let small_time = start.elapsed();
    println!(
        "5000 steps, {} KiB: best {:?} ({:.1} MiB/s); 500 steps: {:?}",
        text.len() / 1024,
        best,
        text.len() as f64 / best.as_secs_f64() / (1024.0 * 1024.0),
        small_time
    );
}
