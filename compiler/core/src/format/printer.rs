//! The layout engine: walks the syntax tree and writes the canonical text, placing every
//! comment of the file where the user put it.
//!
//! How comments are placed: the printer keeps a cursor into the file's comments (in source
//! order). Before it starts a line for a member (a declaration, a field, a list element on its
//! own line, a closing brace), it flushes every comment that comes before that member in the
//! source: a comment that followed code on its source line is appended to the current output
//! line (a trailing comment), any other one gets a line of its own. Bracketed constructs that
//! hold a comment are laid out one element per line, so their comments have lines to go to.
//! A member that still holds a comment the printer could not place (`a /* x */ + b`) is copied
//! as written instead ([`Printer::member`]): the formatter never drops a comment.

use crate::span::Span;
use crate::syntax::ast::*;
use crate::syntax::comments::{Comment, CommentKind};
use crate::syntax::Parse;

/// Spaces per indentation level.
const INDENT: usize = 2;

/// Prints the parsed file `parse` of `text` in the canonical layout.
pub(super) fn print(text: &str, parse: &Parse) -> String {
    let mut p = Printer {
        text,
        comments: &parse.comments,
        next: 0,
        out: String::new(),
        indent: 0,
        prev_end: None,
    };
    let lines: Vec<Line<'_, '_>> = parse
        .file
        .items
        .iter()
        .map(|item| p.item_line(item))
        .collect();
    p.lines(lines);
    p.before_line(text.len());
    p.trim_trailing_spaces();
    if !p.out.is_empty() {
        p.out.push('\n');
    }
    p.out
}

/// One member of a block, laid out on its own line (or lines).
struct Line<'a, 'p> {
    /// The member's source span (for comments, blank lines and the verbatim fallback).
    span: Span,
    /// How the member takes part in column alignment.
    align: Align,
    /// Prints the member, given the target width of each of its aligned columns.
    print: PrintFn<'a, 'p>,
}

/// How a [`Line`] prints itself.
type PrintFn<'a, 'p> = Box<dyn Fn(&mut Printer<'p>, &[usize]) + 'a>;

/// How a line takes part in column alignment.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Align {
    /// Not aligned, and ends any run (a step in a workflow, a policy at the top level).
    Break,
    /// Not aligned, but a run continues across it (`resources { … }` among step fields).
    Skip,
    /// Aligned with the other lines of its group: the widths of its columns.
    Columns {
        /// Lines align only with lines of the same group.
        group: Group,
        /// The natural width of each aligned column.
        widths: Vec<usize>,
    },
}

/// The sorts of aligned runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Group {
    /// `NAME = VALUE` fields and the first word of step members: runs end at blank lines.
    FirstWord,
    /// `param NAME: TYPE = DEFAULT`: runs end at blank lines and at comments.
    Param,
    /// `agent NAME: KIND { … }`: runs end at blank lines.
    Agent,
    /// `trigger NAME: SOURCE -> ACTION`: runs end at blank lines.
    Trigger,
}

impl Group {
    fn comments_end_runs(self) -> bool {
        self == Group::Param
    }
}

/// The printer's state.
pub(super) struct Printer<'s> {
    text: &'s str,
    comments: &'s [Comment],
    /// The next comment not yet printed.
    next: usize,
    out: String,
    /// The current indentation, in spaces.
    indent: usize,
    /// The source end of the last member or comment printed in the current block; `None` at
    /// the start of a block (no blank line goes there).
    prev_end: Option<usize>,
}

/// The mark of a printer's state, to undo a tentative print.
struct Mark {
    len: usize,
    next: usize,
    prev_end: Option<usize>,
    indent: usize,
}

impl<'s> Printer<'s> {
    // ----------------------------------------------------------------------------------------
    // Output primitives

    fn push(&mut self, s: &str) {
        self.out.push_str(s);
    }

    fn spaces(&mut self, n: usize) {
        self.out.extend(std::iter::repeat_n(' ', n));
    }

    fn trim_trailing_spaces(&mut self) {
        let kept = self.out.trim_end_matches([' ', '\t']).len();
        self.out.truncate(kept);
    }

    /// Ends the current line (if any) and starts a new one at the current indentation.
    fn start_line(&mut self) {
        self.trim_trailing_spaces();
        if !self.out.is_empty() {
            self.out.push('\n');
        }
        self.spaces(self.indent);
    }

    /// Ends the current line and leaves one empty line (never two, never at the top).
    fn blank_line(&mut self) {
        self.trim_trailing_spaces();
        if !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
    }

    fn mark(&self) -> Mark {
        Mark {
            len: self.out.len(),
            next: self.next,
            prev_end: self.prev_end,
            indent: self.indent,
        }
    }

