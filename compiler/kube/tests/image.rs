//! The sflow image (the repository's `Dockerfile`) and the manifests that run it agree: no
//! Docker engine runs here, so this reads both and compares them — entrypoint and command,
//! user, ports, the directories volumes are mounted on, the working directory and the MNIST
//! copy `sflow data` reads, `HOME`, the version tag, the libtorch files, and the `sflow`
//! subcommands the manifests call. `scripts/lint-dockerfile.sh` lints the Dockerfile (hadolint).

mod common;

use common::{build, root, TestResult};
use serde_json::Value;
use sflow_emit::conventions::{ARTIFACTS_MOUNT, PLAN_MOUNT, RUN_AS_ID, TMP_MOUNT};
use sflow_emit::SFLOW_VERSION;
use std::collections::BTreeSet;

/// One Dockerfile instruction: its keyword (upper case) and its arguments, continuation lines
/// joined and comment lines dropped.
#[derive(Debug)]
struct Instruction {
    keyword: String,
    args: String,
}

fn instructions(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let (keyword, args) = current
            .split_once(char::is_whitespace)
            .unwrap_or((&current, ""));
        out.push(Instruction {
            keyword: keyword.to_ascii_uppercase(),
            args: args.trim().to_string(),
        });
        current.clear();
    }
    out
}

/// The instructions of the last stage (the image itself).
fn final_stage(all: &[Instruction]) -> &[Instruction] {
    let start = all.iter().rposition(|i| i.keyword == "FROM").unwrap_or(0);
    &all[start..]
}

