//! Drawings of the graphs: Graphviz DOT and Mermaid `flowchart LR`.
//!
//! The output is deterministic (same graph, same text, byte for byte) so it can be committed,
//! diffed and snapshot-tested. Every name is quoted and escaped, so no identifier, keyword or
//! label text can break the syntax. Shapes say what a node is, in both formats alike:
//!
//! | node | DOT | Mermaid |
//! | --- | --- | --- |
//! | step, workflow | `box` | `["…"]` |
//! | trigger | `cds` | `{{"…"}}` (hexagon) |
//! | agent | `ellipse` | `(["…"])` (stadium) |
//! | policy | `diamond` | `{"…"}` (rhombus) |
//! | service | `cylinder` | `[("…")]` |
//!
//! Edges: `after` dependencies are dashed; in the wiring, sensor reads are dashed, action calls
//! and workflow runs bold (Mermaid `==>`), other references plain.

use super::wiring::{EdgeKind, NodeKind, WiringGraph};
use super::workflow::{EdgeCause, WorkflowGraph};
use std::fmt::Write as _;

/// The workflow's step DAG in Graphviz DOT. Steps are boxes named by their step name; an edge
/// per (producer, consumer) pair, labelled with the consumer's input names (or `after`).
pub fn workflow_dot(name: &str, graph: &WorkflowGraph) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph {} {{", dot_id(name));
    out.push_str("  rankdir=LR;\n");
    out.push_str("  node [shape=box, style=rounded];\n");
    for step in graph.steps() {
        let _ = writeln!(out, "  {};", dot_id(&step.name));
    }
    for hop in hops(graph) {
        let _ = write!(
            out,
            "  {} -> {} [label={}",
            dot_id(&graph.steps()[hop.from].name),
            dot_id(&graph.steps()[hop.to].name),
            dot_id(&hop.label)
        );
        if hop.only_after {
            out.push_str(", style=dashed");
        }
        out.push_str("];\n");
    }
    out.push_str("}\n");
    out
}

/// The workflow's step DAG as a Mermaid `flowchart LR`, titled with the workflow's name.
pub fn workflow_mermaid(name: &str, graph: &WorkflowGraph) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "---\ntitle: {}\n---", mermaid_title(name));
    out.push_str("flowchart LR\n");
    // Node ids are positional (`s0`, `s1`): Mermaid has reserved words (`end`) that a step
    // name could be; the name itself is the quoted label.
    for (i, step) in graph.steps().iter().enumerate() {
        let _ = writeln!(out, "  s{i}[{}]", mermaid_text(&step.name));
    }
    for hop in hops(graph) {
        let arrow = if hop.only_after { "-.->" } else { "-->" };
        let _ = writeln!(
            out,
            "  s{} {arrow}|{}| s{}",
            hop.from,
            mermaid_text(&hop.label),
            hop.to
        );
    }
    out
}

/// The wiring graph of application `app` in Graphviz DOT. Node ids are `"KIND:NAME"` (names
/// are unique per kind only); nodes are listed by kind in flow order (triggers, agents,
/// policies, workflows, services), each kind in insertion order; edges in insertion order.
pub fn wiring_dot(app: &str, graph: &WiringGraph) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph {} {{", dot_id(app));
    out.push_str("  rankdir=LR;\n");
    for (_, node) in wiring_nodes(graph) {
        let shape = match node.kind {
            NodeKind::Trigger => "cds",
            NodeKind::Agent => "ellipse",
            NodeKind::Policy => "diamond",
            NodeKind::Workflow => "box",
            NodeKind::Service => "cylinder",
        };
        let _ = writeln!(
            out,
            "  {} [label={}, shape={shape}];",
            dot_id(&format!("{}:{}", node.kind.keyword(), node.name)),
            dot_id(&node.name)
        );
    }
    for edge in graph.edges() {
        let (Some(from), Some(to)) = (graph.node(edge.from), graph.node(edge.to)) else {
            continue;
        };
        let _ = write!(
            out,
            "  {} -> {} [label={}",
            dot_id(&format!("{}:{}", from.kind.keyword(), from.name)),
            dot_id(&format!("{}:{}", to.kind.keyword(), to.name)),
            dot_id(&edge.label)
        );
        match edge.kind {
            EdgeKind::Reads => out.push_str(", style=dashed"),
            EdgeKind::Calls | EdgeKind::Runs => out.push_str(", style=bold"),
            EdgeKind::Uses => {}
        }
        out.push_str("];\n");
    }
    out.push_str("}\n");
    out
}

/// The wiring graph of application `app` as a Mermaid `flowchart LR`, with the same node order
/// and shapes as [`wiring_dot`].
pub fn wiring_mermaid(app: &str, graph: &WiringGraph) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "---\ntitle: {}\n---", mermaid_title(app));
    out.push_str("flowchart LR\n");
    for (id, node) in wiring_nodes(graph) {
        let text = mermaid_text(&node.name);
        let shape = match node.kind {
            NodeKind::Trigger => format!("{{{{{text}}}}}"),
            NodeKind::Agent => format!("([{text}])"),
            NodeKind::Policy => format!("{{{text}}}"),
            NodeKind::Workflow => format!("[{text}]"),
            NodeKind::Service => format!("[({text})]"),
        };
        let _ = writeln!(out, "  n{}{shape}", id.0);
    }
    for edge in graph.edges() {
        let arrow = match edge.kind {
            EdgeKind::Reads => "-.->",
            EdgeKind::Calls | EdgeKind::Runs => "==>",
            EdgeKind::Uses => "-->",
        };
        let _ = writeln!(
            out,
            "  n{} {arrow}|{}| n{}",
            edge.from.0,
            mermaid_text(&edge.label),
            edge.to.0
        );
    }
    out
}