    fn reset(&mut self, mark: &Mark) {
        self.out.truncate(mark.len);
        self.next = mark.next;
        self.prev_end = mark.prev_end;
        self.indent = mark.indent;
    }

    /// The width (in characters) of what `f` prints on one line; prints nothing.
    fn measure(&mut self, f: impl FnOnce(&mut Self)) -> usize {
        let mark = self.mark();
        f(self);
        let printed = self.out.get(mark.len..).unwrap_or("");
        let width = printed.split('\n').next().unwrap_or("").chars().count();
        self.reset(&mark);
        width
    }

    // ----------------------------------------------------------------------------------------
    // Source queries

    fn slice(&self, span: Span) -> &'s str {
        span.text(self.text)
    }

    /// Whether the source between `from` and `to` has an empty line.
    fn has_blank_line(&self, from: usize, to: usize) -> bool {
        let gap = self.text.get(from..to).unwrap_or("");
        let lines: Vec<&str> = gap.split('\n').collect();
        lines.len() > 2
            && lines[1..lines.len() - 1]
                .iter()
                .any(|l| l.trim().is_empty())
    }

    /// Whether the source between `from` and `to` has a line break.
    fn has_newline(&self, from: usize, to: usize) -> bool {
        self.text.get(from..to).is_some_and(|s| s.contains('\n'))
    }

    /// Whether a comment starts within `from..to`.
    fn has_comment(&self, from: usize, to: usize) -> bool {
        let i = self.comments.partition_point(|c| c.span.start() < from);
        self.comments.get(i).is_some_and(|c| c.span.start() < to)
    }

    /// `span` without the whitespace and comments at its end. The parser's spans of members
    /// may run on over the trivia that follows them; the printer works with tight ones.
    fn tight(&self, span: Span) -> Span {
        let start = span.start();
        let mut end = span.end();
        loop {
            let s = self.text.get(start..end).unwrap_or("");
            end = start + s.trim_end().len();
            // A comment that ends here (its own trailing spaces are part of its span).
            let i = self.comments.partition_point(|c| c.span.end() < end);
            match self.comments.get(i) {
                Some(c)
                    if c.span.start() >= start && c.span.start() < end && end <= c.span.end() =>
                {
                    end = c.span.start()
                }
                _ => break,
            }
        }
        Span::new(start, end)
    }

    /// The offset of the closing bracket of a construct whose span is `span`.
    fn close_of(&self, span: Span) -> usize {
        self.tight(span).end().saturating_sub(1)
    }

    /// Whether comment `c` follows code on its source line.
    fn is_trailing(&self, c: &Comment) -> bool {
        let before = self.text.get(..c.span.start()).unwrap_or("");
        let line = before.rsplit('\n').next().unwrap_or("");
        !line.trim().is_empty()
    }

    /// The offset of the first `ch` at or after `from` and before `to` outside comments. Used
    /// to find the bracket that follows a name or keyword (the file parsed, so it is there).
    fn find(&self, from: usize, to: usize, ch: char) -> Option<usize> {
        let mut i = from;
        while i < to {
            let rest = self.text.get(i..to)?;
            if rest.starts_with(ch) {
                return Some(i);
            }
            if let Some(c) = self.comments.iter().find(|c| c.span.start() == i) {
                i = c.span.end().max(i + 1);
                continue;
            }
            i += rest.chars().next()?.len_utf8();
        }
        None
    }

    // ----------------------------------------------------------------------------------------
    // Comments and members

    /// Prints the comments that come before `start` in the source, and the blank line that
    /// separates what comes before from the member at `start`.
    fn before_line(&mut self, start: usize) {
        while let Some(c) = self.comments.get(self.next) {
            if c.span.start() >= start {
                break;
            }
            self.next += 1;
            if self.is_trailing(c) && !self.out.is_empty() {
                self.trim_trailing_spaces();
                self.push(" ");
                self.comment_text(c);
            } else {
                if self
                    .prev_end
                    .is_some_and(|end| self.has_blank_line(end, c.span.start()))
                {
                    self.blank_line();
                }
                self.start_line();
                self.comment_text(c);
            }
            self.prev_end = Some(c.span.end());
            self.keep_separator_after_doc(c, start);
        }
        if self
            .prev_end
            .is_some_and(|end| self.has_blank_line(end, start))
        {
            self.blank_line();
        }
    }

    /// A doc comment that a `,` or `;` separates from what follows (the next doc comment or the
    /// member at `start`) documents nothing after it; keep a `;` on the next line, or
    /// the doc comment would attach to the member once the separator is gone (`/// a` `;`
    /// `/// b` `action x()` documents `x` with `b` only).
    fn keep_separator_after_doc(&mut self, c: &Comment, start: usize) {
        if c.kind != CommentKind::Doc {
            return;
        }
        let until = self
            .comments
            .get(self.next)
            .map_or(start, |n| n.span.start().min(start));
        let gap = self.text.get(c.span.end()..until).unwrap_or("").trim();
        if !gap.is_empty()
            && gap
                .chars()
                .all(|ch| ch == ';' || ch == ',' || ch.is_whitespace())
        {
            self.start_line();
            self.push(";");
        }
    }

    fn comment_text(&mut self, c: &Comment) {
        let text = c.text.replace('\r', "");
        match c.kind {
            CommentKind::Line | CommentKind::Doc => self.push(text.trim_end()),
            CommentKind::Block => {
                let lines: Vec<&str> = text.split('\n').map(str::trim_end).collect();
                self.push(&lines.join("\n"));
            }
        }
    }

    /// Prints a member on a line of its own: its leading comments, then `f`. When `f` leaves
    /// a comment inside the member unprinted, the member is copied as written instead.
    fn member(&mut self, span: Span, f: impl FnOnce(&mut Self)) {
        let span = self.tight(span);
        self.before_line(span.start());
        self.start_line();
        let mark = self.mark();
        f(self);
        if self
            .comments
            .get(self.next)
            .is_some_and(|c| c.span.start() < span.end())
        {
            self.reset(&mark);
            self.verbatim(span);
        }
        self.prev_end = Some(span.end());
    }

    /// Copies `span` as written (trailing spaces and carriage returns removed), and skips the
    /// comments inside it.
    fn verbatim(&mut self, span: Span) {
        let text = self.slice(span).replace('\r', "");
        let lines: Vec<&str> = text.split('\n').map(str::trim_end).collect();
        self.push(&lines.join("\n"));
        while self
            .comments
            .get(self.next)
            .is_some_and(|c| c.span.start() < span.end())
        {
            self.next += 1;
        }
    }

    /// Prints block members one per line, aligning the columns of each run.
    fn lines(&mut self, mut lines: Vec<Line<'_, 's>>) {
        for line in &mut lines {
            line.span = self.tight(line.span);
        }
        let targets = self.column_targets(&lines);
        for (line, target) in lines.iter().zip(targets) {
            let print = &line.print;
            self.member(line.span, |p| print(p, &target));
        }
    }

    /// The target width of each aligned column of each line.
    fn column_targets(&self, lines: &[Line<'_, '_>]) -> Vec<Vec<usize>> {
        let mut targets: Vec<Vec<usize>> = lines
            .iter()
            .map(|l| match &l.align {
                Align::Columns { widths, .. } => widths.clone(),
                _ => Vec::new(),
            })
            .collect();
        // Runs: (group, indices of their lines).
        let mut runs: Vec<(Group, Vec<usize>)> = Vec::new();
        let mut current: Option<(Group, Vec<usize>)> = None;
        let mut last_end: Option<usize> = None;
        for (i, line) in lines.iter().enumerate() {
            let start = line.span.start();
            let gap_blank = last_end.is_some_and(|end| self.has_blank_line(end, start));
            let gap_comment = last_end.is_some_and(|end| self.has_comment(end, start));
            match &line.align {
                Align::Break => {
                    runs.extend(current.take());
                }
                Align::Skip => {
                    if gap_blank {
                        runs.extend(current.take());
                    }
                }
                Align::Columns { group, .. } => {
                    let continues = current.as_ref().is_some_and(|(g, _)| g == group)
                        && !gap_blank
                        && !(group.comments_end_runs() && gap_comment);
                    if !continues {
                        runs.extend(current.take());
                        current = Some((*group, Vec::new()));
                    }
                    if let Some((_, members)) = current.as_mut() {
                        members.push(i);
                    }
                }
            }
            last_end = Some(line.span.end());
        }
        runs.extend(current.take());
        for (_, members) in runs {
            let columns = members.iter().map(|&i| targets[i].len()).max().unwrap_or(0);
            for col in 0..columns {
                let width = members
                    .iter()
                    .filter_map(|&i| targets[i].get(col).copied())
                    .max()
                    .unwrap_or(0);
                for &i in &members {
                    if let Some(w) = targets[i].get_mut(col) {
                        *w = width;
                    }
                }
            }
        }
        targets
    }

    /// Prints a braced block of members: ` {`, the members, `}` (or ` {}` when empty).
    fn block(&mut self, close: usize, lines: Vec<Line<'_, 's>>) {
        if lines.is_empty()
            && self
                .comments
                .get(self.next)
                .is_none_or(|c| c.span.start() >= close)
        {
            self.push(" {}");
            return;
        }
        self.push(" {");
        self.nested(|p| {
            p.lines(lines);
            p.before_line(close);
        });
        self.start_line();
        self.push("}");
    }

    /// Runs `f` one indentation level deeper, as a new block.
    fn nested(&mut self, f: impl FnOnce(&mut Self)) {
        let saved = self.prev_end.take();
        self.indent += INDENT;
        f(self);
        self.indent -= INDENT;
        self.prev_end = saved;
    }

    /// Pads the current line with spaces so that what was printed since `from` (an offset in
    /// the output) is `width` characters wide.
    fn pad_from(&mut self, from: usize, width: usize) {
        let printed = self.out.get(from..).unwrap_or("").chars().count();
        if printed < width {
            self.spaces(width - printed);
        }
    }

    // ----------------------------------------------------------------------------------------
    // Top level

    fn item_line<'a>(&mut self, item: &'a Item) -> Line<'a, 's> {
        let span = item.span();
        match item {
            Item::Agent(agent) => {
                let name_w = agent.name.name.chars().count() + 1;
                let kind_w = agent.kind.name.chars().count();
                Line {
                    span,
                    align: Align::Columns {
                        group: Group::Agent,
                        widths: vec![name_w, kind_w],
                    },
                    print: Box::new(move |p, w| p.agent(agent, w)),
                }
            }
            Item::Trigger(trigger) => {
                let name_w = trigger.name.name.chars().count() + 1;
                let source_w = self.measure(|p| p.trigger_source(&trigger.source));
                Line {
                    span,
                    align: Align::Columns {
                        group: Group::Trigger,
                        widths: vec![name_w, source_w],
                    },
                    print: Box::new(move |p, w| p.trigger(trigger, w)),
                }
            }
            _ => Line {
                span,
                align: Align::Break,
                print: Box::new(move |p, _| p.item(item)),
            },
        }
    }

    fn item(&mut self, item: &Item) {
        match item {
            Item::App(app) => {
                self.push("app ");
                self.push(&app.name.name);
                let lines = app.fields.iter().map(field_line).collect();
                self.block(self.close_of(app.span), lines);
            }
            Item::Use(use_) => {
                self.push("use ");
                match &use_.target {
                    UseTarget::File(s) => self.push(self.slice(s.span)),
                    UseTarget::Path { path, items } => {
                        let joined: Vec<&str> = path.iter().map(|i| i.name.as_str()).collect();
                        self.push(&joined.join("."));
                        if let Some(items) = items {
                            self.push(".");
                            let from = path.last().map_or(use_.span.start(), |p| p.span.end());
                            let open = self.find(from, use_.span.end(), '{').unwrap_or(from);
                            let close = self.close_of(use_.span);
                            self.bracketed(
                                ("{", "}"),
                                open,
                                close,
                                items,
                                |i| i.span,
                                |p, i| p.push(&i.name),
                                true,
                            );
                        }
                    }
                }
            }
            Item::TypeAlias(alias) => {
                self.push("type ");
                self.push(&alias.name.name);
                self.push(" = ");
                self.ty(&alias.ty);
            }
            Item::Workflow(workflow) => {
                self.push("workflow ");
                self.push(&workflow.name.name);
                let lines = workflow
                    .members
                    .iter()
                    .map(|m| self.workflow_member(m))
                    .collect();
                self.block(self.close_of(workflow.span), lines);
            }
            Item::Service(service) => {
                self.push("service ");
                self.push(&service.name.name);
                let lines = service
                    .members
                    .iter()
                    .map(|m| match m {
                        ServiceMember::Field(f) => field_line(f),
                        ServiceMember::Slo(slo) => Line {
                            span: slo.span,
                            align: Align::Skip,
                            print: Box::new(move |p, _| {
                                p.push("slo ");
                                p.expr(&slo.objective);
                            }),
                        },
                        ServiceMember::Resources(r) => resources_line(r),
                    })
                    .collect();
                self.block(self.close_of(service.span), lines);
            }
            Item::Agent(agent) => self.agent(agent, &[]),
            Item::AgentKind(kind) => {
                self.push("agent kind ");
                self.push(&kind.name.name);
                let lines = kind.members.iter().map(kind_member_line).collect();
                self.block(self.close_of(kind.span), lines);
            }
            Item::Trigger(trigger) => self.trigger(trigger, &[]),
            Item::Policy(policy) => self.policy(policy),
            Item::ExternFn(f) => {
                self.push("extern fn ");
                self.push(&f.name.name);
                self.param_sigs(&f.params, f.name.span.end(), f.span.end());
                self.push(" -> ");
                self.ty(&f.ret);
            }
            Item::ExternStep(s) => {
                self.push("extern step ");
                self.push(&s.name.name);
                let after_params = s
                    .members
                    .first()
                    .map_or(s.span.end(), |m| step_member_span(m).start());
                self.param_sigs(&s.params, s.name.span.end(), after_params);
                let lines = s.members.iter().map(step_member_line).collect();
                self.block(self.close_of(s.span), lines);
            }
        }
    }

    fn agent(&mut self, agent: &Agent, widths: &[usize]) {
        self.push("agent ");
        let name_at = self.out.len();
        self.push(&agent.name.name);
        self.push(":");
        self.pad_from(name_at, widths.first().copied().unwrap_or(0));
        self.push(" ");
        let kind_at = self.out.len();
        self.push(&agent.kind.name);
        let Some(open) = self.find(agent.kind.span.end(), self.tight(agent.span).end(), '{') else {
            return;
        };
        let close = self.close_of(agent.span);
        if agent.fields.is_empty() && !self.has_comment(open, close) {
            return;
        }
        self.pad_from(kind_at, widths.get(1).copied().unwrap_or(0));
        self.push(" ");
        self.record_fields(open, close, &agent.fields);
    }

    fn trigger(&mut self, trigger: &Trigger, widths: &[usize]) {
        self.push("trigger ");
        let name_at = self.out.len();
        self.push(&trigger.name.name);
        self.push(":");
        self.pad_from(name_at, widths.first().copied().unwrap_or(0));
        self.push(" ");
        let source_at = self.out.len();
        self.trigger_source(&trigger.source);
        self.pad_from(source_at, widths.get(1).copied().unwrap_or(0));
        self.push(" -> ");
        self.action(&trigger.action);
    }

    fn trigger_source(&mut self, source: &TriggerSource) {
        match source {
            TriggerSource::Schedule(s) => {
                self.push("schedule ");
                self.push(self.slice(s.span));
            }
            TriggerSource::Every { count, sensor, .. } => {
                self.push("every ");
                self.expr(count);
                self.push(" ");
                self.expr(sensor);
            }
            TriggerSource::On(event) => {
                self.push("on ");
                self.expr(event);
            }
            TriggerSource::Webhook(s) => {
                self.push("webhook ");
                self.push(self.slice(s.span));
            }
        }
    }

    fn policy(&mut self, policy: &Policy) {
        self.push("policy ");
        self.push(&policy.name.name);
        self.push(" {");
        let close = self.close_of(policy.span);
        self.nested(|p| {
            // when COND [for D]
            p.before_line(policy.when.span.start());
            p.start_line();
            p.push("when ");
            p.condition(&policy.when);
            if let Some(d) = &policy.hold_for {
                p.push(" for ");
                p.expr(d);
            }
            p.prev_end = Some(
                p.tight(policy.hold_for.as_ref().unwrap_or(&policy.when).span)
                    .end(),
            );
            // then A, B
            if let Some(first) = policy.then.first() {
                p.before_line(first.span().start());
                p.start_line();
                p.push("then ");
                let broken = policy.then.windows(2).any(|w| {
                    let (a, b) = (p.tight(w[0].span()), w[1].span());
                    p.has_newline(a.end(), b.start()) || p.has_comment(a.end(), b.start())
                });
                let indent = p.indent;
                for (i, action) in policy.then.iter().enumerate() {
                    if i > 0 {
                        p.push(",");
                        if broken {
                            p.indent = indent + "then ".len();
                            p.before_line(action.span().start());
                            p.start_line();
                        } else {
                            p.push(" ");
                        }
                    }
                    p.action(action);
                    p.prev_end = Some(p.tight(action.span()).end());
                }
                p.indent = indent;
            }
            // `cooldown` and `max … per …` in the order written (a comment after one stays
            // with it).
            let cooldown_first = match (&policy.cooldown, &policy.rate_limit) {
                (Some(d), Some(limit)) => d.span.start() < limit.span.start(),
                _ => true,
            };
            let print_cooldown = |p: &mut Self| {
                if let Some(d) = &policy.cooldown {
                    p.before_line(d.span.start());
                    p.start_line();
                    p.push("cooldown ");
                    p.expr(d);
                    p.prev_end = Some(p.tight(d.span).end());
                }
            };
            let print_limit = |p: &mut Self| {
                if let Some(limit) = &policy.rate_limit {
                    p.before_line(limit.span.start());
                    p.start_line();
                    p.push("max ");
                    p.expr(&limit.count);
                    p.push(" per ");
                    p.expr(&limit.per);
                    p.prev_end = Some(p.tight(limit.span).end());
                }
            };
            if cooldown_first {
                print_cooldown(p);
                print_limit(p);
            } else {
                print_limit(p);
                print_cooldown(p);
            }
            p.before_line(close);
        });
        self.start_line();
        self.push("}");
    }

    /// A policy condition: a chain of `and`/`or` that the user broke across lines keeps one
    /// operand per line, aligned under the first.
    fn condition(&mut self, cond: &Expr) {
        let chain = logical_chain(cond);
        let broken = chain.as_ref().is_some_and(|(_, operands)| {
            operands
                .windows(2)
                .any(|w| self.has_newline(self.tight(w[0].span).end(), w[1].span.start()))
        });
        match chain {
            Some((op, operands)) if broken => {
                let indent = self.indent;
                let line_start = self.out.rfind('\n').map_or(0, |i| i + 1);
                let column = self.out.get(line_start..).unwrap_or("").chars().count();
                for (i, operand) in operands.iter().enumerate() {
                    if i > 0 {
                        self.indent = column;
                        self.before_line(operand.span.start());
                        self.start_line();
                        self.push(op.symbol());
                        self.push(" ");
                    }
                    self.expr(operand);
                    self.prev_end = Some(self.tight(operand.span).end());
                }
                self.indent = indent;
            }
            _ => self.expr(cond),
        }
    }

    fn action(&mut self, action: &Action) {
        match action {
            Action::Run(run) => self.run_action(run),
            Action::Call(e) => self.expr(e),
        }
    }

    fn run_action(&mut self, run: &RunAction) {
        self.push("run ");
        self.push(&run.workflow.name);
        let Some(open) = self.find(run.workflow.span.end(), self.tight(run.span).end(), '{') else {
            return;
        };
        let close = self.close_of(run.span);
        if run.with.is_empty() && !self.has_comment(open, close) {
            return;
        }
        self.push(" with ");
        self.record_fields(open, close, &run.with);
    }

    // ----------------------------------------------------------------------------------------
    // Workflows and steps

    fn workflow_member<'a>(&mut self, member: &'a WorkflowMember) -> Line<'a, 's> {
        match member {
            WorkflowMember::Param(param) => {
                let name_w = param.name.name.chars().count() + 1;
                let ty_w = self.measure(|p| p.ty(&param.ty));
                Line {
                    span: param.span,
                    align: Align::Columns {
                        group: Group::Param,
                        widths: vec![name_w, ty_w],
                    },
                    print: Box::new(move |p, w| p.param(param, w)),
                }
            }
            WorkflowMember::Step(step) => Line {
                span: step.span,
                align: Align::Break,
                print: Box::new(move |p, _| {
                    p.push("step ");
                    p.push(&step.name.name);
                    let lines = step.members.iter().map(step_member_line).collect();
                    p.block(p.close_of(step.span), lines);
                }),
            },
        }
    }

    fn param(&mut self, param: &Param, widths: &[usize]) {
        self.push("param ");
        let name_at = self.out.len();
        self.push(&param.name.name);
        self.push(":");
        self.pad_from(name_at, widths.first().copied().unwrap_or(0));
        self.push(" ");
        let ty_at = self.out.len();
        self.ty(&param.ty);
        if let Some(default) = &param.default {
            self.pad_from(ty_at, widths.get(1).copied().unwrap_or(0));
            self.push(" = ");
            self.expr(default);
        }
        if let Some(space) = &param.space {
            self.push(" in ");
            self.expr(space);
        }
    }

    fn resources(&mut self, r: &Resources) {
        self.push("resources ");
        let open = self
            .find(r.span.start(), r.span.end(), '{')
            .unwrap_or(r.span.start());
        self.record_fields(open, self.close_of(r.span), &r.fields);
    }

    // ----------------------------------------------------------------------------------------
    // Agent kinds and signatures

    fn param_sigs(&mut self, params: &[ParamSig], from: usize, to: usize) {
        let open = self.find(from, to, '(').unwrap_or(from);
        let close = self.find_close_paren(open, to);
        self.bracketed(
            ("(", ")"),
            open,
            close,
            params,
            |s| s.span,
            |p, s| p.param_sig(s),
            true,
        );
    }

    /// The `)` matching the `(` at `open` (the last `)` before `to` that is not in a string or
    /// comment).
    fn find_close_paren(&self, open: usize, to: usize) -> usize {
        let mut depth = 0usize;
        let mut i = open;
        let bytes = self.text.as_bytes();
        while i < to.min(bytes.len()) {
            if let Some(c) = self.comments.iter().find(|c| c.span.start() == i) {
                i = c.span.end().max(i + 1);
                continue;
            }
            match bytes[i] {
                b'"' => {
                    // Skip the string.
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                        if bytes[i] == b'\\' {
                            i += 1;
                        }
                        i += 1;
                    }
                }
                b'(' => depth += 1,
                b')' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return i;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        to
    }

    fn param_sig(&mut self, sig: &ParamSig) {
        self.push(&sig.name.name);
        self.push(": ");
        self.ty(&sig.ty);
        if let Some(default) = &sig.default {
            self.push(" = ");
            self.expr(default);
        }
    }

    fn kind_action(&mut self, action: &KindAction) {
        self.push("action ");
        self.push(&action.name.name);
        let end = match &action.binding {
            Some(ActionBinding::Run(r)) => r.span.start(),
            Some(ActionBinding::Webhook(s)) => s.span.start(),
            None => action.span.end(),
        };
        self.param_sigs(&action.params, action.name.span.end(), end);
        match &action.binding {
            Some(ActionBinding::Run(run)) => {
                self.push(" -> ");
                self.run_action(run);
            }
            Some(ActionBinding::Webhook(url)) => {
                self.push(" -> webhook ");
                self.push(self.slice(url.span));
            }
            None => {}
        }
    }

    // ----------------------------------------------------------------------------------------
    // Types and expressions

    fn ty(&mut self, ty: &TypeExpr) {
        self.push(&ty.name.name);
        if !ty.args.is_empty() {
            self.push("<");
            for (i, arg) in ty.args.iter().enumerate() {
                if i > 0 {
                    self.push(", ");
                }
                self.ty(arg);
            }
            self.push(">");
        }
    }

    fn expr(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Int(_)
            | ExprKind::Float(_)
            | ExprKind::Suffixed { .. }
            | ExprKind::Str(_) => {
                self.push(self.slice(e.span));
            }
            ExprKind::Bool(b) => self.push(if *b { "true" } else { "false" }),
            ExprKind::Name(ident) => self.push(&ident.name),
            ExprKind::Field { base, field } => {
                self.expr(base);
                self.push(".");
                self.push(&field.name);
            }
            ExprKind::Call { callee, args } => {
                self.expr(callee);
                let open = self
                    .find(callee.span.end(), e.span.end(), '(')
                    .unwrap_or(callee.span.end());
                let close = self.close_of(e.span);
                self.bracketed(
                    ("(", ")"),
                    open,
                    close,
                    args,
                    |a| a.span,
                    |p, a| p.arg(a),
                    true,
                );
            }
            ExprKind::List(items) => {
                let close = self.close_of(e.span);
                self.bracketed(
                    ("[", "]"),
                    e.span.start(),
                    close,
                    items,
                    |x| x.span,
                    |p, x| p.expr(x),
                    true,
                );
            }
            ExprKind::Record(fields) => {
                self.record_fields(e.span.start(), self.close_of(e.span), fields);
            }
            ExprKind::Range { start, end } => {
                self.expr(start);
                self.push("..");
                self.expr(end);
            }
            ExprKind::Unary { op, operand } => {
                self.push(op.symbol());
                self.expr(operand);
            }
            ExprKind::Binary { op, lhs, rhs } => {
                self.expr(lhs);
                self.push(" ");
                self.push(op.symbol());
                self.push(" ");
                self.expr(rhs);
            }
            ExprKind::Paren(inner) => {
                self.push("(");
                self.expr(inner);
                self.push(")");
            }
        }
    }

    fn arg(&mut self, arg: &Arg) {
        if let Some(name) = &arg.name {
            self.push(&name.name);
            self.push(" = ");
        }
        self.expr(&arg.value);
    }

    /// Whether a bracketed construct opened at `open` and closed at `close` is laid out one
    /// element per line: when it holds a comment, or when the user put a line break right
    /// after the opening bracket.
    fn expands(&self, open: usize, close: usize, first: Option<usize>) -> bool {
        self.has_comment(open, close) || self.has_newline(open, first.unwrap_or(close))
    }

    /// A comma-separated bracketed list: `(a, b)` on one line, or expanded with one element
    /// per line and a trailing comma.
    #[allow(clippy::too_many_arguments)]
    fn bracketed<T>(
        &mut self,
        (left, right): (&str, &str),
        open: usize,
        close: usize,
        items: &[T],
        span: impl Fn(&T) -> Span,
        print: impl Fn(&mut Self, &T),
        trailing_comma: bool,
    ) {
        self.push(left);
        if self.expands(open, close, items.first().map(|x| span(x).start())) {
            self.nested(|p| {
                for item in items {
                    p.member(span(item), |p| print(p, item));
                    if trailing_comma {
                        p.push(",");
                    }
                }
                p.before_line(close);
            });
            self.start_line();
        } else {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    self.push(", ");
                }
                print(self, item);
            }
        }
        self.push(right);
    }

    /// `{ a = 1, b = 2 }` on one line, or one aligned field per line.
    fn record_fields(&mut self, open: usize, close: usize, fields: &[Field]) {
        if self.expands(open, close, fields.first().map(|f| f.span.start())) {
            self.push("{");
            let lines = fields.iter().map(field_line).collect();
            self.nested(|p| {
                p.lines(lines);
                p.before_line(close);
            });
            self.start_line();
            self.push("}");
        } else if fields.is_empty() {
            self.push("{}");
        } else {
            self.push("{ ");
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    self.push(", ");
                }
                self.field(f, &[]);
            }
            self.push(" }");
        }
    }

    fn field(&mut self, f: &Field, widths: &[usize]) {
        let at = self.out.len();
        self.push(&f.name.name);
        self.pad_from(at, widths.first().copied().unwrap_or(0));
        self.push(" = ");
        self.expr(&f.value);
    }
}

