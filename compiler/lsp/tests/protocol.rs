//! Protocol-level tests: each starts `sflowc lsp` as a real process and speaks JSON-RPC to it
//! over stdio. Snapshots draw the cursor (`↑`) and the ranges of the answers (`^^^`) into the
//! text, so a reviewer sees where each request was made and what it pointed at.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{json, Value};
use support::{Client, Cursor};

const MNIST: &str = include_str!("../../../examples/mnist/mnist.sflow");

/// `text` with the cursor marker `$0` put `shift` bytes into the first `needle`.
fn at(text: &str, needle: &str, shift: usize) -> String {
    let i = text
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` is not in the text"))
        + shift;
    format!("{}$0{}", &text[..i], &text[i..])
}

/// Starts a server on one file `main.sflow` with a cursor, opens it and waits for its
/// diagnostics.
fn open_one(text: &str) -> (Client, Cursor) {
    let (mut client, cursor) = Client::start(&[("main.sflow", text)]);
    client.open("main.sflow");
    client.diagnostics("main.sflow", Some(1));
    (client, cursor.expect("the fixture has a cursor"))
}

fn draw_diagnostics(client: &Client, path: &str, diagnostics: &[Value]) -> String {
    let text = &client.texts[path];
    let mut out = String::new();
    for d in diagnostics {
        let line = d["range"]["start"]["line"].as_u64().unwrap_or(0) as usize;
        let col = d["range"]["start"]["character"].as_u64().unwrap_or(0) as usize;
        let end = if d["range"]["end"]["line"] == d["range"]["start"]["line"] {
            d["range"]["end"]["character"].as_u64().unwrap_or(0) as usize
        } else {
            col + 1
        };
        let message = d["message"]
            .as_str()
            .unwrap_or("")
            .lines()
            .next()
            .unwrap_or("");
        out.push_str(&format!(
            "{} {}:{}: {message}\n{}\n{}{}\n",
            d["code"].as_str().unwrap_or("?"),
            line + 1,
            col + 1,
            text.lines().nth(line).unwrap_or(""),
            " ".repeat(col),
            "^".repeat(end.saturating_sub(col).max(1))
        ));
    }
    if out.is_empty() {
        out.push_str("(no diagnostics)\n");
    }
    out
}

fn completion_labels(result: &Value) -> String {
    let items = result
        .as_array()
        .cloned()
        .or_else(|| result["items"].as_array().cloned())
        .unwrap_or_default();
    items
        .iter()
        .map(|i| {
            let detail = i["detail"]
                .as_str()
                .map(|d| format!("  — {}", d.lines().next().unwrap_or("")))
                .unwrap_or_default();
            let insert = i["insertText"]
                .as_str()
                .map(|t| format!("  ⟨{t}⟩"))
                .unwrap_or_default();
            format!("{}{insert}{detail}", i["label"].as_str().unwrap_or("?"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn complete(text: &str) -> String {
    let (mut client, cursor) = open_one(text);
    let result = client.request("textDocument/completion", client.at(&cursor));
    let out = format!(
        "{}\n{}\n",
        client.draw_cursor(&cursor),
        completion_labels(&result)
    );
    client.shutdown();
    out
}

// ---------------------------------------------------------------------------------------------
// Diagnostics

#[test]
fn diagnostics_follow_edits_into_a_broken_state_and_back() {
    let (mut client, _) = Client::start(&[("main.sflow", MNIST)]);
    client.open("main.sflow");
    let clean = client.diagnostics("main.sflow", Some(1));
    let mut out = format!(
        "opened:\n{}",
        draw_diagnostics(&client, "main.sflow", &clean)
    );

    let broken = MNIST
        .replace("  step report {", "  step report")
        .replace("predictor.model.accuracy", "predictor.model.acuracy");
    let v = client.change("main.sflow", &broken);
    let diags = client.diagnostics("main.sflow", Some(v));
    out.push_str(&format!(
        "\nbroken (unsaved):\n{}",
        draw_diagnostics(&client, "main.sflow", &diags)
    ));

    let v = client.change("main.sflow", MNIST);
    let diags = client.diagnostics("main.sflow", Some(v));
    out.push_str(&format!(
        "\nrepaired:\n{}",
        draw_diagnostics(&client, "main.sflow", &diags)
    ));
    insta::assert_snapshot!(out);
    client.shutdown();
}

#[test]
fn diagnostics_of_an_imported_file_come_from_its_program() {
    let main = "app demo {\n  namespace = \"demo\"\n}\n\nuse \"./lib/training.sflow\"\n\nservice predictor {\n  model    = training.fit.model\n  replicas = 1..2\n}\n";
    let lib = "use std.torch.train_classifier\nuse std.data.mnist\n\nworkflow training {\n  step fit {\n    uses  = train_classifier(arch = \"mlp\", epochs = 3, lr = 0.001)\n    input data: Dataset = mnist(split = \"train\")\n    timeout 5\n  }\n}\n";
    let (mut client, _) = Client::start(&[("main.sflow", main), ("lib/training.sflow", lib)]);
    client.open("lib/training.sflow");
    let diags = client.diagnostics("lib/training.sflow", Some(1));
    // Checked as part of main.sflow's program: `training` is known, no "missing app".
    insta::assert_snapshot!(draw_diagnostics(&client, "lib/training.sflow", &diags));
    client.shutdown();
}

#[test]
fn an_unsaved_edit_of_an_imported_file_is_what_the_importer_sees() {
    let main = "app demo {\n  namespace = \"demo\"\n}\n\nuse \"./lib.sflow\"\n\nservice predictor {\n  model    = training.fit.model\n  replicas = 1..2\n}\n";
    let lib = "use std.torch.train_classifier\nuse std.data.mnist\n\nworkflow training {\n  step fit {\n    uses  = train_classifier(arch = \"mlp\", epochs = 3, lr = 0.001)\n    input data: Dataset = mnist(split = \"train\")\n  }\n}\n";
    let (mut client, _) = Client::start(&[("main.sflow", main), ("lib.sflow", lib)]);
    client.open("main.sflow");
    let before = client.diagnostics("main.sflow", Some(1));
    client.open("lib.sflow");
    client.diagnostics("lib.sflow", Some(1));
    // Rename the workflow in the unsaved buffer of lib.sflow: main.sflow's reference breaks.
    let v = client.change(
        "lib.sflow",
        &lib.replace("workflow training", "workflow train"),
    );
    let after = loop {
        let d = client.diagnostics("main.sflow", Some(1));
        if !d.is_empty() || v == 0 {
            break d;
        }
    };
    let out = format!(
        "main.sflow before:\n{}\nmain.sflow after the unsaved edit of lib.sflow:\n{}",
        draw_diagnostics(&client, "main.sflow", &before),
        draw_diagnostics(&client, "main.sflow", &after)
    );
    insta::assert_snapshot!(out);
    client.shutdown();
}

#[test]
fn quick_fix_applies_the_did_you_mean_suggestion() {
    let text = MNIST.replace("predictor.model.accuracy", "predictor.model.acuracy");
    let (mut client, _) = Client::start(&[("main.sflow", &text)]);
    client.open("main.sflow");
    let diags = client.diagnostics("main.sflow", Some(1));
    let d = diags
        .iter()
        .find(|d| d["code"] == "E0309")
        .cloned()
        .expect("an E0309");
    let actions = client.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": client.uri("main.sflow") }, "range": d["range"], "context": { "diagnostics": [d] } }),
    );
    let action = &actions[0];
    let edit = &action["edit"]["changes"][client.uri("main.sflow")][0];
    let drawn = client.draw_location(&client.uri("main.sflow"), &edit["range"]);
    insta::assert_snapshot!(format!(
        "{} (preferred: {})\n{drawn}→ {}\n",
        action["title"].as_str().unwrap(),
        action["isPreferred"],
        edit["newText"]
    ));
    client.shutdown();
}

// ---------------------------------------------------------------------------------------------
// Hover

fn hover(text: &str) -> String {
    let (mut client, cursor) = open_one(text);
    let result = client.request("textDocument/hover", client.at(&cursor));
    let value = result["contents"]["value"]
        .as_str()
        .unwrap_or("(no hover)")
        .to_string();
    let out = format!("{}\n{value}\n", client.draw_cursor(&cursor));
    client.shutdown();
    out
}

#[test]
fn hover_on_a_step_reference_shows_its_ports() {
    insta::assert_snapshot!(hover(&at(MNIST, "fit.model\n", 1)));
}

#[test]
fn hover_on_a_std_step_shows_its_doc_comment() {
    insta::assert_snapshot!(hover(&at(MNIST, "train_classifier(arch", 3)));
}

#[test]
fn hover_on_a_prelude_sensor_shows_its_type_and_doc() {
    insta::assert_snapshot!(hover(&at(MNIST, "tracker.batch", 9)));
}

#[test]
fn hover_on_a_service_shows_its_model_and_metrics() {
    insta::assert_snapshot!(hover(&at(MNIST, "predictor.model.accuracy", 2)));
}

#[test]
fn hover_on_a_param_shows_its_type() {
    insta::assert_snapshot!(hover(&at(MNIST, "lr = lr)", 6)));
}

#[test]
fn hover_in_a_broken_file_answers_from_what_parsed() {
    // The last policy does not parse; the step above it still answers.
    let text = format!(
        "{}\npolicy broken {{\n  when >\n",
        at(MNIST, "fit.model\n", 1)
    );
    insta::assert_snapshot!(hover(&text));
}

#[test]
fn hover_on_units_and_builtins() {
    let mut out = String::new();
    for (needle, shift) in [("4Gi", 1), ("30m", 1), ("ratio\n", 2), ("replicas = 1", 2)] {
        out.push_str(&hover(&at(MNIST, needle, shift)));
        out.push('\n');
    }
    insta::assert_snapshot!(out);
}

// ---------------------------------------------------------------------------------------------
// Definition and references

fn definition(files: &[(&str, &str)]) -> String {
    let (mut client, cursor) = Client::start(files);
    let cursor = cursor.unwrap();
    client.open(&cursor.file);
    let result = client.request("textDocument/definition", client.at(&cursor));
    let drawn = match result.get("uri") {
        Some(uri) => client.draw_location(uri.as_str().unwrap(), &result["range"]),
        None => format!("{result}\n"),
    };
    let out = format!("{}\n{drawn}", client.draw_cursor(&cursor));
    client.shutdown();
    out
}

#[test]
fn definition_of_a_step_output() {
    insta::assert_snapshot!(definition(&[("main.sflow", &at(MNIST, "fit.model\n", 5))]));
}

#[test]
fn definition_into_the_standard_library() {
    insta::assert_snapshot!(definition(&[(
        "main.sflow",
        &at(MNIST, "autoencoder_ood(quantile", 4)
    )]));
}

#[test]
fn definition_across_files() {
    let main = "app demo {\n  namespace = \"demo\"\n}\n\nuse \"./common.sflow\"\n\nworkflow w {\n  param p: Sc$0ore = 0.5\n  step s {\n    image = \"busybox:1.36\"\n    run   = \"echo {{p}}\"\n  }\n}\n";
    let common = "/// A share.\ntype Score = ratio\n";
    insta::assert_snapshot!(definition(&[
        ("main.sflow", main),
        ("common.sflow", common)
    ]));
}

#[test]
fn definition_of_an_imported_file() {
    let main = "app demo {\n  namespace = \"demo\"\n}\n\nuse \"./com$0mon.sflow\"\n";
    insta::assert_snapshot!(definition(&[
        ("main.sflow", main),
        ("common.sflow", "type Score = ratio\n")
    ]));
}

#[test]
fn references_of_a_workflow_across_the_program() {
    let (mut client, cursor) = open_one(&at(MNIST, "workflow training", 10));
    let result = client.request(
        "textDocument/references",
        json!({ "textDocument": { "uri": client.uri("main.sflow") }, "position": client.position("main.sflow", cursor.offset), "context": { "includeDeclaration": true } }),
    );
    let mut out = client.draw_cursor(&cursor);
    for loc in result.as_array().unwrap() {
        out.push('\n');
        out.push_str(&client.draw_location(loc["uri"].as_str().unwrap(), &loc["range"]));
    }
    insta::assert_snapshot!(out);
    client.shutdown();
}

// ---------------------------------------------------------------------------------------------
// Rename

fn rename(text: &str, new_name: &str) -> String {
    let (mut client, cursor) = open_one(text);
    let mut out = client.draw_cursor(&cursor);
    let prepared = client.request_raw("textDocument/prepareRename", client.at(&cursor));
    if let Some(error) = prepared.get("error") {
        out.push_str(&format!(
            "\nprepare refused: {}\n",
            error["message"].as_str().unwrap_or("")
        ));
        client.shutdown();
        return out;
    }
    let mut params = client.at(&cursor);
    params["newName"] = json!(new_name);
    let response = client.request_raw("textDocument/rename", params);
    match response.get("error") {
        Some(error) => out.push_str(&format!(
            "\nrename to `{new_name}` refused: {}\n",
            error["message"].as_str().unwrap_or("")
        )),
        None => {
            let changes = response["result"]["changes"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            let mut edits: Vec<(String, Value)> = Vec::new();
            for (uri, list) in changes {
                for e in list.as_array().unwrap() {
                    edits.push((uri.clone(), e.clone()));
                }
            }
            edits.sort_by_key(|(uri, e)| {
                (
                    uri.clone(),
                    e["range"]["start"]["line"].as_u64(),
                    e["range"]["start"]["character"].as_u64(),
                )
            });
            out.push_str(&format!(
                "\nrename to `{new_name}`: {} edits\n",
                edits.len()
            ));
            for (uri, e) in edits {
                out.push_str(&client.draw_location(&uri, &e["range"]));
            }
        }
    }
    client.shutdown();
    out
}

#[test]
fn rename_a_step_everywhere_including_templates() {
    let text = MNIST.replace(
        "run    = \"python report.py",
        "run    = \"python report.py --epochs {{epochs}}",
    );
    insta::assert_snapshot!(rename(&at(&text, "param epochs", 6), "num_epochs"));
}

#[test]
fn rename_a_step() {
    insta::assert_snapshot!(rename(&at(MNIST, "fit.model\n", 1), "train"));
}

#[test]
fn rename_refuses_collisions_keywords_invalid_names_and_the_stdlib() {
    let mut out = rename(&at(MNIST, "step fit", 5), "report");
    out.push('\n');
    out.push_str(&rename(&at(MNIST, "step fit", 5), "step"));
    out.push('\n');
    out.push_str(&rename(&at(MNIST, "step fit", 5), "2fit"));
    out.push('\n');
    out.push_str(&rename(&at(MNIST, "Tracker  {", 1), "Watcher"));
    insta::assert_snapshot!(out);
}

// ---------------------------------------------------------------------------------------------
// Completion, in each position

#[test]
fn completion_of_declaration_keywords_at_the_top_level() {
    insta::assert_snapshot!(complete(&format!("{MNIST}\nwo$0")));
}

#[test]
fn completion_of_names_in_scope() {
    insta::assert_snapshot!(complete(
        &MNIST.replace("when checker.picked.size > 100", "when $0")
    ));
}

#[test]
fn completion_of_the_configs_of_an_agent_kind() {
    insta::assert_snapshot!(complete(&MNIST.replace(
        "agent planner:  Planner  { target = predictor }",
        "agent planner:  Planner  { $0 }"
    )));
}

/// The north-star program with an Improver that tunes (an objective, TPE, a search space).
fn tuning_program() -> String {
    MNIST
        .replace(
            "labels = oracle(mnist(split = \"test\")) }",
            "labels = oracle(mnist(split = \"test\")), objective = maximize(training.fit.accuracy) }",
        )
        .replace("param epochs: int   = 3", "param epochs: int   = 3 in 1..10")
}

#[test]
fn completion_in_an_improver_offers_the_tuning_configs() {
    insta::assert_snapshot!(complete(&MNIST.replace(
        "agent improver: Improver { retrain = training, labels = oracle(mnist(split = \"test\")) }",
        "agent improver: Improver { retrain = training, $0 }"
    )));
}

#[test]
fn completion_of_an_objective_and_a_search_offers_the_prelude_functions() {
    let text = tuning_program();
    let mut out = complete(&text.replace(
        "objective = maximize(training.fit.accuracy)",
        "objective = $0",
    ));
    out.push('\n');
    out.push_str(&complete(&text.replace(
        "objective = maximize(training.fit.accuracy)",
        "search = $0",
    )));
    insta::assert_snapshot!(out);
}

#[test]
fn hover_on_a_param_shows_its_search_space() {
    insta::assert_snapshot!(hover(&at(&tuning_program(), "epochs, lr = lr)", 2)));
}

#[test]
fn hover_on_maximize_shows_its_signature_and_doc() {
    insta::assert_snapshot!(hover(&at(&tuning_program(), "maximize(", 3)));
}

#[test]
fn completion_of_sensors_after_an_agent() {
    insta::assert_snapshot!(complete(
        &MNIST.replace("when checker.picked.size > 100", "when checker.$0")
    ));
}

#[test]
fn completion_of_actions_after_then() {
    insta::assert_snapshot!(complete(
        &MNIST.replace("then improver.improve(checker.picked)", "then $0")
    ));
}

#[test]
fn completion_of_actions_of_an_agent_after_then() {
    insta::assert_snapshot!(complete(
        &MNIST.replace("then planner.scale(predictor, +1)", "then planner.$0")
    ));
}

#[test]
fn completion_of_values_by_the_type_of_the_field() {
    // A Service config offers services; a Detector config the std detectors (importing the
    // one picked); a service's model the Model outputs of every step.
    let mut out = complete(&MNIST.replace("target = predictor }", "target = $0 }"));
    out.push('\n');
    out.push_str(&complete(&MNIST.replace(
        "detector = autoencoder_ood(quantile = 0.99)",
        "detector = $0",
    )));
    out.push('\n');
    out.push_str(&complete(
        &MNIST.replace("model    = training.fit.model", "model    = $0"),
    ));
    insta::assert_snapshot!(out);
}

#[test]
fn completion_of_step_outputs_after_a_step() {
    insta::assert_snapshot!(complete(&MNIST.replace(
        "input  model: Model = fit.model",
        "input  model: Model = fit.$0"
    )));
}

#[test]
fn completion_of_outputs_and_metrics_after_workflow_step() {
    insta::assert_snapshot!(complete(
        &MNIST.replace("when checker.picked.size > 100", "when training.fit.$0")
    ));
}

#[test]
fn completion_of_params_inside_a_template() {
    insta::assert_snapshot!(complete(&MNIST.replace(
        "--out {{outputs.card}}\"",
        "--out {{outputs.card}} --epochs {{$0\""
    )));
}

#[test]
fn completion_of_inputs_inside_a_template() {
    insta::assert_snapshot!(complete(
        &MNIST.replace("--model {{inputs.model}}", "--model {{inputs.$0}}")
    ));
}

#[test]
fn completion_of_step_fields() {
    insta::assert_snapshot!(complete(
        &MNIST.replace("    timeout 30m\n", "    timeout 30m\n    $0\n")
    ));
}

#[test]
fn completion_of_types_and_kinds() {
    let mut out = complete(&MNIST.replace("param lr:     float = 0.001", "param lr: $0"));
    out.push('\n');
    out.push_str(&complete(&format!("{MNIST}\nagent extra: $0")));
    insta::assert_snapshot!(out);
}

#[test]
fn completion_of_std_modules_and_items_after_use() {
    let mut out =
        complete(&MNIST.replace("use std.labels.oracle", "use std.labels.oracle\nuse std.$0"));
    out.push('\n');
    out.push_str(&complete(&MNIST.replace(
        "use std.labels.oracle",
        "use std.labels.oracle\nuse std.detectors.$0",
    )));
    insta::assert_snapshot!(out);
}

#[test]
fn completion_on_half_typed_code_still_knows_the_program() {
    // The policy being typed does not parse; the rest of the program still answers.
    insta::assert_snapshot!(complete(&format!(
        "{MNIST}\npolicy half {{\n  when improver.$0"
    )));
}

#[test]
fn completion_of_argument_names_in_a_std_call() {
    insta::assert_snapshot!(complete(
        &MNIST.replace("autoencoder_ood(quantile = 0.99)", "autoencoder_ood($0)")
    ));
}

// ---------------------------------------------------------------------------------------------
// Signature help, symbols, semantic tokens, formatting, the stdlib

#[test]
fn signature_help_for_std_calls_and_actions() {
    let mut out = String::new();
    for text in [
        MNIST.replace("epochs = epochs, lr = lr)", "epochs = epochs, $0lr = lr)"),
        MNIST.replace(
            "planner.scale(predictor, +1)",
            "planner.scale(predictor, $0+1)",
        ),
    ] {
        let (mut client, cursor) = open_one(&text);
        let help = client.request("textDocument/signatureHelp", client.at(&cursor));
        let sig = &help["signatures"][0];
        let active = help["activeParameter"].as_u64().unwrap_or(99) as usize;
        let param = match &sig["parameters"][active]["label"] {
            Value::Array(offsets) => {
                let label: Vec<u16> = sig["label"].as_str().unwrap().encode_utf16().collect();
                let (a, b) = (
                    offsets[0].as_u64().unwrap() as usize,
                    offsets[1].as_u64().unwrap() as usize,
                );
                String::from_utf16_lossy(&label[a..b])
            }
            other => other.to_string(),
        };
        out.push_str(&format!(
            "{}\n{}\nactive: {param}\n\n",
            client.draw_cursor(&cursor),
            sig["label"].as_str().unwrap()
        ));
        client.shutdown();
    }
    insta::assert_snapshot!(out);
}

#[test]
fn document_symbols_outline() {
    let (mut client, _) = Client::start(&[("main.sflow", MNIST)]);
    client.open("main.sflow");
    let result = client.request(
        "textDocument/documentSymbol",
        json!({ "textDocument": { "uri": client.uri("main.sflow") } }),
    );
    fn draw(symbols: &Value, depth: usize, out: &mut String) {
        for s in symbols.as_array().into_iter().flatten() {
            out.push_str(&format!(
                "{}{} ({}) line {}\n",
                "  ".repeat(depth),
                s["name"].as_str().unwrap_or(""),
                s["detail"].as_str().unwrap_or(""),
                s["selectionRange"]["start"]["line"].as_u64().unwrap_or(0) + 1
            ));
            draw(&s["children"], depth + 1, out);
        }
    }
    let mut out = String::new();
    draw(&result, 0, &mut out);
    insta::assert_snapshot!(out);
    client.shutdown();
}

#[test]
fn semantic_tokens_classify_names_by_what_they_resolve_to() {
    let text = "app a {\n  namespace = \"a\"\n}\n\nuse std.detectors.ks\n\n/// W.\nworkflow w {\n  param n: int = 2\n  step s {\n    image = \"busybox:1.36\"\n    run   = \"echo {{n}}\" // say\n    output out: File\n  }\n}\nagent c: Checker { detector = ks() }\npolicy p {\n  when c.drift > 0.5 for 5m\n  then run w\n}\n";
    let (mut client, _) = Client::start(&[("main.sflow", text)]);
    client.open("main.sflow");
    let result = client.request(
        "textDocument/semanticTokens/full",
        json!({ "textDocument": { "uri": client.uri("main.sflow") } }),
    );
    let types = [
        "namespace",
        "type",
        "class",
        "function",
        "method",
        "variable",
        "parameter",
        "property",
        "event",
        "keyword",
        "string",
        "number",
        "comment",
        "operator",
    ];
    let mods = ["declaration", "defaultLibrary", "readonly", "documentation"];
    let data: Vec<u64> = result["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let lines: Vec<&str> = text.lines().collect();
    let (mut line, mut col) = (0usize, 0usize);
    let mut out = String::new();
    for t in data.chunks(5) {
        if t[0] > 0 {
            line += t[0] as usize;
            col = t[1] as usize;
        } else {
            col += t[1] as usize;
        }
        let word: String = lines[line].chars().skip(col).take(t[2] as usize).collect();
        let m: Vec<&str> = (0..4)
            .filter(|b| t[4] & (1 << b) != 0)
            .map(|b| mods[b])
            .collect();
        out.push_str(&format!(
            "{}:{} {word:?} {}{}\n",
            line + 1,
            col + 1,
            types[t[3] as usize],
            if m.is_empty() {
                String::new()
            } else {
                format!(" [{}]", m.join(", "))
            }
        ));
    }
    insta::assert_snapshot!(out);
    client.shutdown();
}

#[test]
fn formatting_rewrites_the_buffer_and_refuses_broken_files() {
    let messy = "app demo { namespace=\"demo\"\nregistry = \"r\" }\nworkflow w {\nparam a: int=1\nparam long_name: string = \"x\"\n  step s { image = \"busybox:1.36\"\n run = \"echo {{a}} {{long_name}}\" } }\n";
    let (mut client, _) = Client::start(&[("main.sflow", messy)]);
    client.open("main.sflow");
    let edits = client.request(
        "textDocument/formatting",
        json!({ "textDocument": { "uri": client.uri("main.sflow") }, "options": { "tabSize": 2, "insertSpaces": true } }),
    );
    let edits = edits.as_array().unwrap();
    assert_eq!(edits.len(), 1);
    let mut out = format!("new text:\n{}", edits[0]["newText"].as_str().unwrap());
    client.change("main.sflow", "app demo {\n  namespace = \n}\n");
    let refused = client.request_raw(
        "textDocument/formatting",
        json!({ "textDocument": { "uri": client.uri("main.sflow") }, "options": { "tabSize": 2, "insertSpaces": true } }),
    );
    out.push_str(&format!(
        "\nbroken: {}\n",
        refused["error"]["message"].as_str().unwrap_or("(no error)")
    ));
    insta::assert_snapshot!(out);
    client.shutdown();
}

#[test]
fn the_stdlib_is_served_read_only_and_answers_hover() {
    let (mut client, cursor) = open_one(&at(MNIST, "train_classifier(arch", 3));
    let def = client.request("textDocument/definition", client.at(&cursor));
    let uri = def["uri"].as_str().unwrap().to_string();
    assert_eq!(uri, "sflow-std:///torch.sflow");
    let text = client
        .request("sflow/stdlibSource", json!({ "uri": uri }))
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("extern step train_classifier"));
    // The editor opens the std file (read-only) and hovers in it.
    client.notify("textDocument/didOpen", json!({ "textDocument": { "uri": uri, "languageId": "sflow", "version": 1, "text": text } }));
    let line = text
        .lines()
        .position(|l| l.contains("output model: Model"))
        .unwrap();
    let hover = client.request(
        "textDocument/hover",
        json!({ "textDocument": { "uri": uri }, "position": { "line": line, "character": 10 } }),
    );
    let value = hover["contents"]["value"].as_str().unwrap_or("");
    assert!(value.contains("output model: Model"), "{value}");
    client.shutdown();
}

// ---------------------------------------------------------------------------------------------
// Robustness

/// Every prefix of the north-star program (cut at every 7th byte), as the user would type it:
/// the server answers every request on each and never dies.
#[test]
fn half_typed_programs_never_crash_the_server() {
    let (mut client, _) = Client::start(&[("main.sflow", "")]);
    client.open("main.sflow");
    let mut cut = 0;
    while cut <= MNIST.len() {
        while !MNIST.is_char_boundary(cut) {
            cut += 1;
        }
        let text = &MNIST[..cut];
        client.change("main.sflow", text);
        let end = client.position("main.sflow", text.len());
        let doc = json!({ "uri": client.uri("main.sflow") });
        for method in [
            "textDocument/completion",
            "textDocument/hover",
            "textDocument/signatureHelp",
            "textDocument/definition",
        ] {
            let response =
                client.request_raw(method, json!({ "textDocument": doc, "position": end }));
            assert!(
                response.get("error").is_none(),
                "{method} at byte {cut}: {response}"
            );
        }
        let response = client.request_raw(
            "textDocument/semanticTokens/full",
            json!({ "textDocument": doc }),
        );
        assert!(
            response.get("error").is_none(),
            "semantic tokens at byte {cut}: {response}"
        );
        cut += 7;
    }
    client.shutdown();
}