/// One drawn edge: all the dependencies of one consumer on one producer.
struct Hop {
    from: usize,
    to: usize,
    /// The input names (in edge order), then `after` if listed there too; without repeats.
    label: String,
    /// Whether every dependency is an `after` (drawn dashed: no data flows).
    only_after: bool,
}

fn hops(graph: &WorkflowGraph) -> Vec<Hop> {
    let mut hops: Vec<Hop> = Vec::new();
    let mut parts: Vec<&str> = Vec::new();
    let mut after = false;
    // Valid edges come ordered by (producer, consumer, index): each pair is one run.
    let edges: Vec<_> = graph.valid_edges().map(|(_, e)| e).collect();
    for (i, edge) in edges.iter().enumerate() {
        match &edge.cause {
            EdgeCause::Input { port } if !parts.contains(&port.as_str()) => parts.push(port),
            EdgeCause::Input { .. } => {}
            EdgeCause::After => after = true,
        }
        let last_of_pair = edges
            .get(i + 1)
            .is_none_or(|next| (next.from, next.to) != (edge.from, edge.to));
        if last_of_pair {
            let only_after = parts.is_empty();
            if after {
                parts.push("after");
            }
            hops.push(Hop {
                from: edge.from,
                to: edge.to,
                label: parts.join(", "),
                only_after,
            });
            parts.clear();
            after = false;
        }
    }
    hops
}

/// Wiring nodes grouped by kind in flow order, insertion order within a kind.
fn wiring_nodes(graph: &WiringGraph) -> Vec<(super::wiring::NodeId, &super::wiring::WiringNode)> {
    let rank = |kind: NodeKind| match kind {
        NodeKind::Trigger => 0,
        NodeKind::Agent => 1,
        NodeKind::Policy => 2,
        NodeKind::Workflow => 3,
        NodeKind::Service => 4,
    };
    let mut nodes: Vec<_> = graph.nodes().collect();
    nodes.sort_by_key(|(id, node)| (rank(node.kind), *id));
    nodes
}