// ---------------------------------------------------------------------------------------------
// Lines of the blocks

fn field_line<'a, 's>(f: &'a Field) -> Line<'a, 's> {
    Line {
        span: f.span,
        align: Align::Columns {
            group: Group::FirstWord,
            widths: vec![f.name.name.chars().count()],
        },
        print: Box::new(move |p, w| p.field(f, w)),
    }
}

fn resources_line<'a, 's>(r: &'a Resources) -> Line<'a, 's> {
    Line {
        span: r.span,
        align: Align::Skip,
        print: Box::new(move |p, _| p.resources(r)),
    }
}

fn step_member_span(m: &StepMember) -> Span {
    match m {
        StepMember::Field(f) => f.span,
        StepMember::Port(p) => p.span,
        StepMember::Resources(r) => r.span,
        StepMember::Retry(r) => r.span,
        StepMember::Timeout(t) => t.span,
    }
}

fn step_member_line<'a, 's>(m: &'a StepMember) -> Line<'a, 's> {
    match m {
        StepMember::Field(f) => field_line(f),
        StepMember::Port(port) => Line {
            span: port.span,
            align: Align::Columns {
                group: Group::FirstWord,
                widths: vec![port.sort.keyword().len()],
            },
            print: Box::new(move |p, w| {
                let at = p.out.len();
                p.push(port.sort.keyword());
                p.pad_from(at, w.first().copied().unwrap_or(0));
                p.push(" ");
                p.push(&port.name.name);
                p.push(": ");
                p.ty(&port.ty);
                if let Some(source) = &port.source {
                    p.push(" = ");
                    p.expr(source);
                }
            }),
        },
        StepMember::Resources(r) => resources_line(r),
        StepMember::Retry(retry) => Line {
            span: retry.span,
            align: Align::Skip,
            print: Box::new(move |p, _| {
                p.push("retry ");
                p.expr(&retry.count);
                if let Some(backoff) = &retry.backoff {
                    p.push(" backoff ");
                    p.expr(backoff);
                }
            }),
        },
        StepMember::Timeout(timeout) => Line {
            span: timeout.span,
            align: Align::Skip,
            print: Box::new(move |p, _| {
                p.push("timeout ");
                p.expr(&timeout.value);
            }),
        },
    }
}