/// Every container (a mapping with `image`) running the sflow image, in every object.
fn sflow_containers<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    match value {
        Value::Object(map) => {
            if map
                .get("image")
                .and_then(Value::as_str)
                .is_some_and(|i| i.ends_with(&format!("/sflow:{SFLOW_VERSION}")))
            {
                out.push(value);
            }
            map.values().for_each(|v| sflow_containers(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| sflow_containers(v, out)),
        _ => {}
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_dockerfile_and_the_north_star_manifests_agree() -> TestResult {
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile"))?;
    let all = instructions(&dockerfile);
    let image = final_stage(&all);
    let find = |keyword: &str| -> Vec<&str> {
        image
            .iter()
            .filter(|i| i.keyword == keyword)
            .map(|i| i.args.as_str())
            .collect()
    };

    let build = build(
        "examples/mnist/mnist.sflow",
        &std::fs::read_to_string(root().join("examples/mnist/mnist.sflow"))?,
    )?;
    let mut objects = Vec::new();
    for m in &build.manifests {
        objects.push(serde_yaml_ng::from_str::<Value>(&m.yaml)?);
    }
    let mut containers = Vec::new();
    for o in &objects {
        sflow_containers(o, &mut containers);
    }
    // The runtime, the predictor's server, the std step and its data-source init container.
    assert!(
        containers.len() >= 4,
        "{} sflow containers",
        containers.len()
    );

    // Entrypoint and command: the manifests run `sflow …`; the image's entrypoint is the same
    // binary, installed on the default PATH.
    assert_eq!(find("ENTRYPOINT"), [r#"["sflow"]"#]);
    assert!(
        dockerfile.contains("/out/usr/local/bin/sflow"),
        "sflow is not installed in /usr/local/bin"
    );
    assert!(find("COPY")
        .iter()
        .any(|c| c.contains("--from=builder") && c.ends_with("/out/ /")));
    let mut subcommands = BTreeSet::new();
    for c in &containers {
        assert_eq!(strings(&c["command"]), ["sflow"], "{c}");
        let args = strings(&c["args"]);
        subcommands.insert(args.first().cloned().ok_or("no args")?);
    }
    assert_eq!(
        subcommands,
        ["data", "runtime", "serve", "step"]
            .map(String::from)
            .into(),
    );

    // The `sflow` binary implements every subcommand the manifests call (`sflow runtime` needs
    // the `kubernetes` feature, which the image is built with: checked below).
    let cli = std::fs::read_to_string(root().join("runtime/src/cli.rs"))?;
    let missing: BTreeSet<&str> = subcommands
        .iter()
        .map(String::as_str)
        .filter(|s| {
            let mut variant = s.to_string();
            variant[..1].make_ascii_uppercase();
            !cli.contains(&format!("    {variant}("))
        })
        .collect();
    assert_eq!(
        missing,
        BTreeSet::new(),
        "sflow subcommands the binary lacks"
    );
    // `sflow serve` needs the ML feature and `sflow runtime` the Kubernetes one: the image is
    // built with both.
    assert!(
        dockerfile.contains("--features ml,kubernetes --bin sflow"),
        "the image is not built with `ml` and `kubernetes`"
    );

    // The user: uid and gid 65532 in the image and in every container's security context.
    assert_eq!(find("USER"), [format!("{RUN_AS_ID}:{RUN_AS_ID}")]);
    assert!(
        find("FROM").iter().any(|f| f.ends_with(":nonroot")),
        "the base image's user is not nonroot (65532)"
    );
    for c in &containers {
        assert_eq!(c["securityContext"]["runAsUser"], RUN_AS_ID, "{c}");
        assert_eq!(c["securityContext"]["runAsGroup"], RUN_AS_ID, "{c}");
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true, "{c}");
    }

    // Ports: every port a container listens on is exposed.
    let exposed: BTreeSet<i64> = find("EXPOSE")
        .iter()
        .flat_map(|e| e.split_whitespace())
        .filter_map(|p| p.trim_end_matches("/tcp").parse().ok())
        .collect();
    for c in &containers {
        for port in c["ports"].as_array().into_iter().flatten() {
            let port = port["containerPort"]
                .as_i64()
                .ok_or("a port without a number")?;
            assert!(exposed.contains(&port), "port {port} is not EXPOSEd");
        }
        let args = strings(&c["args"]);
        if let Some(i) = args.iter().position(|a| a == "--port") {
            let port: i64 = args.get(i + 1).ok_or("--port without a value")?.parse()?;
            assert!(
                exposed.contains(&port),
                "`sflow serve --port {port}` is not EXPOSEd"
            );
        }
    }

    // Paths: the directories volumes are mounted on exist in the image (created by the
    // builder stage, owned by 65532), the plan path the runtime gets is under its mount.
    let mut mounts = BTreeSet::new();
    for c in &containers {
        for m in c["volumeMounts"].as_array().into_iter().flatten() {
            mounts.insert(
                m["mountPath"]
                    .as_str()
                    .ok_or("a mount without a path")?
                    .to_string(),
            );
        }
    }
    assert!(
        mounts.contains(ARTIFACTS_MOUNT)
            && mounts.contains(PLAN_MOUNT)
            && mounts.contains(TMP_MOUNT),
        "{mounts:?}"
    );
    for path in &mounts {
        if path == TMP_MOUNT || path.starts_with("/var/run/secrets/") {
            continue; // /tmp exists in every image; Kubernetes creates the token's directory
        }
        assert!(
            dockerfile.contains(&format!("/out{path}")),
            "the image has no directory {path}"
        );
    }
    let runtime_args: Vec<String> = containers
        .iter()
        .map(|c| strings(&c["args"]))
        .find(|a| a.first().map(String::as_str) == Some("runtime"))
        .ok_or("no runtime container")?;
    assert_eq!(
        runtime_args,
        ["runtime", "--plan", &format!("{PLAN_MOUNT}/plan.json")]
    );

    // HOME: the same in the image and the manifests.
    assert!(find("ENV").iter().any(|e| e
        .split_whitespace()
        .any(|kv| kv == format!("HOME={TMP_MOUNT}"))));
    for c in &containers {
        let home = c["env"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["name"] == "HOME")
            .and_then(|e| e["value"].as_str());
        assert_eq!(home, Some(TMP_MOUNT), "{c}");
    }

    // The working directory and the data `sflow data` reads from it: the MNIST copy.
    let workdir = *find("WORKDIR").last().ok_or("no WORKDIR")?;
    for c in &containers {
        assert!(
            c.get("workingDir").is_none(),
            "a container overrides the working directory: {c}"
        );
        let args = strings(&c["args"]);
        if args.first().map(String::as_str) != Some("data") {
            continue;
        }
        let i = args
            .iter()
            .position(|a| a == "--args")
            .ok_or("data without --args")?;
        let json: Value = serde_json::from_str(args.get(i + 1).ok_or("--args without a value")?)?;
        let path = json["path"]["value"]["value"]
            .as_str()
            .ok_or("no literal path")?;
        assert!(!path.starts_with('/'), "{path}");
        assert!(
            dockerfile.contains(&format!("cp -r {path} /out{workdir}/{path}")),
            "the image has no {workdir}/{path}"
        );
        assert!(root()
            .join(path)
            .join("train-images-idx3-ubyte.gz")
            .is_file());
    }

    // The version: the manifests' image tag is the version the image is labelled with.
    let version_arg = all
        .iter()
        .find(|i| i.keyword == "ARG" && i.args.starts_with("SFLOW_VERSION="))
        .ok_or("no ARG SFLOW_VERSION")?;
    assert_eq!(version_arg.args, format!("SFLOW_VERSION={SFLOW_VERSION}"));

    // libtorch: the files copied into the image are ones scripts/setup-libtorch.sh provides,
    // and never libtorch.so (it names libtorch_cuda.so, which a CPU set-up leaves out).
    let setup = std::fs::read_to_string(root().join("scripts/setup-libtorch.sh"))?;
    let libs_line = setup
        .lines()
        .find(|l| l.starts_with("LIBS=("))
        .ok_or("no LIBS in setup-libtorch.sh")?;
    let provided: BTreeSet<&str> = libs_line
        .trim_start_matches("LIBS=(")
        .trim_end_matches(')')
        .split_whitespace()
        .collect();
    let copied: Vec<&str> = dockerfile
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("/opt/libtorch/lib/"))
        .filter(|f| f.contains(".so"))
        .collect();
    assert!(copied.len() >= 5, "{copied:?}");
    for lib in &copied {
        assert!(
            provided.contains(lib),
            "{lib} is not provided by setup-libtorch.sh"
        );
        assert_ne!(*lib, "libtorch.so");
    }
    assert!(dockerfile.contains("scripts/setup-libtorch.sh /opt/libtorch"));
    Ok(())
}

#[test]
fn the_build_context_leaves_out_what_is_large_or_local() -> TestResult {
    let ignore = std::fs::read_to_string(root().join(".dockerignore"))?;
    let entries: BTreeSet<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for needed in ["target", ".git", ".libtorch", ".venv-*"] {
        assert!(entries.contains(needed), ".dockerignore lacks {needed}");
    }
    // The image needs these from the context.
    for kept in ["data", "data/mnist", "Cargo.lock", "scripts"] {
        assert!(!entries.contains(kept), ".dockerignore drops {kept}");
    }
    Ok(())
}
