//! Writes a corpus of hostile strings and values as YAML (with the emitter `sflowc build` uses)
//! and as JSON, to `DIR/corpus.yaml` and `DIR/corpus.json`. `.ci/validate-manifests.sh` reads
//! the YAML with PyYAML (a YAML 1.1 reader) and checks it equals the JSON.
//!
//! `cargo run -p sflow-emit --example yaml_corpus -- DIR`

use std::collections::BTreeMap;

fn corpus() -> Vec<String> {
    let mut strings: Vec<String> = [
        "yes",
        "no",
        "on",
        "off",
        "y",
        "n",
        "Y",
        "N",
        "true",
        "False",
        "null",
        "NULL",
        "~",
        "=",
        "<<",
        "0755",
        "1e3",
        "0x1f",
        "0o17",
        "0b101",
        "1_000",
        ".inf",
        "-.inf",
        ".nan",
        "+1",
        "-1",
        "1.5",
        "190:20:30",
        "2001-12-14",
        "2001-12-14t21:59:43.10-05:00",
        "-",
        "",
        "a: b",
        "a:",
        "a :b",
        "- x",
        "---",
        "...",
        "{{x}}",
        "#c",
        "a #c",
        "'",
        "\"",
        "@x",
        "`x",
        "%x",
        "*x",
        "&x",
        "!x",
        "|",
        ">",
        "?",
        "? x",
        "[a]",
        "{a: b}",
        " lead",
        "trail ",
        "\t",
        "a\tb",
        "\u{85}",
        "\u{2028}",
        "\u{2029}",
        "\u{feff}x",
        "é",
        "😀",
        "a\r\nb",
        "\n",
        "a\n",
        "a\n\n",
        "\na",
        " a\nb",
        "a \nb",
        "x\n---\nkind: Secret\n",
        "line1\n  indented\n\nafter empty\n",
        "a,b",
        "k=v",
        "a/b:c",
        "/path",
        "a - b",
        "- a",
        "a: b: c",
        "http://x.y:80/z",
        "x@y",
        "a+b",
        "foo bar",
        "Foo",
        "NaN",
        "Inf",
        "\u{7f}",
        "\u{0}",
        "\u{1b}[31m",
        "\\",
        "\\n",
        "tab\tin\nblock\n",
        "5a027200e4c3",
        "10Gi",
        "500m",
        "0 2 * * *",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Every printable ASCII character alone, and at the start, middle and end of a word.
    for c in ' '..='~' {
        strings.push(c.to_string());
        strings.push(format!("{c}ab"));
        strings.push(format!("a{c}b"));
        strings.push(format!("ab{c}"));
        strings.push(format!("a{c} b"));
    }
    strings
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).ok_or("usage: yaml_corpus DIR")?);
    std::fs::create_dir_all(&dir)?;
    let strings = corpus();
    let as_values: BTreeMap<String, String> = strings
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("k{i:04}"), s.clone()))
        .collect();
    let as_keys: BTreeMap<String, String> = strings
        .iter()
        .filter(|s| s.len() < 100)
        .map(|s| (s.clone(), "v".to_string()))
        .collect();
    let value = serde_json::json!({
        "values": as_values,
        "keys": as_keys,
        "list": strings,
        "numbers": [0, -1, 1.5, 1e-7, 1e20, u64::MAX, i64::MIN, 0.1],
        "nested": [[1, [2, []]], {}, [], {"a": {"b": []}}],
        "bools": [true, false, null],
    });
    std::fs::write(dir.join("corpus.yaml"), sflow_emit::yaml::to_yaml(&value)?)?;
    std::fs::write(dir.join("corpus.json"), serde_json::to_string(&value)?)?;
    Ok(())
}
