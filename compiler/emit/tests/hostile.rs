//! Hostile strings — quotes, newlines, `{{`, `: `, `---`, YAML indicators — wherever a program
//! or a plan carries free text can never add, remove or change a field or a document: each
//! stays exactly one string, where it was put.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{documents, plan_of, try_plan};
use serde_yaml_ng::Value;
use sflow_compiler::lower::plan::{Plan, StepRun, TemplatePart};
use sflow_emit::templates::{render, UserTemplate};
use sflow_emit::{build, EmitError, Options};

/// Strings that break naive YAML or template generation.
const HOSTILE: &[&str] = &[
    "a\"b'c",
    "line one\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: pwned",
    "key: value",
    "- item",
    "{{ inputs.parameters.x }} {{{raw}}} {{> partial}}",
    "}}: {{",
    "#comment",
    "&anchor *alias !tag |block >folded %directive @at `tick`",
    "yes",
    "0755",
    "  leading and trailing  ",
    "tab\there\r\nand crlf",
    "\u{85}\u{2028}\u{feff}é😀",
    "",
];

fn kinds_and_names(docs: &[Value]) -> Vec<(String, String)> {
    docs.iter()
        .map(|d| {
            let kind = d["kind"].as_str().unwrap().to_string();
            let name = d["metadata"]["name"].as_str().unwrap().to_string();
            (kind, name)
        })
        .collect()
}

fn find<'d>(docs: &'d [Value], kind: &str, name: &str) -> &'d Value {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn step_container<'d>(wt: &'d Value, step: &str) -> &'d Value {
    let templates = wt["spec"]["templates"].as_sequence().unwrap();
    &templates
        .iter()
        .find(|t| t["name"].as_str() == Some(step))
        .unwrap()["container"]
}

fn env_value<'d>(container: &'d Value, name: &str) -> &'d str {
    let env = container["env"].as_sequence().unwrap();
    env.iter()
        .find(|e| e["name"].as_str() == Some(name))
        .unwrap()["value"]
        .as_str()
        .unwrap()
}

/// The same objects, whatever the strings inside them.
fn assert_same_objects(baseline: &Plan, hostile: &Plan) -> Vec<Value> {
    let base = documents(&build(baseline, &Options::default()).unwrap().stream());
    let out = build(hostile, &Options::default()).unwrap();
    let docs = documents(&out.stream());
    assert_eq!(kinds_and_names(&base), kinds_and_names(&docs));
    // Every file is one document.
    for m in &out.manifests {
        assert_eq!(documents(&m.file_text()).len(), 1, "{}", m.file_name);
    }
    // The plan ConfigMap still holds the plan, exactly.
    let app = sflow_compiler::values::kube_name(&hostile.app.name);
    let cm = find(&docs, "ConfigMap", &format!("{app}-plan"));
    let back: Plan = serde_json::from_str(cm["data"]["plan.json"].as_str().unwrap()).unwrap();
    assert_eq!(&back, hostile);
    docs
}

