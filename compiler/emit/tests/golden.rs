//! Golden snapshots of the plan and the manifests of every example and of
//! `tests/golden/programs/*.sflow`, kept in `tests/golden/`. Review a change with
//! `INSTA_UPDATE=always cargo test -p sflow-emit --test golden` and `git diff tests/golden`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{golden_programs, golden_templates, plan_of, root};

fn templates_for(name: &str) -> Vec<sflow_emit::templates::UserTemplate> {
    if name == "extensions" {
        golden_templates()
    } else {
        Vec::new()
    }
}

fn check(name: &str, path: &str) {
    let plan = plan_of(path);
    let build = sflow_emit::build(
        &plan,
        &sflow_emit::Options {
            templates: templates_for(name),
        },
    )
    .unwrap();
    assert!(build.warnings.is_empty(), "{name}: {:?}", build.warnings);
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(root().join("tests/golden"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_input_file(path);
    settings.bind(|| {
        insta::assert_snapshot!(format!("{name}.plan"), build.plan_json);
        insta::assert_snapshot!(format!("{name}.manifests"), build.stream());
        insta::assert_snapshot!(format!("{name}.kustomization"), build.kustomization());
    });
}

macro_rules! golden {
    ($($test:ident => $name:literal, $path:literal;)*) => {
        $(
            #[test]
            fn $test() {
                check($name, $path);
            }
        )*

        /// Every example and golden program has its golden test above.
        #[test]
        fn every_program_has_a_golden_test() {
            let listed: Vec<(String, String)> = vec![$(($name.to_string(), $path.to_string())),*];
            let mut listed = listed;
            listed.sort();
            assert_eq!(listed, golden_programs(), "add the new program to the `golden!` list");
        }
    };
}

golden! {
    fraud => "fraud", "examples/fraud/main.sflow";
    mnist => "mnist", "examples/mnist/mnist.sflow";
    sentiment => "sentiment", "examples/sentiment/main.sflow";
    extensions => "extensions", "tests/golden/programs/extensions.sflow";
}