fn kind_member_line<'a, 's>(m: &'a KindMember) -> Line<'a, 's> {
    let (span, keyword) = match m {
        KindMember::Config(c) => (c.span, "config"),
        KindMember::Sensor(s) => (s.span, "sensor"),
        KindMember::Action(a) => (a.span, "action"),
    };
    Line {
        span,
        align: Align::Columns {
            group: Group::FirstWord,
            widths: vec![keyword.len()],
        },
        print: Box::new(move |p, _| match m {
            KindMember::Config(c) => {
                p.push("config ");
                p.push(&c.name.name);
                p.push(": ");
                p.ty(&c.ty);
                if c.optional {
                    p.push("?");
                }
                if let Some(default) = &c.default {
                    p.push(" = ");
                    p.expr(default);
                }
            }
            KindMember::Sensor(s) => {
                p.push("sensor ");
                p.push(&s.name.name);
                p.push(": ");
                p.ty(&s.ty);
            }
            KindMember::Action(a) => p.kind_action(a),
        }),
    }
}

/// The operands of a chain of the same `and`/`or` operator (`a and b and c`), if `e` is one.
fn logical_chain(e: &Expr) -> Option<(BinaryOp, Vec<&Expr>)> {
    let ExprKind::Binary { op, .. } = &e.kind else {
        return None;
    };
    if !matches!(op, BinaryOp::And | BinaryOp::Or) {
        return None;
    }
    let mut operands = Vec::new();
    let mut current = e;
    while let ExprKind::Binary { op: o, lhs, rhs } = &current.kind {
        if o != op {
            break;
        }
        operands.push(rhs.as_ref());
        current = lhs;
    }
    operands.push(current);
    operands.reverse();
    Some((*op, operands))
}