#[test]
fn hostile_plan_strings_stay_single_values() {
    let baseline = plan_of("examples/mnist/mnist.sflow");
    for (i, s) in HOSTILE.iter().enumerate() {
        let mut plan = baseline.clone();
        plan.app.source.file = format!("dir/{s}.sflow");
        plan.workflows[0].source.file = s.to_string();
        plan.workflows[0].doc = Some(s.to_string());
        plan.app.registry = Some(format!("registry.example.com/{s}"));
        let report = plan.workflows[0]
            .steps
            .iter_mut()
            .find(|st| st.name == "report")
            .unwrap();
        report.env.insert("HOSTILE".to_string(), s.to_string());
        report.env.insert(format!("K{i}: {s}"), "v".to_string());
        report.env_templates.insert(
            "HOSTILE_T".to_string(),
            vec![
                TemplatePart::Text {
                    text: s.to_string(),
                },
                TemplatePart::Param {
                    name: "epochs".to_string(),
                },
            ],
        );
        if let StepRun::Command { image, command } = &mut report.run {
            *image = format!("img:{s}");
            command.push(TemplatePart::Text {
                text: s.to_string(),
            });
        }
        plan.services[0].image = Some(format!("srv:{s}"));

        let docs = assert_same_objects(&baseline, &plan);
        let wt = find(&docs, "WorkflowTemplate", "training");
        assert_eq!(
            wt["metadata"]["annotations"]["sflow.dev/source"].as_str(),
            Some(format!("{s}:13").as_str())
        );
        assert_eq!(
            wt["metadata"]["annotations"]["workflows.argoproj.io/description"].as_str(),
            Some(*s)
        );
        let c = step_container(wt, "report");
        assert_eq!(c["image"].as_str(), Some(format!("img:{s}").as_str()));
        assert_eq!(env_value(c, "HOSTILE"), *s);
        assert_eq!(env_value(c, &format!("K{i}: {s}")), "v");
        assert_eq!(
            env_value(c, "HOSTILE_T"),
            format!("{s}{{{{inputs.parameters.epochs}}}}")
        );
        let script = c["args"][0].as_str().unwrap();
        assert!(
            script.contains(&format!("{}{s}\n) || exit $?", "/outputs/card")),
            "{script}"
        );
        let fit = step_container(wt, "fit");
        assert_eq!(
            fit["image"].as_str(),
            Some(sflow_emit::sflow_image(&plan.app).as_str())
        );
        assert!(sflow_emit::sflow_image(&plan.app)
            .starts_with(&format!("registry.example.com/{}", s.trim_end_matches('/'))));
        let ns = find(&docs, "Namespace", "mnist");
        assert_eq!(
            ns["metadata"]["annotations"]["sflow.dev/source"].as_str(),
            Some(format!("dir/{s}.sflow:3").as_str())
        );
        let server =
            &find(&docs, "Deployment", "predictor")["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(server["image"].as_str(), Some(format!("srv:{s}").as_str()));
    }
}

#[test]
fn hostile_program_strings_stay_single_values() {
    let program = r#"
/// Doc with "quotes", a colon: here, --- dashes, and \{\{ braces }}.
app hostile {
  namespace = "hostile"
  registry  = "registry.example.com/team"
}

workflow w {
  param note: string = "x\"\n---\nkind: Secret\nmetadata: {name: pwned}\n: \{\{ }}"

  /// Step doc: key: value
  step s {
    image = "busybox:1.36"
    run   = "echo \"a: b\" '---' \{\{x}} {{note}}\nkind: Secret\n---\napiVersion: v1 # {{outputs.o}}"
    env   = { X = "y\n---\nkind: Secret", Y = "\"}: {" }
    output o: File
  }
}

trigger t: schedule "0 1 * * *" -> run w with { note = "'\n- injected: true\n{{" }
"#;
    let program = program.replace("{{\" }", "\\{\\{\" }");
    let plan = try_plan("hostile.sflow", &program).unwrap();
    let out = build(&plan, &Options::default()).unwrap();
    let docs = documents(&out.stream());
    assert!(docs.iter().all(|d| d["kind"].as_str() != Some("Secret")));
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "WorkflowTemplate").count(),
        1
    );
    assert_eq!(kinds.iter().filter(|k| **k == "CronWorkflow").count(), 1);

    let wt = find(&docs, "WorkflowTemplate", "w");
    let params = wt["spec"]["arguments"]["parameters"].as_sequence().unwrap();
    assert_eq!(
        params[0]["value"].as_str(),
        Some("x\"\n---\nkind: Secret\nmetadata: {name: pwned}\n: {{ }}")
    );
    let c = step_container(wt, "s");
    assert_eq!(env_value(c, "X"), "y\n---\nkind: Secret");
    assert_eq!(env_value(c, "Y"), "\"}: {");
    let script = c["args"][0].as_str().unwrap();
    assert!(
        script.contains(
            "echo \"a: b\" '---' {{x}} {{inputs.parameters.note}}\nkind: Secret\n---\napiVersion: v1 # /artifacts/runs/{{workflow.name}}/s/outputs/o\n"
        ),
        "{script}"
    );
    let cron = find(&docs, "CronWorkflow", "t");
    let args = cron["spec"]["workflowSpec"]["arguments"]["parameters"]
        .as_sequence()
        .unwrap();
    assert_eq!(args[0]["value"].as_str(), Some("'\n- injected: true\n{{"));
}