/// A DOT double-quoted ID: `"` and `\` escaped, line breaks as `\n`.
fn dot_id(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Mermaid quoted text: `"…"` with the characters Mermaid would interpret written as entity
/// codes (`#quot;`, `#35;`, `#lt;`, `#gt;`), line breaks as spaces.
fn mermaid_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A YAML-safe title for Mermaid's front matter (a double-quoted YAML scalar).
fn mermaid_title(text: &str) -> String {
    let escaped: String = text
        .chars()
        .map(|c| match c {
            '"' => "\\\"".to_string(),
            '\\' => "\\\\".to_string(),
            '\n' | '\r' => " ".to_string(),
            c => c.to_string(),
        })
        .collect();
    format!("\"{escaped}\"")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::graph::wiring::tests::mnist;
    use crate::graph::workflow::{StepEdge, StepNode};
    use crate::span::Span;
    use std::collections::HashSet;

    /// `load` fans out to `train` and `stats`; `train` and `stats` fan in to `report`, which
    /// also lists `load` in `after`; `publish` runs after `report`.
    fn fan_out_fan_in() -> WorkflowGraph {
        let names = ["load", "train", "stats", "report", "publish"];
        let steps = names
            .iter()
            .enumerate()
            .map(|(i, n)| StepNode {
                name: n.to_string(),
                span: Span::new(i, i + 1),
            })
            .collect();
        let input = |from, to, port: &str| StepEdge {
            from,
            to,
            cause: EdgeCause::Input { port: port.into() },
            span: Span::default(),
        };
        let after = |from, to| StepEdge {
            from,
            to,
            cause: EdgeCause::After,
            span: Span::default(),
        };
        let edges = vec![
            input(0, 1, "data"),
            input(0, 2, "data"),
            input(1, 3, "model"),
            input(2, 3, "summary"),
            after(0, 3),
            input(1, 3, "baseline"),
            input(1, 3, "model"),
            after(3, 4),
        ];
        WorkflowGraph::new(steps, edges)
    }

    #[test]
    fn workflow_snapshots() {
        let g = fan_out_fan_in();
        insta::assert_snapshot!("workflow_dot", workflow_dot("training", &g));
        insta::assert_snapshot!("workflow_mermaid", workflow_mermaid("training", &g));
    }

    #[test]
    fn wiring_snapshots() {
        let g = mnist();
        insta::assert_snapshot!("wiring_dot", wiring_dot("mnist", &g));
        insta::assert_snapshot!("wiring_mermaid", wiring_mermaid("mnist", &g));
    }

    #[test]
    fn rendering_is_deterministic() {
        assert_eq!(
            workflow_dot("w", &fan_out_fan_in()),
            workflow_dot("w", &fan_out_fan_in())
        );
        assert_eq!(wiring_mermaid("a", &mnist()), wiring_mermaid("a", &mnist()));
    }

    #[test]
    fn awkward_names_are_escaped() {
        let steps = vec![
            StepNode {
                name: "say \"hi\" \\ <b>#1</b>".into(),
                span: Span::default(),
            },
            StepNode {
                name: "end".into(),
                span: Span::default(),
            },
        ];
        let edges = vec![StepEdge {
            from: 0,
            to: 1,
            cause: EdgeCause::Input {
                port: "a\"b".into(),
            },
            span: Span::default(),
        }];
        let g = WorkflowGraph::new(steps, edges);
        let dot = workflow_dot("w\"x", &g);
        assert!(dot.contains(r#""say \"hi\" \\ <b>#1</b>";"#), "{dot}");
        assert!(dot.starts_with("digraph \"w\\\"x\" {"), "{dot}");
        check_dot(&dot);
        let mermaid = workflow_mermaid("w\"x", &g);
        assert!(
            mermaid.contains("s0[\"say #quot;hi#quot; \\ #lt;b#gt;#35;1#lt;/b#gt;\"]"),
            "{mermaid}"
        );
        assert!(mermaid.contains("s1[\"end\"]"), "{mermaid}");
        assert!(mermaid.contains("s0 -->|\"a#quot;b\"| s1"), "{mermaid}");
        assert!(
            mermaid.starts_with("---\ntitle: \"w\\\"x\"\n---\nflowchart LR\n"),
            "{mermaid}"
        );
    }

    #[test]
    fn invalid_edges_are_not_drawn() {
        let steps = vec![StepNode {
            name: "a".into(),
            span: Span::default(),
        }];
        let edges = vec![StepEdge {
            from: 0,
            to: 3,
            cause: EdgeCause::After,
            span: Span::default(),
        }];
        let g = WorkflowGraph::new(steps, edges);
        let dot = workflow_dot("w", &g);
        assert!(!dot.contains("->"));
        check_dot(&dot);
        assert!(!workflow_mermaid("w", &g).contains("-->"));
    }

    #[test]
    fn dot_output_is_well_formed() {
        let g = fan_out_fan_in();
        let parsed = check_dot(&workflow_dot("training", &g));
        assert_eq!(parsed.nodes.len(), 5);
        assert_eq!(parsed.edges.len(), 6);
        assert!(parsed.edges.contains(&("report".into(), "publish".into())));
        let parsed = check_dot(&wiring_dot("mnist", &mnist()));
        assert_eq!(parsed.nodes.len(), 11);
        assert_eq!(parsed.edges.len(), 14);
        assert!(parsed
            .edges
            .contains(&("trigger:nightly".into(), "workflow:training".into())));
    }

    /// What [`check_dot`] found.
    struct Dot {
        nodes: Vec<String>,
        edges: Vec<(String, String)>,
    }

    #[derive(Clone, Debug, PartialEq)]
    enum Token {
        Id(String),
        Punct(&'static str),
    }

    /// A tokenizer and parser for the DOT subset the renderers write (the grammar of
    /// graphviz.org/doc/info/lang.html restricted to `digraph ID { stmt; … }` with attribute
    /// assignments, `node [a_list]`, node statements and `->` edge statements). It checks the
    /// structure, that attribute names and values are ones Graphviz knows, and that every edge
    /// joins two declared nodes; it panics with the reason otherwise.
    fn check_dot(text: &str) -> Dot {
        let mut tokens = Vec::new();
        let mut chars = text.chars().peekable();
        while let Some(&c) = chars.peek() {
            match c {
                c if c.is_whitespace() => {
                    chars.next();
                }
                '"' => {
                    chars.next();
                    let mut id = String::new();
                    loop {
                        match chars.next() {
                            Some('\\') => match chars.next() {
                                Some('"') => id.push('"'),
                                Some('\\') => id.push('\\'),
                                Some('n') => id.push('\n'),
                                other => panic!("unknown escape {other:?} in {text}"),
                            },
                            Some('"') => break,
                            Some(c) => id.push(c),
                            None => panic!("unterminated string in {text}"),
                        }
                    }
                    tokens.push(Token::Id(id));
                }
                '-' => {
                    chars.next();
                    assert_eq!(chars.next(), Some('>'), "lone `-` in {text}");
                    tokens.push(Token::Punct("->"));
                }
                '{' | '}' | '[' | ']' | '=' | ',' | ';' => {
                    chars.next();
                    let p = ["{", "}", "[", "]", "=", ",", ";"]
                        .into_iter()
                        .find(|p| p.starts_with(c))
                        .unwrap();
                    tokens.push(Token::Punct(p));
                }
                c if c.is_ascii_alphanumeric() || c == '_' => {
                    let mut id = String::new();
                    while let Some(&c) = chars
                        .peek()
                        .filter(|c| c.is_ascii_alphanumeric() || **c == '_')
                    {
                        id.push(c);
                        chars.next();
                    }
                    tokens.push(Token::Id(id));
                }
                other => panic!("unexpected {other:?} in {text}"),
            }
        }
        let mut at = 0;
        let mut next = || {
            let token = tokens.get(at).cloned();
            at += 1;
            token
        };
        let id = |t: Option<Token>| match t {
            Some(Token::Id(id)) => id,
            other => panic!("expected an ID, found {other:?} in {text}"),
        };
        assert_eq!(next(), Some(Token::Id("digraph".into())));
        id(next());
        assert_eq!(next(), Some(Token::Punct("{")));
        let known: HashSet<&str> = ["rankdir", "shape", "style", "label"].into();
        let values: HashSet<&str> = [
            "LR", "box", "rounded", "dashed", "bold", "cds", "ellipse", "diamond", "cylinder",
        ]
        .into();
        let mut dot = Dot {
            nodes: Vec::new(),
            edges: Vec::new(),
        };
        let mut pending = next();
        loop {
            let first = match pending.take() {
                Some(Token::Punct("}")) => break,
                other => id(other),
            };
            let mut token = next();
            let attributes =
                |token: &mut Option<Token>, next: &mut dyn FnMut() -> Option<Token>| {
                    if *token != Some(Token::Punct("[")) {
                        return;
                    }
                    loop {
                        let name = id(next());
                        assert!(
                            known.contains(name.as_str()),
                            "unknown attribute {name} in {text}"
                        );
                        assert_eq!(next(), Some(Token::Punct("=")));
                        let value = id(next());
                        assert!(
                            name == "label" || values.contains(value.as_str()),
                            "unknown value {value} in {text}"
                        );
                        match next() {
                            Some(Token::Punct(",")) => continue,
                            Some(Token::Punct("]")) => break,
                            other => panic!("expected `,` or `]`, found {other:?} in {text}"),
                        }
                    }
                    *token = next();
                };
            match token {
                Some(Token::Punct("=")) => {
                    assert!(known.contains(first.as_str()), "unknown attribute {first}");
                    let value = id(next());
                    assert!(values.contains(value.as_str()), "unknown value {value}");
                    token = next();
                }
                Some(Token::Punct("->")) => {
                    let to = id(next());
                    assert!(
                        dot.nodes.contains(&first),
                        "edge from undeclared node {first:?} in {text}"
                    );
                    assert!(
                        dot.nodes.contains(&to),
                        "edge to undeclared node {to:?} in {text}"
                    );
                    dot.edges.push((first, to));
                    token = next();
                    attributes(&mut token, &mut next);
                }
                _ if first == "node" => attributes(&mut token, &mut next),
                _ => {
                    assert!(
                        !dot.nodes.contains(&first),
                        "node {first:?} declared twice in {text}"
                    );
                    dot.nodes.push(first);
                    attributes(&mut token, &mut next);
                }
            }
            assert_eq!(
                token,
                Some(Token::Punct(";")),
                "statement not ended by `;` in {text}"
            );
            pending = next();
        }
        assert_eq!(next(), None, "text after the closing brace in {text}");
        dot
    }
}
