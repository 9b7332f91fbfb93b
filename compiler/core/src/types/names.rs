//! Kubernetes names (§6.7): every declaration that becomes a Kubernetes object maps to a
//! valid DNS-1123 name (`_` becomes `-`, letters are lowered), and no two declarations map
//! to the same object name.

use super::Checker;
use crate::diagnostics::{Code, Diagnostic};
use crate::span::{FileId, Span};
use crate::syntax::ast::{Ident, TriggerSource};
use crate::values;
use std::collections::HashMap;

/// Which rule an object's name must follow.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// RFC 1123 label (most objects).
    Label,
    /// RFC 1035 label (Services: must start with a letter).
    Label1035,
}

impl Checker<'_, '_> {
    pub(super) fn check_kube_names(&mut self) {
        let p = self.p;
        let mut runtime_name: Option<(String, FileId, Span)> = None;
        if let Some(app) = p.app {
            if self
                .check_name(
                    app.file,
                    &app.ast.name,
                    "",
                    Rule::Label,
                    "the app (prefix of the runtime's objects)",
                )
                .is_some()
            {
                let name = format!("{}-runtime", values::kube_name(&app.ast.name.name));
                runtime_name = Some((name, app.file, app.ast.name.span));
            }
        }
        // Workflows → WorkflowTemplates.
        let mut seen = HashMap::new();
        for w in &p.workflows {
            let ident = &w.node.ast.name;
            if let Some(name) = self.check_name(
                w.node.file,
                ident,
                "",
                Rule::Label,
                "a workflow (its WorkflowTemplate)",
            ) {
                self.collide(&mut seen, w.node.file, ident, name, "WorkflowTemplate");
            }
            // Steps → Argo templates within the workflow.
            let mut steps = HashMap::new();
            for step in w.node.ast.steps() {
                if let Some(name) = self.check_name(
                    w.node.file,
                    &step.name,
                    "",
                    Rule::Label,
                    "a step (its Argo template)",
                ) {
                    self.collide(&mut steps, w.node.file, &step.name, name, "Argo template");
                }
            }
        }
        // Services → Deployment, Service, HPA, PDB; the runtime is a Deployment and Service too.
        let mut services = HashMap::new();
        if let Some((name, file, span)) = &runtime_name {
            services.insert(
                name.clone(),
                (*file, *span, "the runtime's Deployment".to_string()),
            );
        }
        for s in &p.services {
            if let Some(name) = self.check_name(
                s.file,
                &s.ast.name,
                "",
                Rule::Label1035,
                "a service (its Deployment and Service)",
            ) {
                self.collide(&mut services, s.file, &s.ast.name, name, "Deployment");
            }
        }
        // Schedule triggers → CronWorkflows.
        let mut crons = HashMap::new();
        for t in &p.triggers {
            if !matches!(t.ast.source, TriggerSource::Schedule(_)) {
                continue;
            }
            if let Some(name) = self.check_name(
                t.file,
                &t.ast.name,
                "",
                Rule::Label,
                "a schedule trigger (its CronWorkflow)",
            ) {
                self.collide(&mut crons, t.file, &t.ast.name, name, "CronWorkflow");
            }
        }
    }

    /// Reports an invalid generated name; returns the name when it is valid.
    fn check_name(
        &mut self,
        file: FileId,
        ident: &Ident,
        prefix: &str,
        rule: Rule,
        what: &str,
    ) -> Option<String> {
        let kube = values::kube_name(&ident.name);
        let name = if prefix.is_empty() {
            kube
        } else {
            format!("{prefix}{kube}")
        };
        let result = match rule {
            Rule::Label => values::check_dns_label(&name),
            Rule::Label1035 => values::check_dns1035_label(&name),
        };
        match result {
            Ok(()) => Some(name),
            Err(e) => {
                let fixed = name.trim_matches('-').to_string();
                let fixed_ident = fixed.replace('-', "_");
                let mut d = Diagnostic::new(
                    Code::E0601,
                    file,
                    ident.span,
                    format!("`{}` becomes the Kubernetes name `{name}`, which is invalid: {e}", ident.name),
                )
                .with_label(format!("names {what}"))
                .with_help("Kubernetes names are lowercase letters, digits and `-`, start and end with a letter or digit, at most 63 characters");
                if !fixed_ident.is_empty() && fixed_ident != ident.name && fixed.len() <= 63 {
                    d = d.with_suggestion(
                        format!("rename to `{fixed_ident}`"),
                        file,
                        ident.span,
                        fixed_ident,
                    );
                }
                self.report(d);
                None
            }
        }
    }

    fn collide(
        &mut self,
        seen: &mut HashMap<String, (FileId, Span, String)>,
        file: FileId,
        ident: &Ident,
        name: String,
        object: &str,
    ) {
        if let Some((first_file, first_span, first_name)) = seen.get(&name) {
            if *first_name == ident.name {
                return; // the same name twice: a duplicate (E0102), reported already
            }
            self.report(
                Diagnostic::new(
                    Code::E0602,
                    file,
                    ident.span,
                    format!(
                        "`{}` and `{first_name}` both become the {object} `{name}`",
                        ident.name
                    ),
                )
                .with_label("second declaration with this Kubernetes name")
                .with_secondary(*first_file, *first_span, format!("`{first_name}` is here"))
                .with_help("Kubernetes lowers letters and turns `_` into `-`: rename one of them"),
            );
            return;
        }
        seen.insert(name, (file, ident.span, ident.name.clone()));
    }
}