#[test]
fn hostile_labels_are_refused_not_emitted() {
    let mut plan = plan_of("examples/mnist/mnist.sflow");
    for s in ["a\nkind: Secret", "x: y", "-", "{{x}}", "a b"] {
        plan.app.labels.insert("team".to_string(), s.to_string());
        assert!(
            matches!(
                build(&plan, &Options::default()),
                Err(EmitError::InvalidLabel { .. })
            ),
            "{s:?}"
        );
    }
}

#[test]
fn hostile_values_in_templates_stay_single_values() {
    for s in HOSTILE {
        // A standard template, with a hostile annotation.
        let ctx = serde_json::json!({
            "namespace": "ns",
            "labels": {"app.kubernetes.io/name": "api"},
            "selector": {"app.kubernetes.io/name": "api"},
            "annotations": {"sflow.dev/source": s, "other": s},
            "target": {"name": "api", "port": 8080, "portName": "http", "metricsPath": s, "minReplicas": 1, "maxReplicas": 2, "cpuUtilization": s},
        });
        for (name, text) in sflow_emit::templates::STD_TEMPLATES {
            let docs = render(name, text, &ctx).unwrap();
            assert_eq!(docs.len(), 1, "{name}");
            assert_eq!(
                docs[0]["metadata"]["annotations"]["other"].as_str(),
                Some(*s),
                "{name}"
            );
            let mut keys: Vec<&str> = docs[0]["metadata"]["annotations"]
                .as_mapping()
                .unwrap()
                .keys()
                .map(|k| k.as_str().unwrap())
                .collect();
            keys.sort_unstable();
            assert_eq!(keys, ["other", "sflow.dev/source"], "{name}");
        }

        // A user template reading hostile plan strings.
        let mut plan = plan_of("examples/mnist/mnist.sflow");
        plan.workflows[0].doc = Some(s.to_string());
        plan.app.registry = Some(s.to_string());
        let template = UserTemplate {
            name: "notes.yaml.hbs".to_string(),
            text: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\n  namespace: {{sflow.namespace}}\n  annotations:\n    doc: {{workflows.0.doc}}\ndata:\n  registry: {{app.registry}}\n  joined: {{concat app.registry \"-\" workflows.0.doc}}\n  all: {{yaml app}}\n"
                .to_string(),
        };
        let out = build(
            &plan,
            &Options {
                templates: vec![template],
            },
        )
        .unwrap();
        let notes = out.manifests.iter().find(|m| m.name == "notes").unwrap();
        let docs = documents(&notes.file_text());
        assert_eq!(docs.len(), 1);
        let cm = &docs[0];
        assert_eq!(cm["metadata"]["annotations"]["doc"].as_str(), Some(*s));
        assert_eq!(cm["data"]["registry"].as_str(), Some(*s));
        assert_eq!(
            cm["data"]["joined"].as_str(),
            Some(format!("{s}-{s}").as_str())
        );
        let data_keys: Vec<&str> = cm["data"]
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap())
            .collect();
        assert_eq!(data_keys, ["registry", "joined", "all"]);
        assert_eq!(cm["data"]["all"]["registry"].as_str(), Some(*s));
    }
}

#[test]
fn templates_that_break_yaml_or_objects_are_refused() {
    let ctx = serde_json::json!({"name": "x\n  injected: true", "ok": "fine"});
    let cases = [
        // A value cannot be spliced into a quoted scalar: the result does not parse.
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: \"{{ok}}-x\"\n",
        // Duplicate keys.
        "apiVersion: v1\nkind: ConfigMap\nkind: Secret\nmetadata:\n  name: a\n",
        // Not an object.
        "- a\n- b\n",
        // A name that is not a DNS name (it names a file).
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{name}}\n",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ../../etc/passwd\n",
        // An invalid label.
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels:\n    team: {{name}}\n",
        // Raw output.
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{{ok}}}\n",
    ];
    for text in cases {
        assert!(render("t.yaml.hbs", text, &ctx).is_err(), "{text}");
    }
}
