//! The parser: text → [`ast::SourceFile`], comments and syntax diagnostics.
//!
//! How it works, in order:
//! 1. `comments::lex` scans the text once (strings, comments, words, punctuation). Unterminated
//!    strings and block comments are reported from this scan, precisely and once.
//! 2. `recovery::split_items` cuts the file into declaration chunks; each is parsed with the
//!    pest rule `item_chunk`, so every bad declaration gets its own diagnostic and the good ones
//!    survive. A failed workflow is salvaged member by member (`recovery::split_body`), and a
//!    failed step inside it line by line (`recovery::split_block`). A declaration that is
//!    complete but followed by stray text is kept, and the stray text reported.
//! 3. pest's pairs are turned into our AST right here (they never leave this module); spans
//!    are shifted to absolute file offsets; doc comments are attached; literals are decoded
//!    (escapes, `{{ … }}` interpolations, numbers with units) and checked.
//! 4. When pest fails, `messages` translates the rules it expected into the user's words,
//!    using the tokens before the error for context ("expected `{` after the step name").
//!
//! Naming: `parse_*` runs pest; `conv_*` turns a pair into an AST node; `report_*` adds a
//! diagnostic. Conversion never panics: a pair of an unexpected shape (a grammar/converter
//! mismatch, a bug) drops the declaration with an "internal error" diagnostic instead.

use pest::iterators::Pair;
use pest::Parser as _;

use super::ast::{self, *};
use super::comments::{self, CommentKind, Tok, TokKind};
use super::incremental::Memo;
use super::recovery::{self, Chunk};
use crate::diagnostics::{self, Code, Diagnostic};
use crate::span::{FileId, Span};

mod grammar {
    //! The pest-generated parser, private to this module.
    #[derive(pest_derive::Parser)]
    #[grammar = "../../grammar/sflow.pest"]
    pub(super) struct SflowParser;
}

use grammar::{Rule, SflowParser};

/// The result of parsing one file. Parsing never fails: whatever the input, this holds every
/// declaration that parsed and one diagnostic per independent syntax error.
#[derive(Clone, Debug, PartialEq)]
pub struct Parse {
    /// The declarations that parsed. A declaration with a syntax error is absent, except a
    /// workflow, which keeps the params and steps that parsed (and a broken step keeps the
    /// members that parsed).
    pub file: SourceFile,
    /// Every comment of the file, in source order (for the formatter; doc comments are also
    /// attached to their declarations in `file`).
    pub comments: Vec<comments::Comment>,
    /// Syntax diagnostics (codes E0001–E0003), sorted by position.
    pub diagnostics: Vec<Diagnostic>,
}

impl Parse {
    /// Whether the file parsed without any diagnostic.
    pub fn is_ok(&self) -> bool {
        self.diagnostics.is_empty()
    }

    /// Whether a syntax error points inside `span` (a declaration's, say). A workflow or step
    /// with such an error was only partly parsed: later stages should skip completeness checks
    /// on it ("a step needs an `image`"), since the missing part may be the one the syntax
    /// error is about.
    pub fn has_error_within(&self, span: Span) -> bool {
        self.diagnostics.iter().any(|d| {
            d.is_error()
                && span.start <= d.primary.at.span.start
                && d.primary.at.span.start <= span.end
        })
    }
}

/// Parses one `.sflow` file. Never panics and never fails; runs in time linear in the text.
pub fn parse(file: FileId, text: &str) -> Parse {
    parse_with(file, text, true, None)
}

/// [`parse`], reusing the pieces cached in `memo` whose key did not change and caching the
/// others (see `super::incremental`). The result is the same as [`parse`]'s.
pub(crate) fn parse_memo(file: FileId, text: &str, memo: &mut Memo) -> Parse {
    memo.begin();
    parse_with(file, text, true, Some(memo))
}

/// [`parse`], where `by_members` says whether a workflow may be parsed a run of members at a
/// time (see `Parser::parse_workflow_by_members`); without, each is parsed whole, as tests
/// compare.
fn parse_with<'s>(
    file: FileId,
    text: &'s str,
    by_members: bool,
    memo: Option<&'s mut Memo>,
) -> Parse {
    let toks = comments::lex(text);
    let code: Vec<Tok> = toks.iter().filter(|t| !t.is_comment()).copied().collect();
    let has_docs = toks.iter().any(|t| {
        matches!(
            t.kind,
            TokKind::Comment {
                kind: CommentKind::Doc,
                ..
            }
        )
    });
    let mut p = Parser {
        file,
        text,
        toks: &toks,
        code: &code,
        has_docs,
        by_members,
        diags: Vec::new(),
        offset: 0,
        too_deep: false,
        memo,
        by_members_done: false,
    };
    p.report_lexical_errors();
    let mut items = Vec::new();
    for chunk in recovery::split_items(text, &code) {
        let keyed = p
            .memo
            .is_some()
            .then(|| p.piece_key(chunk.toks.start, chunk.span.end()));
        if let Some((key, origin)) = &keyed {
            if let Some((item, diags)) = p.memo.as_mut().and_then(|m| m.item(key, *origin)) {
                p.diags.extend(diags);
                items.extend(item);
                continue;
            }
        }
        let before = p.diags.len();
        p.by_members_done = false;
        let item = p.parse_chunk(&chunk);
        // A workflow parsed by members has its members cached, which is what matters.
        if let (Some((key, origin)), false) = (keyed, p.by_members_done) {
            let diags = p.diags[before..].to_vec();
            if let Some(memo) = p.memo.as_mut() {
                memo.put_item(key, origin, item.clone(), diags);
            }
        }
        items.extend(item);
    }
    let mut diags = p.diags;
    diagnostics::sort(&mut diags);
    let comments = toks
        .iter()
        .filter_map(|t| match t.kind {
            TokKind::Comment { kind, .. } => Some(comments::Comment {
                kind,
                text: t.span.text(text).to_string(),
                span: t.span,
            }),
            _ => None,
        })
        .collect();
    Parse {
        file: SourceFile {
            items,
            span: Span::new(0, text.len()),
        },
        comments,
        diagnostics: diags,
    }
}

/// How many workflow members one pest call parses (see `Parser::parse_workflow_by_members`).
/// Measured with cachegrind on a workflow of 5000 steps: one member per call costs 7% more
/// instructions than one call for all, one call for all four times the cache misses; 32 is
/// about the best of both.
const MEMBERS_PER_RUN: usize = 32;

/// Deepest expression tree the parser builds (operators, calls, brackets all count). Later
/// stages recurse over expressions; this keeps them within the stack.
const MAX_EXPR_DEPTH: u32 = 200;
/// Deepest type (`list<list<…>>`) the parser builds.
const MAX_TYPE_DEPTH: u32 = 32;

type PestError = pest::error::Error<Rule>;

struct Parser<'s> {
    file: FileId,
    text: &'s str,
    /// All coarse tokens, comments included (for doc comments).
    toks: &'s [Tok],
    /// The coarse tokens without comments (for recovery and messages).
    code: &'s [Tok],
    /// Whether the file has any doc comment (when not, no declaration looks for one).
    has_docs: bool,
    /// Whether a workflow may be parsed a run of members at a time.
    by_members: bool,
    diags: Vec<Diagnostic>,
    /// Where the text pest is currently looking at starts in the file.
    offset: usize,
    /// Set when a tree would be too deep; the declaration is then dropped.
    too_deep: bool,
    /// The cache of pieces, when parsing incrementally.
    memo: Option<&'s mut Memo>,
    /// Whether the last declaration was a workflow parsed a run of members at a time.
    by_members_done: bool,
}

/// Why a conversion gave up: a pair did not have the shape the grammar promises.
#[derive(Debug)]
struct Internal;

type Conv<T> = Result<T, Internal>;

impl<'s> Parser<'s> {
    // ----------------------------------------------------------------------------------------
    // Driving pest over chunks

    fn report_lexical_errors(&mut self) {
        let unterminated = |t: &Tok| {
            matches!(
                t.kind,
                TokKind::Str { terminated: false }
                    | TokKind::Comment {
                        terminated: false,
                        ..
                    }
            )
        };
        if !self.toks.iter().any(unterminated) {
            return;
        }
        // The line of the last unterminated string, and whether a string started earlier on the
        // current line.
        let mut open_line: Option<usize> = None;
        let mut line = 0usize;
        let mut last_start = 0usize;
        let mut string_on_line = false;
        for tok in self.toks {
            // Newlines since the previous token's start (block comments may hold some).
            let newlines = self
                .text
                .get(last_start..tok.span.start())
                .map_or(0, |g| g.bytes().filter(|&b| b == b'\n').count());
            if newlines > 0 {
                line += newlines;
                string_on_line = false;
            }
            last_start = tok.span.start();
            let first_string_on_line = !string_on_line;
            if matches!(tok.kind, TokKind::Str { .. }) {
                string_on_line = true;
            }
            match tok.kind {
                // A string that went on to the next line: its closing quote there reads as
                // the start of another unterminated string. One report is enough.
                TokKind::Str { terminated: false }
                    if first_string_on_line && open_line.is_some_and(|l| l + 1 == line) =>
                {
                    open_line = None;
                }
                TokKind::Str { terminated: false } => {
                    open_line = Some(line);
                    let d =
                        Diagnostic::new(Code::E0001, self.file, tok.span, "unterminated string")
                            .with_label("this string is never closed")
                            .with_help(
                                "close it with `\"` on the same line; a string cannot span lines \
                             (write `\\n` for a line break)",
                            );
                    self.diags.push(d);
                }
                TokKind::Comment {
                    terminated: false, ..
                } => {
                    let at = Span::new(tok.span.start(), tok.span.start() + 2);
                    let d =
                        Diagnostic::new(Code::E0001, self.file, at, "unterminated block comment")
                            .with_label("this comment is never closed")
                            .with_help(
                                "close it with `*/`; everything after `/*` is a comment until then",
                            );
                    self.diags.push(d);
                }
                _ => {}
            }
        }
    }

    fn parse_chunk(&mut self, chunk: &Chunk) -> Option<Item> {
        let first = self.code.get(chunk.toks.start)?;
        let word = first.span.text(self.text);
        if first.kind != TokKind::Word || !recovery::is_decl_keyword(word) {
            self.report_stray(first);
            return None;
        }
        if let Some(at) = chunk.too_deep {
            self.report_too_deep(at);
            return None;
        }
        if chunk.has_lex_error {
            // Already reported; a workflow still keeps its other members.
            return if word == "workflow" {
                self.recover_workflow(chunk, None)
            } else {
                None
            };
        }
        if word == "workflow" && self.by_members {
            if let Some(workflow) = self.parse_workflow_by_members(chunk) {
                self.by_members_done = true;
                return Some(workflow);
            }
        }
        match self.parse_piece(chunk, Rule::item_chunk, Self::conv_item) {
            Ok(item) => item,
            Err(err) if complete_at(&err).is_some() => {
                // The declaration is complete and stray text follows it: keep the declaration.
                self.report_pest(&err, chunk.span, &[]);
                self.salvage(chunk, Rule::item_chunk, &err, Self::conv_item)
            }
            Err(err) if word == "workflow" => self.recover_workflow(chunk, Some(err)),
            Err(err) => {
                self.report_pest(&err, chunk.span, &[]);
                None
            }
        }
    }

    /// A workflow parsed piece by piece: its head (`workflow NAME {`), then its members (cut by
    /// `recovery::split_body`) in runs of [`MEMBERS_PER_RUN`], each run one pest call
    /// (`workflow_members`). pest builds the whole token queue of what it parses before we see
    /// a pair, so one call over a workflow of thousands of steps builds a queue of hundreds of
    /// thousands of tokens (megabytes, out of cache), and one call per member pays pest's cost
    /// per call (a state, its vectors grown from empty, a line index) thousands of times.
    ///
    /// Only for a workflow without a syntax error: at the first failure of any piece, whatever
    /// this did is undone (its diagnostics too) and `None` tells the caller to parse the
    /// workflow whole, as before, so that errors are found and reported the usual way. The
    /// runs cover the body exactly, member by member, so success here gives the same members
    /// as the whole parse would.
    fn parse_workflow_by_members(&mut self, chunk: &Chunk) -> Option<Item> {
        let before = self.diags.len();
        let workflow = self.try_workflow_by_members(chunk);
        if workflow.is_none() {
            self.diags.truncate(before);
        }
        workflow
    }

    fn try_workflow_by_members(&mut self, chunk: &Chunk) -> Option<Item> {
        let src = chunk.span.text(self.text);
        let head = SflowParser::parse(Rule::workflow_head, src).ok()?.next()?;
        let (name, _, open) = self.head_parts(head, chunk)?;
        // The caller has checked that the chunk is neither too deep nor holds a lexical error.
        let (starts, close) = recovery::body_members(self.text, self.code, open, chunk.toks.end);
        let close = close?;
        if close + 1 != chunk.toks.end {
            // Stray text after the body.
            return None;
        }
        // Where each member ends: at the last token before the next member (or the `}`).
        let mut ends = Vec::with_capacity(starts.len());
        for (n, _) in starts.iter().enumerate() {
            let next = starts.get(n + 1).copied().unwrap_or(close);
            ends.push(self.code.get(next.checked_sub(1)?)?.span.end());
        }
        // Each member's tree and the diagnostics its conversion reported: from the cache, or
        // parsed below.
        let mut parsed: Vec<Option<(WorkflowMember, Vec<Diagnostic>)>> =
            Vec::with_capacity(starts.len());
        let mut keys: Vec<Option<(String, usize)>> = Vec::with_capacity(starts.len());
        for (n, &first) in starts.iter().enumerate() {
            if self.memo.is_some() {
                let (key, origin) = self.piece_key(first, ends[n]);
                parsed.push(self.memo.as_mut().and_then(|m| m.member(&key, origin)));
                keys.push(Some((key, origin)));
            } else {
                parsed.push(None);
                keys.push(None);
            }
        }
        // The others, consecutive ones in runs of at most MEMBERS_PER_RUN, each run one pest
        // call. Each pair must cover its own member chunk, one pair per chunk.
        let mut n = 0;
        while n < starts.len() {
            if parsed[n].is_some() {
                n += 1;
                continue;
            }
            let mut m = n;
            while m < starts.len() && m - n < MEMBERS_PER_RUN && parsed[m].is_none() {
                m += 1;
            }
            let first = self.code.get(starts[n])?;
            let span = Span::new(first.span.start(), ends[m - 1]);
            let top = SflowParser::parse(Rule::workflow_members, span.text(self.text))
                .ok()?
                .next()?;
            self.offset = span.start();
            self.too_deep = false;
            let mut k = n;
            for pair in top.into_inner() {
                if pair.as_rule() == Rule::EOI {
                    continue;
                }
                let at = self.span_of(&pair);
                if k >= m || at.start() != self.code[starts[k]].span.start() || at.end() > ends[k] {
                    return None;
                }
                let before = self.diags.len();
                let member = self.conv_workflow_member(pair).ok()?;
                if self.too_deep {
                    return None;
                }
                let diags = self.diags.split_off(before);
                if let (Some((key, origin)), Some(memo)) = (keys[k].take(), self.memo.as_mut()) {
                    memo.put_member(key, origin, member.clone(), diags.clone());
                }
                parsed[k] = Some((member, diags));
                k += 1;
            }
            if k != m {
                return None;
            }
            n = m;
        }
        let mut members = Vec::with_capacity(starts.len());
        for piece in parsed {
            let (member, diags) = piece?;
            members.push(member);
            self.diags.extend(diags);
        }
        let start = chunk.span.start();
        Some(Item::Workflow(Workflow {
            doc: self.doc_at(start),
            name,
            members,
            span: Span::new(start, self.code[close].span.end()),
        }))
    }

    /// A workflow whose declaration failed: report each broken member and keep the others.
    fn recover_workflow(&mut self, chunk: &Chunk, whole: Option<PestError>) -> Option<Item> {
        let (name, open_at, open) =
            self.parse_head(chunk, Rule::workflow_head, whole.as_ref(), &[])?;
        let before = self.diags.len();
        let body = recovery::split_body(self.text, self.code, open, chunk.toks.end);
        let head: Vec<Tok> = self.code[chunk.toks.start..open + 1].to_vec();
        let mut members = Vec::new();
        for member in &body.members {
            if let Some(at) = member.too_deep {
                self.report_too_deep(at);
                continue;
            }
            if member.has_lex_error {
                continue;
            }
            let keyed = self
                .memo
                .is_some()
                .then(|| self.piece_key(member.toks.start, member.span.end()));
            if let Some((key, origin)) = &keyed {
                if let Some((m, diags)) = self.memo.as_mut().and_then(|c| c.member(key, *origin)) {
                    members.push(m);
                    self.diags.extend(diags);
                    continue;
                }
            }
            let diags_before = self.diags.len();
            match self.parse_piece(
                member,
                Rule::workflow_member_chunk,
                Self::conv_workflow_member,
            ) {
                Ok(Some(m)) => {
                    if let (Some((key, origin)), Some(memo)) = (keyed, self.memo.as_mut()) {
                        let diags = self.diags[diags_before..].to_vec();
                        memo.put_member(key, origin, m.clone(), diags);
                    }
                    members.push(m);
                }
                Ok(None) => {}
                Err(err) => {
                    let is_step = self.code[member.toks.start].is_word(self.text, "step");
                    let salvaged = if is_step && complete_at(&err).is_none() {
                        // A broken step: salvage its good members in turn.
                        self.recover_step(member, &head, &err)
                    } else {
                        self.report_pest(&err, member.span, &head);
                        self.salvage(
                            member,
                            Rule::workflow_member_chunk,
                            &err,
                            Self::conv_workflow_member,
                        )
                    };
                    members.extend(salvaged);
                }
            }
        }
        let end = self.finish_body(&body, chunk, &format!("workflow `{}`", name.name), open_at);
        if self.diags.len() == before && !chunk.has_lex_error {
            // The pieces all parsed, yet the whole did not: report pest's own finding.
            match whole {
                Some(err) => self.report_pest(&err, chunk.span, &[]),
                None => self.report_internal(chunk.span),
            }
        }
        let start = chunk.span.start();
        Some(Item::Workflow(Workflow {
            doc: self.doc_at(start),
            name,
            members,
            span: Span::new(start, end),
        }))
    }

    /// A step whose member chunk failed (`head` is the workflow's `workflow w {`): report each
    /// broken member of the step and keep the others.
    fn recover_step(
        &mut self,
        chunk: &Chunk,
        outer: &[Tok],
        err: &PestError,
    ) -> Option<WorkflowMember> {
        // A broken head (`step {`) is reported as it is; nothing to salvage.
        let (name, open_at, open) = self.parse_head(chunk, Rule::step_head, Some(err), outer)?;
        let before = self.diags.len();
        let body = recovery::split_block(
            self.text,
            self.code,
            open,
            chunk.toks.end,
            recovery::STEP_MEMBER_KEYWORDS,
        );
        let mut head = outer.to_vec();
        head.extend_from_slice(&self.code[chunk.toks.start..open + 1]);
        let mut members = Vec::new();
        for member in &body.members {
            if let Some(at) = member.too_deep {
                self.report_too_deep(at);
                continue;
            }
            if member.has_lex_error {
                continue;
            }
            match self.parse_piece(member, Rule::step_member_chunk, Self::conv_step_member) {
                Ok(Some(m)) => members.push(m),
                Ok(None) => {}
                Err(err) => {
                    self.report_pest(&err, member.span, &head);
                    members.extend(self.salvage(
                        member,
                        Rule::step_member_chunk,
                        &err,
                        Self::conv_step_member,
                    ));
                }
            }
        }
        let end = self.finish_body(&body, chunk, &format!("step `{}`", name.name), open_at);
        if self.diags.len() == before {
            self.report_pest(err, chunk.span, outer);
        }
        let start = chunk.span.start();
        Some(WorkflowMember::Step(Step {
            doc: self.doc_at(start),
            name,
            members,
            span: Span::new(start, end),
        }))
    }

    /// Parses the head of a block (`workflow w {`, `step s {`) at the start of `chunk`: its name,
    /// the span of its `{` and that brace's code index. A broken head is reported (as the
    /// failure `whole`, when given, with `context` before the chunk) and gives `None`.
    fn parse_head(
        &mut self,
        chunk: &Chunk,
        rule: Rule,
        whole: Option<&PestError>,
        context: &[Tok],
    ) -> Option<(Ident, Span, usize)> {
        let src = chunk.span.text(self.text);
        let head = match SflowParser::parse(rule, src) {
            Ok(mut pairs) => pairs.next(),
            Err(err) => {
                self.report_pest(whole.unwrap_or(&err), chunk.span, context);
                return None;
            }
        };
        let found = head.and_then(|head| self.head_parts(head, chunk));
        if found.is_none() {
            self.report_internal(chunk.span);
        }
        found
    }

    /// The name, the span of the `{` and its code index, of a parsed head (`workflow_head`,
    /// `step_head`) at the start of `chunk`.
    fn head_parts(&mut self, head: Pair<'_, Rule>, chunk: &Chunk) -> Option<(Ident, Span, usize)> {
        self.offset = chunk.span.start();
        let mut name = None;
        let mut open_at = None;
        for pair in head.into_inner() {
            match pair.as_rule() {
                Rule::decl_name => name = Some(self.conv_decl_name(&pair)),
                Rule::lbrace => open_at = Some(self.span_of(&pair)),
                _ => {}
            }
        }
        match (name, open_at) {
            (Some(name), Some(open_at)) => self
                .code_index_at(open_at.start(), chunk)
                .map(|open| (name, open_at, open)),
            _ => None,
        }
    }

    /// Reports a body that is never closed or has stray text after its `}`; returns the end of
    /// the block.
    fn finish_body(
        &mut self,
        body: &recovery::Body,
        chunk: &Chunk,
        what: &str,
        open_at: Span,
    ) -> usize {
        let end = match body.close {
            Some(close) => self.code[close].span.end(),
            None => {
                let last_end = chunk.span.end();
                let d = Diagnostic::new(
                    Code::E0001,
                    self.file,
                    Span::point(last_end),
                    format!("expected `}}` to close {what}"),
                )
                .with_label("expected `}` here")
                .with_secondary(self.file, open_at, "this `{` is never closed")
                .with_help("every `{` needs a matching `}`");
                self.diags.push(d);
                last_end
            }
        };
        if let Some(trailing) = &body.trailing {
            let tok = self.code[trailing.start];
            let kind = what.split(' ').next().unwrap_or("block");
            self.report_unexpected_after(&tok, &format!("the {kind}"));
        }
        end
    }

    /// Parses one member chunk with `rule` and converts it. `Ok(None)`: it parsed but could not
    /// be kept (too deep; already reported). `Err`: pest's failure, not yet reported.
    fn parse_piece<T>(
        &mut self,
        piece: &Chunk,
        rule: Rule,
        conv: fn(&mut Self, Pair<'_, Rule>) -> Conv<T>,
    ) -> Result<Option<T>, PestError> {
        let src = piece.span.text(self.text);
        let mut pairs = SflowParser::parse(rule, src)?;
        let Some(pair) = pairs.next().and_then(|p| p.into_inner().next()) else {
            self.report_internal(piece.span);
            return Ok(None);
        };
        Ok(self.convert_piece(pair, piece.span, conv))
    }

    fn convert_piece<T>(
        &mut self,
        pair: Pair<'_, Rule>,
        span: Span,
        conv: fn(&mut Self, Pair<'_, Rule>) -> Conv<T>,
    ) -> Option<T> {
        self.offset = span.start();
        self.too_deep = false;
        let converted = conv(self, pair);
        if std::mem::take(&mut self.too_deep) {
            self.report_too_deep(Span::point(span.start()));
            return None;
        }
        match converted {
            Ok(m) => Some(m),
            Err(Internal) => {
                self.report_internal(span);
                None
            }
        }
    }

    /// After a failure `err` that shows a complete member followed by stray text (already
    /// reported), parses and keeps the member.
    fn salvage<T>(
        &mut self,
        piece: &Chunk,
        rule: Rule,
        err: &PestError,
        conv: fn(&mut Self, Pair<'_, Rule>) -> Conv<T>,
    ) -> Option<T> {
        let end = complete_at(err)?;
        let src = piece.span.text(self.text);
        let prefix = src.get(..end).unwrap_or("").trim_end();
        let mut pairs = SflowParser::parse(rule, prefix).ok()?;
        let pair = pairs.next().and_then(|p| p.into_inner().next())?;
        let span = Span::new(piece.span.start(), piece.span.start() + prefix.len());
        self.convert_piece(pair, span, conv)
    }

    /// The cache key of the piece whose first code token is `first` and that ends at byte
    /// `end`, and where the key's text starts (its origin). What a piece parses to depends on
    /// its text, on the doc comments right before it (attached to it: `doc_at`), and on whether
    /// its first token starts a line or column 0 (recovery and messages look at that); the key
    /// holds all three.
    fn piece_key(&self, first: usize, end: usize) -> (String, usize) {
        let tok = self.code[first];
        let mut origin = tok.span.start();
        if self.has_docs {
            let i = self.toks.partition_point(|t| t.span.start() < origin);
            let mut j = i;
            while j > 0
                && matches!(
                    self.toks[j - 1].kind,
                    TokKind::Comment {
                        kind: CommentKind::Doc,
                        ..
                    }
                )
            {
                j -= 1;
            }
            if j < i {
                origin = self.toks[j].span.start();
            }
        }
        let text = self.text.get(origin..end).unwrap_or("");
        let mut key = String::with_capacity(text.len() + 1);
        key.push(match (tok.line_start, tok.col0) {
            (false, false) => '0',
            (true, false) => '1',
            (false, true) => '2',
            (true, true) => '3',
        });
        key.push_str(text);
        (key, origin)
    }

    fn code_index_at(&self, start: usize, chunk: &Chunk) -> Option<usize> {
        let toks = self.code.get(chunk.toks.clone())?;
        let i = toks.partition_point(|t| t.span.start() < start);
        (toks.get(i)?.span.start() == start).then_some(chunk.toks.start + i)
    }

    // ----------------------------------------------------------------------------------------
    // Reporting

    fn report_stray(&mut self, first: &Tok) {
        let word = first.span.text(self.text);
        let shown = messages::show_tok(self.text, first);
        let mut d = Diagnostic::new(
            Code::E0001,
            self.file,
            first.span,
            format!("expected a declaration, found {shown}"),
        )
        .with_label("expected a declaration here");
        let help = match word {
            "param" | "step" => format!(
                "`{word}` declares a member of a workflow: put it inside `workflow NAME {{ … }}`"
            ),
            "input" | "output" | "metric" | "retry" | "timeout" | "resources" => {
                format!("`{word}` belongs inside a step: `step NAME {{ {word} … }}`")
            }
            "slo" => "`slo` belongs inside a `service NAME { … }`".to_string(),
            "config" | "sensor" | "action" | "kind" => {
                format!("`{word}` belongs inside an agent kind: `agent kind NAME {{ {word} … }}`")
            }
            "when" | "then" | "cooldown" | "max" => {
                format!("`{word}` belongs inside a policy: `policy NAME {{ when … then … }}`")
            }
            "fn" => "write `extern fn NAME(PARAMS) -> TYPE` (standard library only)".to_string(),
            _ => {
                let close = recovery::DECL_KEYWORDS
                    .iter()
                    .copied()
                    .filter(|k| {
                        first.kind == TokKind::Word && strsim::damerau_levenshtein(k, word) <= 2
                    })
                    .min_by_key(|k| strsim::damerau_levenshtein(k, word));
                match close {
                    Some(k) if word.len() > 1 => {
                        d = d.with_suggestion(format!("replace with `{k}`"), self.file, first.span, k);
                        format!("did you mean `{k}`?")
                    }
                    _ => "a file holds declarations, each starting with `app`, `use`, `type`, `workflow`, \
                          `service`, `agent`, `trigger`, `policy` or `extern`"
                        .to_string(),
                }
            }
        };
        self.diags.push(d.with_help(help));
    }

    fn report_too_deep(&mut self, at: Span) {
        let d = Diagnostic::new(
            Code::E0001,
            self.file,
            at,
            "this declaration is nested too deeply",
        )
        .with_label("nesting goes too deep here")
        .with_help("split the expression or value into smaller parts");
        self.diags.push(d);
    }

    fn report_internal(&mut self, at: Span) {
        let d = Diagnostic::new(
            Code::E0001,
            self.file,
            Span::point(at.start()),
            "internal error: the parser could not build this declaration",
        )
        .with_label("here")
        .with_help("this is a bug in sflow; please report it with this file");
        self.diags.push(d);
    }

    fn report_unexpected_after(&mut self, tok: &Tok, what: &str) {
        let shown = messages::show_tok(self.text, tok);
        let help = if tok.is_punct(self.text, "}") {
            "this `}` has no matching `{`; remove it".to_string()
        } else {
            "a new declaration starts with a keyword such as `workflow`, `service` or `policy`"
                .to_string()
        };
        let d = Diagnostic::new(
            Code::E0001,
            self.file,
            tok.span,
            format!("unexpected {shown} after {what}"),
        )
        .with_label(format!("unexpected {shown}"))
        .with_help(help);
        self.diags.push(d);
    }

    /// Reports a pest failure in `region` (absolute). `head` are tokens that precede the region
    /// and give it context (the `workflow w {` around a member).
    fn report_pest(&mut self, err: &PestError, region: Span, head: &[Tok]) {
        let rel = match err.location {
            pest::error::InputLocation::Pos(p) => p,
            pest::error::InputLocation::Span((s, _)) => s,
        };
        let pos = region.start() + rel;
        let d = match &err.variant {
            pest::error::ErrorVariant::CustomError { .. } => {
                // pest's only custom errors are its stack and call limits.
                Diagnostic::new(
                    Code::E0001,
                    self.file,
                    Span::point(pos),
                    "this declaration is nested too deeply",
                )
                .with_label("nesting goes too deep here")
                .with_help("split the expression or value into smaller parts")
            }
            pest::error::ErrorVariant::ParsingError { positives, .. } => {
                let site = messages::Site {
                    text: self.text,
                    code: self.code,
                    head,
                    region,
                    pos,
                    interp: false,
                };
                messages::describe(self.file, &site, positives)
            }
        };
        self.diags.push(d);
    }

    // ----------------------------------------------------------------------------------------
    // Small helpers

    /// The span of a pair, from its first token to the end of its last. (pest's own span of a
    /// rule that ends with an optional or repeated part, such as `type_expr`, `input_decl` or
    /// `expr`, runs on over the whitespace and comments that pest skipped before trying that
    /// part.)
    fn span_of(&self, pair: &Pair<'_, Rule>) -> Span {
        let s = pair.as_span();
        Span::new(s.start() + self.offset, last_token_end(pair) + self.offset)
    }

    fn ident(&self, pair: &Pair<'_, Rule>) -> Ident {
        Ident {
            name: pair.as_str().to_string(),
            span: self.span_of(pair),
        }
    }

    /// A declared name: any identifier, but a keyword is reported (E0002) and kept.
    fn conv_decl_name(&mut self, pair: &Pair<'_, Rule>) -> Ident {
        let ident = self.ident(pair);
        if ast::is_keyword(&ident.name) {
            let fixed = format!("{}_", ident.name);
            let d = Diagnostic::new(
                Code::E0002,
                self.file,
                ident.span,
                format!("`{}` is a keyword and cannot be used as a name", ident.name),
            )
            .with_label("keyword used as a name")
            .with_help(format!("pick another name, e.g. `{fixed}`"))
            .with_suggestion(
                format!("rename to `{fixed}`"),
                self.file,
                ident.span,
                fixed.clone(),
            );
            self.diags.push(d);
        }
        ident
    }

    /// The doc comment (`///` lines) right before the token starting at `start`.
    fn doc_at(&self, start: usize) -> Option<Doc> {
        if !self.has_docs {
            return None;
        }
        let i = self.toks.partition_point(|t| t.span.start() < start);
        if self.toks.get(i).is_none_or(|t| t.span.start() != start) {
            return None;
        }
        let mut first = i;
        while first > 0
            && matches!(
                self.toks[first - 1].kind,
                TokKind::Comment {
                    kind: CommentKind::Doc,
                    ..
                }
            )
        {
            first -= 1;
        }
        if first == i {
            return None;
        }
        let lines: Vec<&str> = self.toks[first..i]
            .iter()
            .map(|t| {
                let line = t.span.text(self.text);
                let line = line.strip_prefix("///").unwrap_or(line);
                line.strip_prefix(' ').unwrap_or(line)
            })
            .collect();
        Some(Doc {
            text: lines.join("\n"),
            span: self.toks[first].span.to(self.toks[i - 1].span),
        })
    }

    fn diag(&mut self, code: Code, at: Span, message: String, label: &str, help: String) {
        let d = Diagnostic::new(code, self.file, at, message)
            .with_label(label)
            .with_help(help);
        self.diags.push(d);
    }

    // ----------------------------------------------------------------------------------------
    // Declarations

    fn conv_item(&mut self, pair: Pair<'_, Rule>) -> Conv<Item> {
        let span = self.span_of(&pair);
        let doc = self.doc_at(span.start());
        let rule = pair.as_rule();
        let mut kids = Kids::new(pair);
        Ok(match rule {
            Rule::app_decl => {
                let name = self.conv_decl_name(&kids.take(Rule::decl_name)?);
                let fields = self.conv_fields(&mut kids)?;
                Item::App(App {
                    doc,
                    name,
                    fields,
                    span,
                })
            }
            Rule::use_decl => {
                kids.take(Rule::kw_use)?;
                Item::Use(Use {
                    target: self.conv_use_target(kids.next()?)?,
                    span,
                })
            }
            Rule::type_decl => {
                let name = self.conv_decl_name(&kids.take(Rule::decl_name)?);
                let ty = self.conv_type(kids.take(Rule::type_expr)?, 0)?;
                Item::TypeAlias(TypeAlias {
                    doc,
                    name,
                    ty,
                    span,
                })
            }
            Rule::workflow_decl => {
                let name = self.conv_decl_name(&kids.take(Rule::decl_name)?);
                let mut members = Vec::new();
                while let Some(member) = kids.next_opt() {
                    members.push(self.conv_workflow_member(member)?);
                }
                Item::Workflow(Workflow {
                    doc,
                    name,
                    members,
                    span,
                })
            }
            Rule::service_decl => {
                let name = self.conv_decl_name(&kids.take(Rule::decl_name)?);
                let mut members = Vec::new();
                while let Some(member) = kids.next_opt() {
                    members.push(match member.as_rule() {
                        Rule::slo_decl => {
                            let span = self.span_of(&member);
                            let mut k = Kids::new(member);
                            ServiceMember::Slo(Slo {
                                objective: self.conv_expr(k.take(Rule::expr)?, 0)?,
                                span,
                            })
                        }
                        Rule::resources_block => {
                            ServiceMember::Resources(self.conv_resources(member)?)
                        }
                        _ => match self.conv_field(member)? {
                            Sugar::Resources(r) => ServiceMember::Resources(r),
                            Sugar::Field(f) | Sugar::Retry(_, f) | Sugar::Timeout(_, f) => {
                                ServiceMember::Field(f)
                            }
                        },
                    });
                }
                Item::Service(Service {
                    doc,
                    name,
                    members,
                    span,
                })
            }
            Rule::agent_decl => {
                let name = self.conv_decl_name(&kids.take(Rule::decl_name)?);
                let kind = self.ident(&kids.take(Rule::kind_name)?);
                let fields = self.conv_fields(&mut kids)?;
                Item::Agent(Agent {
                    doc,
                    name,
                    kind,
                    fields,
                    span,
                })
            }
            Rule::agent_kind_decl => {
                kids.take(Rule::kw_kind)?;
                let name = self.conv_decl_name(&kids.take(Rule::decl_name)?);
                let mut members = Vec::new();
                while let Some(member) = kids.next_opt() {
                    members.push(self.conv_kind_member(member)?);
                }
                Item::AgentKind(AgentKind {
                    doc,
                    name,
                    members,
                    span,
                })
            }
            Rule::trigger_decl => {
                let name = self.conv_decl_name(&kids.take(Rule::decl_name)?);
                let source = self.conv_trigger_source(kids.next()?)?;
                let action = self.conv_action(kids.next()?)?;
                Item::Trigger(Trigger {
                    doc,
                    name,
                    source,
                    action,
                    span,
                })
            }
            Rule::policy_decl => Item::Policy(self.conv_policy(doc, kids, span)?),
            Rule::extern_fn_decl => {
                kids.take(Rule::kw_fn)?;
                let name = self.conv_decl_name(&kids.take(Rule::decl_name)?);
                let params = self.conv_param_list(kids.take(Rule::param_list)?)?;
                let ret = self.conv_type(kids.take(Rule::type_expr)?, 0)?;
                Item::ExternFn(ExternFn {
                    doc,
                    name,
                    params,
                    ret,
                    span,
                })
            }
            Rule::extern_step_decl => {
                kids.take(Rule::kw_step)?;
                let name = self.conv_decl_name(&kids.take(Rule::decl_name)?);
                let params = self.conv_param_list(kids.take(Rule::param_list)?)?;
                let members = self.conv_step_members(&mut kids)?;
                Item::ExternStep(ExternStep {
                    doc,
                    name,
                    params,
                    members,
                    span,
                })
            }
            _ => return Err(Internal),
        })
    }

    fn conv_use_target(&mut self, pair: Pair<'_, Rule>) -> Conv<UseTarget> {
        if pair.as_rule() == Rule::string {
            return Ok(UseTarget::File(self.conv_string(&pair)));
        }
        let mut path = Vec::new();
        let mut items = None;
        for kid in Kids::new(pair).all() {
            match kid.as_rule() {
                Rule::path_seg => path.push(self.ident(&kid)),
                Rule::use_items => {
                    let names = Kids::new(kid)
                        .all()
                        .iter()
                        .map(|n| self.conv_decl_name(n))
                        .collect();
                    items = Some(names);
                }
                _ => return Err(Internal),
            }
        }
        Ok(UseTarget::Path { path, items })
    }

    fn conv_workflow_member(&mut self, pair: Pair<'_, Rule>) -> Conv<WorkflowMember> {
        let span = self.span_of(&pair);
        let doc = self.doc_at(span.start());
        let rule = pair.as_rule();
        let mut kids = Kids::new(pair);
        Ok(match rule {
            Rule::param_decl => {
                let name = self.conv_decl_name(&kids.take(Rule::decl_name)?);
                let ty = self.conv_type(kids.take(Rule::type_expr)?, 0)?;
                let mut default = None;
                let mut space = None;
                while let Some(marker) = kids.next_opt() {
                    let value = self.conv_expr(kids.take(Rule::expr)?, 0)?;
                    match marker.as_rule() {
                        Rule::eq => default = Some(value),
                        Rule::kw_in => space = Some(value),
                        _ => return Err(Internal),
                    }
                }
                WorkflowMember::Param(Param {
                    doc,
                    name,
                    ty,
                    default,
                    space,
                    span,
                })
            }
            Rule::step_decl => {
                let name = self.conv_decl_name(&kids.take(Rule::decl_name)?);
                let members = self.conv_step_members(&mut kids)?;
                WorkflowMember::Step(Step {
                    doc,
                    name,
                    members,
                    span,
                })
            }
            _ => return Err(Internal),
        })
    }

    fn conv_step_members(&mut self, kids: &mut Kids<'_>) -> Conv<Vec<StepMember>> {
        let mut members = Vec::new();
        while let Some(member) = kids.next_opt() {
            members.push(self.conv_step_member(member)?);
        }
        Ok(members)
    }

    fn conv_step_member(&mut self, member: Pair<'_, Rule>) -> Conv<StepMember> {
        let span = self.span_of(&member);
        let doc = self.doc_at(span.start());
        let rule = member.as_rule();
        let mut k = Kids::new(member);
        Ok(match rule {
            Rule::input_decl => {
                let name = self.conv_decl_name(&k.take(Rule::decl_name)?);
                let ty = self.conv_type(k.take(Rule::type_expr)?, 0)?;
                let source = match k.next_opt() {
                    Some(_eq) => Some(self.conv_expr(k.take(Rule::expr)?, 0)?),
                    None => None,
                };
                StepMember::Port(Port {
                    doc,
                    sort: PortSort::Input,
                    name,
                    ty,
                    source,
                    span,
                })
            }
            Rule::output_decl => {
                let sort = match k.next()?.as_rule() {
                    Rule::kw_output => PortSort::Output,
                    _ => PortSort::Metric,
                };
                let name = self.conv_decl_name(&k.take(Rule::decl_name)?);
                let ty = self.conv_type(k.take(Rule::type_expr)?, 0)?;
                StepMember::Port(Port {
                    doc,
                    sort,
                    name,
                    ty,
                    source: None,
                    span,
                })
            }
            Rule::resources_block => StepMember::Resources(self.conv_resources_kids(k, span)?),
            Rule::retry_decl => {
                let count = self.conv_expr(k.take(Rule::expr)?, 0)?;
                let backoff = match k.next_opt() {
                    Some(_kw) => Some(self.conv_expr(k.take(Rule::expr)?, 0)?),
                    None => None,
                };
                StepMember::Retry(Retry {
                    count,
                    backoff,
                    span,
                })
            }
            Rule::timeout_decl => StepMember::Timeout(Timeout {
                value: self.conv_expr(k.take(Rule::expr)?, 0)?,
                span,
            }),
            Rule::field => match self.conv_field_kids(k, span)? {
                Sugar::Field(f) => StepMember::Field(f),
                Sugar::Resources(r) => StepMember::Resources(r),
                Sugar::Retry(r, _) => StepMember::Retry(r),
                Sugar::Timeout(t, _) => StepMember::Timeout(t),
            },
            _ => return Err(Internal),
        })
    }

    fn conv_resources(&mut self, pair: Pair<'_, Rule>) -> Conv<Resources> {
        let span = self.span_of(&pair);
        self.conv_resources_kids(Kids::new(pair), span)
    }

    fn conv_resources_kids(&mut self, mut kids: Kids<'_>, span: Span) -> Conv<Resources> {
        Ok(Resources {
            fields: self.conv_fields(&mut kids)?,
            span,
        })
    }

    /// The remaining `field` pairs of `kids`.
    fn conv_fields(&mut self, kids: &mut Kids<'_>) -> Conv<Vec<Field>> {
        let mut fields = Vec::new();
        while let Some(pair) = kids.next_opt() {
            if is_keyword_rule(pair.as_rule()) {
                // `resources {`, `with {`: the keyword before the braces.
                continue;
            }
            if pair.as_rule() != Rule::field {
                return Err(Internal);
            }
            let span = self.span_of(&pair);
            fields.push(self.plain_field(Kids::new(pair), span)?);
        }
        Ok(fields)
    }

    fn plain_field(&mut self, mut kids: Kids<'_>, span: Span) -> Conv<Field> {
        let name = self.ident(&kids.take(Rule::field_name)?);
        kids.take(Rule::eq)?;
        let value = self.conv_expr(kids.take(Rule::expr)?, 0)?;
        Ok(Field { name, value, span })
    }

    fn conv_field(&mut self, pair: Pair<'_, Rule>) -> Conv<Sugar> {
        let span = self.span_of(&pair);
        if pair.as_rule() != Rule::field {
            return Err(Internal);
        }
        self.conv_field_kids(Kids::new(pair), span)
    }

    /// A generic field of a step or service, where `timeout = D`, `retry = N` and
    /// `resources = { … }` are accepted as spellings of the dedicated members.
    fn conv_field_kids(&mut self, kids: Kids<'_>, span: Span) -> Conv<Sugar> {
        let field = self.plain_field(kids, span)?;
        Ok(match (field.name.name.as_str(), &field.value.kind) {
            ("timeout", _) => Sugar::Timeout(
                Timeout {
                    value: field.value.clone(),
                    span,
                },
                field,
            ),
            ("retry", _) => Sugar::Retry(
                Retry {
                    count: field.value.clone(),
                    backoff: None,
                    span,
                },
                field,
            ),
            ("resources", ExprKind::Record(fields)) => Sugar::Resources(Resources {
                fields: fields.clone(),
                span,
            }),
            _ => Sugar::Field(field),
        })
    }

    fn conv_kind_member(&mut self, pair: Pair<'_, Rule>) -> Conv<KindMember> {
        let span = self.span_of(&pair);
        let doc = self.doc_at(span.start());
        let rule = pair.as_rule();
        let mut kids = Kids::new(pair);
        let name = self.conv_decl_name(&kids.take(Rule::decl_name)?);
        Ok(match rule {
            Rule::config_decl => {
                let ty = self.conv_type(kids.take(Rule::type_expr)?, 0)?;
                let (default, optional) = match kids.next_opt() {
                    Some(mark) if mark.as_rule() == Rule::optional_mark => (None, true),
                    Some(_eq) => (Some(self.conv_expr(kids.take(Rule::expr)?, 0)?), false),
                    None => (None, false),
                };
                KindMember::Config(KindConfig {
                    doc,
                    name,
                    ty,
                    default,
                    optional,
                    span,
                })
            }
            Rule::sensor_decl => {
                let ty = self.conv_type(kids.take(Rule::type_expr)?, 0)?;
                KindMember::Sensor(KindSensor {
                    doc,
                    name,
                    ty,
                    span,
                })
            }
            Rule::action_decl => {
                let params = self.conv_param_list(kids.take(Rule::param_list)?)?;
                let binding = match kids.next_opt() {
                    None => None,
                    Some(b) if b.as_rule() == Rule::run_action => {
                        Some(ActionBinding::Run(self.conv_run(b)?))
                    }
                    Some(b) => {
                        let mut k = Kids::new(b);
                        Some(ActionBinding::Webhook(
                            self.conv_string(&k.take(Rule::string)?),
                        ))
                    }
                };
                KindMember::Action(KindAction {
                    doc,
                    name,
                    params,
                    binding,
                    span,
                })
            }
            _ => return Err(Internal),
        })
    }

    fn conv_param_list(&mut self, pair: Pair<'_, Rule>) -> Conv<Vec<ParamSig>> {
        let mut params = Vec::new();
        for sig in Kids::new(pair).all() {
            let span = self.span_of(&sig);
            let mut k = Kids::new(sig);
            // Parameter names are contextual, like field names: callers write them as
            // `name = value`, and the spec's own Planner has `replace(service: Service, …)`.
            let name = self.ident(&k.take(Rule::decl_name)?);
            let ty = self.conv_type(k.take(Rule::type_expr)?, 0)?;
            let default = match k.next_opt() {
                Some(_eq) => Some(self.conv_expr(k.take(Rule::expr)?, 0)?),
                None => None,
            };
            params.push(ParamSig {
                name,
                ty,
                default,
                span,
            });
        }
        Ok(params)
    }

    fn conv_trigger_source(&mut self, pair: Pair<'_, Rule>) -> Conv<TriggerSource> {
        let span = self.span_of(&pair);
        let rule = pair.as_rule();
        let mut kids = Kids::new(pair);
        Ok(match rule {
            Rule::schedule_source => {
                TriggerSource::Schedule(self.conv_string(&kids.take(Rule::string)?))
            }
            Rule::webhook_source => {
                TriggerSource::Webhook(self.conv_string(&kids.take(Rule::string)?))
            }
            Rule::on_source => TriggerSource::On(self.conv_path(kids.take(Rule::path)?)?),
            Rule::every_source => {
                kids.take(Rule::kw_every)?;
                let (count, _) = self.conv_primary(kids.next()?, 0)?;
                let sensor = self.conv_path(kids.take(Rule::path)?)?;
                TriggerSource::Every {
                    count,
                    sensor,
                    span,
                }
            }
            _ => return Err(Internal),
        })
    }

    /// `name(.member)*` as a chain of field reads.
    fn conv_path(&mut self, pair: Pair<'_, Rule>) -> Conv<Expr> {
        let mut kids = Kids::new(pair);
        let first = self.ident(&kids.take(Rule::name)?);
        let mut expr = Expr {
            span: first.span,
            kind: ExprKind::Name(first),
        };
        for (depth, seg) in kids.all().into_iter().enumerate() {
            let field = self.ident(&seg);
            if depth as u32 >= MAX_EXPR_DEPTH {
                self.too_deep = true;
                break;
            }
            expr = Expr {
                span: expr.span.to(field.span),
                kind: ExprKind::Field {
                    base: Box::new(expr),
                    field,
                },
            };
        }
        Ok(expr)
    }

    /// `app.FIELD` in an interpolation: a chain of field reads on the name `app`.
    fn conv_app_field(&mut self, pair: Pair<'_, Rule>) -> Conv<Expr> {
        let start = self.span_of(&pair).start();
        let app = Ident {
            name: "app".to_string(),
            span: Span::new(start, start + "app".len()),
        };
        let kids = Kids::new(pair);
        let mut expr = Expr {
            span: app.span,
            kind: ExprKind::Name(app),
        };
        for (depth, access) in kids.all().into_iter().enumerate() {
            let field = self.ident(&Kids::new(access).take(Rule::member_name)?);
            if depth as u32 >= MAX_EXPR_DEPTH {
                self.too_deep = true;
                break;
            }
            expr = Expr {
                span: expr.span.to(field.span),
                kind: ExprKind::Field {
                    base: Box::new(expr),
                    field,
                },
            };
        }
        Ok(expr)
    }

    fn conv_action(&mut self, pair: Pair<'_, Rule>) -> Conv<Action> {
        match pair.as_rule() {
            Rule::run_action => Ok(Action::Run(self.conv_run(pair)?)),
            Rule::call_action => {
                let mut kids = Kids::new(pair);
                let expr = self.conv_expr(kids.take(Rule::expr)?, 0)?;
                if !matches!(expr.kind, ExprKind::Call { .. }) {
                    self.diag(
                        Code::E0001,
                        expr.span,
                        "expected an action: `run WORKFLOW` or an agent action call".to_string(),
                        "not an action",
                        "call an agent action, e.g. `planner.scale(predictor, +1)`, or run a workflow: \
                         `run training`"
                            .to_string(),
                    );
                }
                Ok(Action::Call(expr))
            }
            _ => Err(Internal),
        }
    }

    fn conv_run(&mut self, pair: Pair<'_, Rule>) -> Conv<RunAction> {
        let span = self.span_of(&pair);
        let mut kids = Kids::new(pair);
        kids.take(Rule::kw_run)?;
        let workflow = self.ident(&kids.take(Rule::name)?);
        let with = match kids.next_opt() {
            Some(_with) => self.conv_fields(&mut kids)?,
            None => Vec::new(),
        };
        Ok(RunAction {
            workflow,
            with,
            span,
        })
    }

    fn conv_policy(&mut self, doc: Option<Doc>, mut kids: Kids<'_>, span: Span) -> Conv<Policy> {
        let name = self.conv_decl_name(&kids.take(Rule::decl_name)?);
        let mut when = None;
        let mut hold_for = None;
        let mut then = Vec::new();
        let mut cooldown: Option<(Expr, Span)> = None;
        let mut rate_limit: Option<RateLimit> = None;
        while let Some(clause) = kids.next_opt() {
            let clause_span = self.span_of(&clause);
            let rule = clause.as_rule();
            let mut k = Kids::new(clause);
            match rule {
                Rule::when_clause => when = Some(self.conv_expr(k.take(Rule::expr)?, 0)?),
                Rule::for_clause => hold_for = Some(self.conv_expr(k.take(Rule::expr)?, 0)?),
                Rule::then_clause => {
                    k.take(Rule::kw_then)?;
                    for action in k.all() {
                        then.push(self.conv_action(action)?);
                    }
                }
                Rule::cooldown_clause => {
                    let value = self.conv_expr(k.take(Rule::expr)?, 0)?;
                    if let Some((_, first)) = &cooldown {
                        self.report_repeated_clause("cooldown", clause_span, *first);
                    } else {
                        cooldown = Some((value, clause_span));
                    }
                }
                Rule::max_clause => {
                    let count = self.conv_expr(k.take(Rule::expr)?, 0)?;
                    k.take(Rule::kw_per)?;
                    let per = self.conv_expr(k.take(Rule::expr)?, 0)?;
                    if let Some(first) = &rate_limit {
                        self.report_repeated_clause("max", clause_span, first.span);
                    } else {
                        rate_limit = Some(RateLimit {
                            count,
                            per,
                            span: clause_span,
                        });
                    }
                }
                _ => return Err(Internal),
            }
        }
        Ok(Policy {
            doc,
            name,
            when: when.ok_or(Internal)?,
            hold_for,
            then,
            cooldown: cooldown.map(|(e, _)| e),
            rate_limit,
            span,
        })
    }

    fn report_repeated_clause(&mut self, keyword: &str, at: Span, first: Span) {
        let d = Diagnostic::new(
            Code::E0001,
            self.file,
            at,
            format!("`{keyword}` is given twice in this policy"),
        )
        .with_label(format!("second `{keyword}`"))
        .with_secondary(self.file, first, "first given here")
        .with_help(format!("keep one `{keyword}` clause"));
        self.diags.push(d);
    }

    // ----------------------------------------------------------------------------------------
    // Types and expressions

    fn conv_type(&mut self, pair: Pair<'_, Rule>, depth: u32) -> Conv<TypeExpr> {
        let span = self.span_of(&pair);
        let mut kids = Kids::new(pair);
        let name = self.ident(&kids.take(Rule::type_name)?);
        let mut args = Vec::new();
        if depth >= MAX_TYPE_DEPTH {
            self.too_deep = true;
            return Ok(TypeExpr { name, args, span });
        }
        for arg in kids.all() {
            args.push(self.conv_type(arg, depth + 1)?);
        }
        Ok(TypeExpr { name, args, span })
    }

    fn conv_expr(&mut self, pair: Pair<'_, Rule>, level: u32) -> Conv<Expr> {
        Ok(self.conv_expr_depth(pair, level)?.0)
    }

    /// An expression and the depth of its tree. `level` is how deep we are already.
    fn conv_expr_depth(&mut self, pair: Pair<'_, Rule>, level: u32) -> Conv<(Expr, u32)> {
        if level >= MAX_EXPR_DEPTH || pair.as_rule() != Rule::expr {
            if level >= MAX_EXPR_DEPTH {
                self.too_deep = true;
                return Ok((
                    Expr {
                        kind: ExprKind::Int(0),
                        span: self.span_of(&pair),
                    },
                    1,
                ));
            }
            return Err(Internal);
        }
        // Most expressions are one operand: these vectors stay empty (unallocated) then.
        let mut operands: Vec<(Expr, u32)> = Vec::new();
        let mut ops: Vec<(Infix, Span)> = Vec::new();
        let mut prefixes: Vec<(UnaryOp, Span)> = Vec::new();
        let mut current: Option<(Expr, u32)> = None;
        for kid in pair.into_inner() {
            match kid.as_rule() {
                Rule::prefix_op => {
                    let op = match kid.as_str() {
                        "-" => UnaryOp::Neg,
                        "+" => UnaryOp::Plus,
                        _ => UnaryOp::Not,
                    };
                    prefixes.push((op, self.span_of(&kid)));
                }
                Rule::field_access | Rule::call_args => {
                    let base = current.take().ok_or(Internal)?;
                    current = Some(self.conv_postfix(base, kid, level)?);
                }
                Rule::infix_op => {
                    let operand =
                        self.apply_prefixes(current.take().ok_or(Internal)?, &mut prefixes);
                    operands.push(operand);
                    ops.push((Infix::from_str(kid.as_str()), self.span_of(&kid)));
                }
                _ => current = Some(self.conv_primary(kid, level)?),
            }
        }
        let last = self.apply_prefixes(current.ok_or(Internal)?, &mut prefixes);
        if ops.is_empty() {
            return Ok(last);
        }
        operands.push(last);
        Ok(self.climb(operands, ops))
    }

    fn apply_prefixes(
        &mut self,
        operand: (Expr, u32),
        prefixes: &mut Vec<(UnaryOp, Span)>,
    ) -> (Expr, u32) {
        let (mut expr, mut depth) = operand;
        while let Some((op, at)) = prefixes.pop() {
            if depth >= MAX_EXPR_DEPTH {
                self.too_deep = true;
                prefixes.clear();
                break;
            }
            expr = Expr {
                span: at.to(expr.span),
                kind: ExprKind::Unary {
                    op,
                    operand: Box::new(expr),
                },
            };
            depth += 1;
        }
        (expr, depth)
    }

    /// Applies operator precedence to a flat run `a op b op c …` (shunting-yard: no recursion,
    /// so long chains cannot exhaust the stack).
    fn climb(&mut self, operands: Vec<(Expr, u32)>, ops: Vec<(Infix, Span)>) -> (Expr, u32) {
        let mut operands = operands.into_iter();
        let mut out: Vec<(Expr, u32)> = Vec::new();
        let mut stack: Vec<(Infix, Span)> = Vec::new();
        if let Some(first) = operands.next() {
            out.push(first);
        }
        let mut chained_reported = false;
        for (op, at) in ops {
            while let Some(&(top, top_at)) = stack.last() {
                if top.precedence() < op.precedence() {
                    break;
                }
                if top.precedence() == op.precedence() && op.non_associative() && !chained_reported
                {
                    chained_reported = true;
                    self.report_chained(op, at, top_at);
                }
                stack.pop();
                self.reduce(&mut out, top);
            }
            stack.push((op, at));
            if let Some(next) = operands.next() {
                out.push(next);
            }
        }
        while let Some((top, _)) = stack.pop() {
            self.reduce(&mut out, top);
        }
        out.pop().unwrap_or((
            Expr {
                kind: ExprKind::Int(0),
                span: Span::default(),
            },
            1,
        ))
    }

    fn reduce(&mut self, out: &mut Vec<(Expr, u32)>, op: Infix) {
        let (Some((rhs, rd)), Some((lhs, ld))) = (out.pop(), out.pop()) else {
            return;
        };
        let depth = rd.max(ld) + 1;
        if depth > MAX_EXPR_DEPTH {
            // Keep the tree shallow: drop the right operand (the declaration is dropped).
            self.too_deep = true;
            out.push((lhs, ld));
            return;
        }
        let span = lhs.span.to(rhs.span);
        let kind = match op {
            Infix::Range => ExprKind::Range {
                start: Box::new(lhs),
                end: Box::new(rhs),
            },
            Infix::Bin(op) => ExprKind::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            },
        };
        out.push((Expr { kind, span }, depth));
    }

    fn report_chained(&mut self, op: Infix, at: Span, first: Span) {
        let (message, help) = match op {
            Infix::Range => ("ranges cannot be chained", "a range has two bounds: `1..8`"),
            _ => (
                "comparison operators cannot be chained",
                "combine two comparisons with `and`: `a < b and b < c`",
            ),
        };
        let d = Diagnostic::new(Code::E0001, self.file, at, message)
            .with_label("second operator")
            .with_secondary(self.file, first, "first operator")
            .with_help(help);
        self.diags.push(d);
    }

    fn conv_postfix(
        &mut self,
        base: (Expr, u32),
        pair: Pair<'_, Rule>,
        level: u32,
    ) -> Conv<(Expr, u32)> {
        let (base, depth) = base;
        if depth >= MAX_EXPR_DEPTH {
            self.too_deep = true;
            return Ok((base, depth));
        }
        let end = self.span_of(&pair).end();
        let span = Span::new(base.span.start(), end);
        let rule = pair.as_rule();
        let mut kids = Kids::new(pair);
        Ok(match rule {
            Rule::field_access => {
                let field = self.ident(&kids.take(Rule::member_name)?);
                (
                    Expr {
                        kind: ExprKind::Field {
                            base: Box::new(base),
                            field,
                        },
                        span,
                    },
                    depth + 1,
                )
            }
            _ => {
                let mut args = Vec::new();
                let mut deepest = depth;
                for arg in kids.all() {
                    let arg_span = self.span_of(&arg);
                    let mut k = Kids::new(arg);
                    let first = k.next()?;
                    let (name, value) = if first.as_rule() == Rule::field_name {
                        let name = self.ident(&first);
                        k.take(Rule::eq)?;
                        (Some(name), k.take(Rule::expr)?)
                    } else {
                        (None, first)
                    };
                    let (value, d) = self.conv_expr_depth(value, level + 1)?;
                    deepest = deepest.max(d);
                    args.push(Arg {
                        name,
                        value,
                        span: arg_span,
                    });
                }
                (
                    Expr {
                        kind: ExprKind::Call {
                            callee: Box::new(base),
                            args,
                        },
                        span,
                    },
                    deepest + 1,
                )
            }
        })
    }

    fn conv_primary(&mut self, pair: Pair<'_, Rule>, level: u32) -> Conv<(Expr, u32)> {
        let span = self.span_of(&pair);
        let rule = pair.as_rule();
        let mut depth = 1;
        let kind = match rule {
            Rule::number => self.conv_number(&pair),
            Rule::string => ExprKind::Str(self.conv_string(&pair)),
            Rule::bool_lit => ExprKind::Bool(pair.as_str() == "true"),
            Rule::name => ExprKind::Name(self.ident(&pair)),
            Rule::list => {
                let mut items = Vec::new();
                for item in Kids::new(pair).all() {
                    let (e, d) = self.conv_expr_depth(item, level + 1)?;
                    depth = depth.max(d + 1);
                    items.push(e);
                }
                ExprKind::List(items)
            }
            Rule::record => {
                let mut kids = Kids::new(pair);
                let mut fields = Vec::new();
                while let Some(field) = kids.next_opt() {
                    let fspan = self.span_of(&field);
                    let mut k = Kids::new(field);
                    let name = self.ident(&k.take(Rule::field_name)?);
                    k.take(Rule::eq)?;
                    let (value, d) = self.conv_expr_depth(k.take(Rule::expr)?, level + 1)?;
                    depth = depth.max(d + 1);
                    fields.push(Field {
                        name,
                        value,
                        span: fspan,
                    });
                }
                ExprKind::Record(fields)
            }
            Rule::paren => {
                let mut kids = Kids::new(pair);
                let (inner, d) = self.conv_expr_depth(kids.take(Rule::expr)?, level + 1)?;
                depth = d + 1;
                ExprKind::Paren(Box::new(inner))
            }
            _ => return Err(Internal),
        };
        Ok((Expr { kind, span }, depth))
    }

    // ----------------------------------------------------------------------------------------
    // Literals

    /// `42`, `0.5`, `1e-3`, `250ms`, `4Gi`: the token holds digits, an optional fraction and
    /// exponent, then any identifier characters, which must be letters (the unit).
    fn conv_number(&mut self, pair: &Pair<'_, Rule>) -> ExprKind {
        let text = pair.as_str();
        let span = self.span_of(pair);
        let (numeric, suffix, is_float) = split_number(text);
        // Most numbers are a few digits: read those as an integer, which is exact and much
        // cheaper than parsing a float.
        let value = match numeric.parse::<u64>() {
            Ok(n) if numeric.len() <= 15 => n as f64,
            _ => numeric.parse::<f64>().unwrap_or(0.0),
        };
        if suffix.is_empty() {
            if is_float {
                if !value.is_finite() {
                    self.diag(
                        Code::E0003,
                        span,
                        format!("number `{text}` is too large"),
                        "too large",
                        "write a smaller number".to_string(),
                    );
                }
                return ExprKind::Float(value);
            }
            return match numeric.parse::<i64>() {
                Ok(n) => ExprKind::Int(n),
                Err(_) => {
                    self.diag(
                        Code::E0003,
                        span,
                        format!("integer `{text}` is too large"),
                        "does not fit in 64 bits",
                        format!("integers range up to {}", i64::MAX),
                    );
                    ExprKind::Int(i64::MAX)
                }
            };
        }
        if !suffix.bytes().all(|b| b.is_ascii_alphabetic()) {
            let at = Span::new(span.start() + numeric.len(), span.end());
            self.diag(
                Code::E0003,
                at,
                format!("invalid number `{text}`"),
                "not a unit",
                "write numbers as `42`, `0.5` or `1e-3`, with an optional unit of letters such as \
                 `250ms` or `4Gi`; `_` separators are not allowed"
                    .to_string(),
            );
            return if is_float {
                ExprKind::Float(value)
            } else {
                ExprKind::Int(numeric.parse().unwrap_or(0))
            };
        }
        // `1e`: an exponent without digits, not a unit.
        if suffix.eq_ignore_ascii_case("e") && !numeric.contains(['e', 'E']) {
            self.diag(
                Code::E0003,
                span,
                format!("number `{text}` has no exponent digits"),
                "exponent expected after `e`",
                format!(
                    "write the exponent, as in `{numeric}e3` or `{numeric}e-3`, or remove the `e`"
                ),
            );
            return ExprKind::Float(value);
        }
        ExprKind::Suffixed {
            value,
            digits: numeric.to_string(),
            unit: suffix.to_string(),
        }
    }

    /// Decodes a string token: escapes, and `{{ … }}` interpolations parsed as expressions with
    /// spans inside the string.
    fn conv_string(&mut self, pair: &Pair<'_, Rule>) -> StringLit {
        let span = self.span_of(pair);
        let raw = pair.as_str();
        let content = raw.get(1..raw.len().saturating_sub(1)).unwrap_or("");
        let base = span.start() + 1;
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut text_start = 0;
        let mut i = 0;
        while i < content.len() {
            let rest = &content[i..];
            if let Some(after) = rest.strip_prefix('\\') {
                let Some(c) = after.chars().next() else { break };
                let len = 1 + c.len_utf8();
                let decoded = match c {
                    '"' => Some('"'),
                    '\\' => Some('\\'),
                    'n' => Some('\n'),
                    't' => Some('\t'),
                    'r' => Some('\r'),
                    '{' => Some('{'),
                    '}' => Some('}'),
                    _ => None,
                };
                match decoded {
                    Some(d) => text.push(d),
                    None => {
                        self.diag(
                            Code::E0003,
                            Span::new(base + i, base + i + len),
                            format!("unknown escape `\\{c}`"),
                            "unknown escape",
                            "the escapes are `\\\"`, `\\\\`, `\\n`, `\\t`, `\\r`, `\\{` and `\\}`; \
                             write `\\\\` for a backslash"
                                .to_string(),
                        );
                        text.push('\\');
                        text.push(c);
                    }
                }
                i += len;
            } else if let Some(after_open) = rest.strip_prefix("{{") {
                let close = after_open.as_bytes().windows(2).position(|w| w == b"}}");
                let Some(close) = close else {
                    self.diag(
                        Code::E0001,
                        Span::new(base + i, base + i + 2),
                        "`{{` is not closed by `}}`".to_string(),
                        "this interpolation is never closed",
                        "close it with `}}` before the end of the string, or write `\\{{` for a literal `{{`"
                            .to_string(),
                    );
                    text.push_str("{{");
                    i += 2;
                    continue;
                };
                if !text.is_empty() {
                    parts.push(StrPart::Text {
                        value: std::mem::take(&mut text),
                        span: Span::new(base + text_start, base + i),
                    });
                }
                let inner_start = base + i + 2;
                let inner = &after_open[..close];
                let interp_span = Span::new(base + i, base + i + 2 + close + 2);
                if let Some(expr) = self.parse_interpolation(inner, inner_start) {
                    parts.push(StrPart::Interp {
                        expr,
                        span: interp_span,
                    });
                }
                i += 2 + close + 2;
                text_start = i;
            } else {
                // Plain text, up to the next `\` or `{` (this one may be a lone `{`).
                // (Both are ASCII, so a byte search finds them on character boundaries.)
                let len = rest.bytes().skip(1).position(|b| b == b'\\' || b == b'{');
                let len = len.map_or(rest.len(), |k| k + 1);
                text.push_str(&rest[..len]);
                i += len;
            }
        }
        if !text.is_empty() {
            parts.push(StrPart::Text {
                value: text,
                span: Span::new(base + text_start, base + content.len()),
            });
        }
        StringLit { parts, span }
    }

    fn parse_interpolation(&mut self, inner: &str, start: usize) -> Option<Expr> {
        if let Some(expr) = simple_path(inner, start) {
            return Some(expr);
        }
        let region = Span::new(start, start + inner.len());
        // Brackets cannot hide in strings here (an interpolation holds no string), so a byte
        // count is the nesting depth.
        let mut depth = 0usize;
        for (k, b) in inner.bytes().enumerate() {
            match b {
                b'(' | b'[' | b'{' => {
                    depth += 1;
                    if depth > recovery::MAX_NESTING {
                        self.report_too_deep(Span::new(start + k, start + k + 1));
                        return None;
                    }
                }
                b')' | b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        match SflowParser::parse(Rule::interpolation, inner) {
            Ok(mut pairs) => {
                let expr = pairs.next().and_then(|p| p.into_inner().next())?;
                let saved = self.offset;
                self.offset = start;
                let converted = if expr.as_rule() == Rule::app_field {
                    self.conv_app_field(expr)
                } else {
                    self.conv_expr(expr, 0)
                };
                self.offset = saved;
                converted.ok()
            }
            Err(err) => {
                let rel = match err.location {
                    pest::error::InputLocation::Pos(p) => p,
                    pest::error::InputLocation::Span((s, _)) => s,
                };
                let d = match &err.variant {
                    pest::error::ErrorVariant::ParsingError { positives, .. } => {
                        let code: Vec<Tok> = comments::lex(inner)
                            .into_iter()
                            .filter(|t| !t.is_comment())
                            .map(|mut t| {
                                t.span = t.span.shifted(start);
                                t
                            })
                            .collect();
                        let site = messages::Site {
                            text: self.text,
                            code: &code,
                            head: &[],
                            region,
                            pos: start + rel,
                            interp: true,
                        };
                        messages::describe(self.file, &site, positives)
                    }
                    pest::error::ErrorVariant::CustomError { .. } => Diagnostic::new(
                        Code::E0001,
                        self.file,
                        region,
                        "this interpolation is nested too deeply",
                    )
                    .with_label("too deep")
                    .with_help("split the expression into smaller parts"),
                };
                self.diags.push(d);
                None
            }
        }
    }
}

/// `{{ inputs.model }}`, by far the most common interpolation, built without running pest: a
/// dotted path of identifiers whose first is not a keyword (or is `app`, followed by a field:
/// `{{app.namespace}}`), with only blanks around it. Anything else returns `None` and goes
/// through the grammar, which accepts the same paths.
fn simple_path(inner: &str, start: usize) -> Option<Expr> {
    let blank = |c: char| c == ' ' || ('\t'..='\r').contains(&c);
    let body = inner.trim_start_matches(blank);
    let mut offset = start + (inner.len() - body.len());
    let body = body.trim_end_matches(blank);
    let mut expr: Option<Expr> = None;
    let app_field = body.starts_with("app.");
    for (i, seg) in body.split('.').enumerate() {
        let starts_ok = seg
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
        let rest_ok = seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        let keyword_head = i == 0 && ast::is_keyword(seg) && !app_field;
        if !starts_ok || !rest_ok || keyword_head || i as u32 >= MAX_EXPR_DEPTH {
            return None;
        }
        let ident = Ident {
            name: seg.to_string(),
            span: Span::new(offset, offset + seg.len()),
        };
        expr = Some(match expr {
            None => Expr {
                span: ident.span,
                kind: ExprKind::Name(ident),
            },
            Some(base) => Expr {
                span: base.span.to(ident.span),
                kind: ExprKind::Field {
                    base: Box::new(base),
                    field: ident,
                },
            },
        });
        offset += seg.len() + 1;
    }
    expr
}

/// Where the last token of `pair` ends (relative to the text pest parsed): the end of its last
/// child's last child, and so on down to a pair without children, a token, which ends where
/// the text does. (Not with `Pair::tokens`, which checks pest's whole token queue each time in
/// builds with debug assertions, as tests and the fuzzer are.)
fn last_token_end(pair: &Pair<'_, Rule>) -> usize {
    let end = pair.as_span().end();
    // Most pairs end with a token. Trivia ends with a blank, with the `/` of a block comment,
    // or, for a line comment, at the end of the input.
    let input = pair.get_input().as_bytes();
    if end < input.len() && end > 0 && !matches!(input[end - 1], b' ' | b'\t'..=b'\r' | b'/') {
        return end;
    }
    let mut last = pair.clone();
    while let Some(child) = last.clone().into_inner().next_back() {
        last = child;
    }
    last.as_span().end()
}

/// Where a failure shows a complete construct followed by stray text (pest expected the end of
/// the input there): the offset of the stray text.
fn complete_at(err: &PestError) -> Option<usize> {
    let pest::error::ErrorVariant::ParsingError { positives, .. } = &err.variant else {
        return None;
    };
    let pest::error::InputLocation::Pos(pos) = err.location else {
        return None;
    };
    (positives.contains(&Rule::EOI) && pos > 0).then_some(pos)
}

/// Splits a number token into its numeric text, its suffix, and whether the numeric part has
/// a fraction or an exponent. Mirrors the grammar's `number`.
fn split_number(text: &str) -> (&str, &str, bool) {
    let bytes = text.as_bytes();
    let digits = |mut j: usize| {
        while j < bytes.len() && bytes[j].is_ascii_digit() {
            j += 1;
        }
        j
    };
    let mut j = digits(0);
    let mut is_float = false;
    if bytes.get(j) == Some(&b'.') && bytes.get(j + 1).is_some_and(u8::is_ascii_digit) {
        j = digits(j + 1);
        is_float = true;
    }
    if matches!(bytes.get(j), Some(b'e' | b'E')) {
        let mut k = j + 1;
        if matches!(bytes.get(k), Some(b'+' | b'-')) {
            k += 1;
        }
        if bytes.get(k).is_some_and(u8::is_ascii_digit) {
            j = digits(k);
            is_float = true;
        }
    }
    (&text[..j], &text[j..], is_float)
}

/// What a generic field turned out to be (see [`Parser::conv_field_kids`]).
enum Sugar {
    Field(Field),
    Resources(Resources),
    Retry(Retry, Field),
    Timeout(Timeout, Field),
}

/// An infix operator of the flat expression run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Infix {
    Bin(BinaryOp),
    Range,
}

impl Infix {
    fn from_str(op: &str) -> Infix {
        Infix::Bin(match op {
            "||" | "or" => BinaryOp::Or,
            "&&" | "and" => BinaryOp::And,
            "==" => BinaryOp::Eq,
            "!=" => BinaryOp::Ne,
            "<" => BinaryOp::Lt,
            "<=" => BinaryOp::Le,
            ">" => BinaryOp::Gt,
            ">=" => BinaryOp::Ge,
            "+" => BinaryOp::Add,
            "-" => BinaryOp::Sub,
            "*" => BinaryOp::Mul,
            "/" => BinaryOp::Div,
            _ => return Infix::Range,
        })
    }

    /// or 1, and 2, comparisons 3, range 4, `+ -` 5, `* /` 6.
    fn precedence(self) -> u8 {
        match self {
            Infix::Range => 4,
            Infix::Bin(op) => match op.precedence() {
                p @ 1..=3 => p,
                p => p + 1,
            },
        }
    }

    /// Comparisons and ranges do not chain (`a < b < c` is an error).
    fn non_associative(self) -> bool {
        match self {
            Infix::Range => true,
            Infix::Bin(op) => op.is_comparison(),
        }
    }
}

/// The children of a pair, minus pure punctuation (brackets, `:`, `,`, `->`, `.`), which the
/// converter never needs. `=` and keywords stay: they tell optional parts apart.
struct Kids<'i> {
    inner: std::iter::Peekable<pest::iterators::Pairs<'i, Rule>>,
}

impl<'i> Kids<'i> {
    fn new(pair: Pair<'i, Rule>) -> Kids<'i> {
        Kids {
            inner: pair.into_inner().peekable(),
        }
    }

    fn skip_punct(&mut self) {
        while self.inner.peek().is_some_and(|p| is_punct(p.as_rule())) {
            self.inner.next();
        }
    }

    /// The next meaningful child, if any.
    fn next_opt(&mut self) -> Option<Pair<'i, Rule>> {
        self.skip_punct();
        let next = self.inner.next();
        // `EOI` closes entry rules; it is never a child the converter wants.
        next.filter(|p| p.as_rule() != Rule::EOI)
    }

    /// The next meaningful child, which must exist.
    fn next(&mut self) -> Conv<Pair<'i, Rule>> {
        self.next_opt().ok_or(Internal)
    }

    /// The next meaningful child, which must be `rule`. Leading keywords and `=` are skipped,
    /// so callers can ask directly for the name after `step` or the type after `type T =`.
    fn take(&mut self, rule: Rule) -> Conv<Pair<'i, Rule>> {
        loop {
            let pair = self.next()?;
            if pair.as_rule() == rule {
                return Ok(pair);
            }
            if !is_keyword_rule(pair.as_rule()) && pair.as_rule() != Rule::eq {
                return Err(Internal);
            }
        }
    }

    /// All remaining meaningful children.
    fn all(mut self) -> Vec<Pair<'i, Rule>> {
        let mut out = Vec::new();
        while let Some(p) = self.next_opt() {
            out.push(p);
        }
        out
    }
}

fn is_punct(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::lbrace
            | Rule::rbrace
            | Rule::lparen
            | Rule::rparen
            | Rule::lbracket
            | Rule::rbracket
            | Rule::langle
            | Rule::rangle
            | Rule::colon
            | Rule::comma
            | Rule::arrow
            | Rule::dot
            | Rule::member_dot
            | Rule::call_open
    )
}

fn is_keyword_rule(rule: Rule) -> bool {
    messages::keyword_of(rule).is_some()
}

mod messages {
    //! Turning pest's "expected one of these rules at this position" into a sentence a user
    //! understands, with context taken from the tokens before the error.

    use super::{recovery, Rule, Tok, TokKind};
    use crate::diagnostics::{Code, Diagnostic};
    use crate::span::{FileId, Span};
    use crate::syntax::ast::is_keyword;

    /// Where a parse failed.
    pub(super) struct Site<'a> {
        /// The whole file.
        pub text: &'a str,
        /// Coarse code tokens covering the region (absolute spans).
        pub code: &'a [Tok],
        /// Tokens before the region that give context (a workflow's head for its members).
        pub head: &'a [Tok],
        /// The text pest was given (absolute).
        pub region: Span,
        /// The failing position (absolute).
        pub pos: usize,
        /// Whether the region is the inside of a `{{ … }}`.
        pub interp: bool,
    }

    /// What pest expected, in user terms.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    pub(super) enum Exp {
        /// The construct was complete: the next token is simply unexpected.
        End,
        DeclName,
        FieldName,
        MemberName,
        ModuleName,
        Type,
        Kind,
        /// A name where no other expression may stand (`run NAME`, `on PATH`).
        Name,
        Expr,
        Str,
        Tok(&'static str),
        Kw(&'static str),
        /// Something that could only continue an expression (`+`, `.x`, `(…)`).
        Continue,
    }

    pub(super) fn keyword_of(rule: Rule) -> Option<&'static str> {
        Some(match rule {
            Rule::kw_action => "action",
            Rule::kw_agent => "agent",
            Rule::kw_app => "app",
            Rule::kw_backoff => "backoff",
            Rule::kw_config => "config",
            Rule::kw_cooldown => "cooldown",
            Rule::kw_every => "every",
            Rule::kw_extern => "extern",
            Rule::kw_fn => "fn",
            Rule::kw_for => "for",
            Rule::kw_in => "in",
            Rule::kw_input => "input",
            Rule::kw_kind => "kind",
            Rule::kw_max => "max",
            Rule::kw_metric => "metric",
            Rule::kw_on => "on",
            Rule::kw_output => "output",
            Rule::kw_param => "param",
            Rule::kw_per => "per",
            Rule::kw_policy => "policy",
            Rule::kw_resources => "resources",
            Rule::kw_retry => "retry",
            Rule::kw_run => "run",
            Rule::kw_schedule => "schedule",
            Rule::kw_sensor => "sensor",
            Rule::kw_service => "service",
            Rule::kw_slo => "slo",
            Rule::kw_step => "step",
            Rule::kw_then => "then",
            Rule::kw_timeout => "timeout",
            Rule::kw_trigger => "trigger",
            Rule::kw_type => "type",
            Rule::kw_use => "use",
            Rule::kw_webhook => "webhook",
            Rule::kw_when => "when",
            Rule::kw_with => "with",
            Rule::kw_workflow => "workflow",
            _ => return None,
        })
    }

    /// Adds what a rule in pest's expected set stands for to `out`. pest reports a rule instead
    /// of its children when it failed at its own start after trying several (`expr` rather than
    /// `number`, `name`, …), so some structural rules appear here too.
    fn classify(rule: Rule, out: &mut Vec<Exp>) {
        if let Some(k) = keyword_of(rule) {
            out.push(Exp::Kw(k));
            return;
        }
        let e = match rule {
            Rule::output_decl => {
                out.push(Exp::Kw("output"));
                Exp::Kw("metric")
            }
            Rule::workflow_member_chunk => {
                // A member chunk stands for the inside of the braces, where `}` may come too.
                out.push(Exp::Kw("param"));
                out.push(Exp::Kw("step"));
                Exp::Tok("}")
            }
            Rule::step_keyword => {
                out.extend(["input", "output", "metric", "resources", "retry"].map(Exp::Kw));
                Exp::Kw("timeout")
            }
            Rule::step_member_chunk => {
                out.extend([
                    Exp::Kw("input"),
                    Exp::Kw("output"),
                    Exp::Kw("metric"),
                    Exp::Kw("resources"),
                    Exp::Kw("retry"),
                    Exp::Kw("timeout"),
                    Exp::FieldName,
                ]);
                Exp::Tok("}")
            }
            Rule::EOI => Exp::End,
            Rule::decl_name => Exp::DeclName,
            Rule::field_name => Exp::FieldName,
            Rule::member_name => Exp::MemberName,
            Rule::path_seg => Exp::ModuleName,
            Rule::type_name | Rule::type_expr => Exp::Type,
            Rule::kind_name => Exp::Kind,
            // Refined into `Expr` below when a literal could stand here too.
            Rule::name | Rule::path => Exp::Name,
            // `interpolation` fails at its own start after trying `app.FIELD` and an expression.
            Rule::expr
            | Rule::interpolation
            | Rule::arg
            | Rule::call_action
            | Rule::number
            | Rule::bool_lit
            | Rule::prefix_op => Exp::Expr,
            Rule::string => Exp::Str,
            Rule::lbrace => Exp::Tok("{"),
            Rule::rbrace => Exp::Tok("}"),
            Rule::lparen | Rule::param_list => Exp::Tok("("),
            Rule::rparen => Exp::Tok(")"),
            Rule::lbracket => Exp::Tok("["),
            Rule::rbracket => Exp::Tok("]"),
            Rule::langle => Exp::Tok("<"),
            Rule::rangle => Exp::Tok(">"),
            Rule::colon => Exp::Tok(":"),
            Rule::comma => Exp::Tok(","),
            Rule::eq => Exp::Tok("="),
            Rule::arrow => Exp::Tok("->"),
            Rule::optional_mark => Exp::Tok("?"),
            Rule::dot => Exp::Tok("."),
            Rule::infix_op
            | Rule::member_dot
            | Rule::call_open
            | Rule::field_access
            | Rule::call_args => Exp::Continue,
            _ => return,
        };
        out.push(e);
    }

    /// The expected set, simplified: literal starts fold into "an expression", continuations
    /// go when anything else is possible.
    pub(super) fn expected(positives: &[Rule]) -> Vec<Exp> {
        let mut set = Vec::new();
        for &rule in positives {
            classify(rule, &mut set);
        }
        set.sort();
        set.dedup();
        if set.contains(&Exp::Expr) {
            set.retain(|e| {
                !matches!(
                    e,
                    Exp::Name | Exp::Str | Exp::Tok("{") | Exp::Tok("[") | Exp::Tok("(")
                )
            });
        }
        if set.iter().any(|e| *e != Exp::Continue) {
            set.retain(|e| *e != Exp::Continue);
        }
        set
    }

    /// One level of brackets open at the error position.
    #[derive(Clone, Debug, Default)]
    struct Level {
        /// `{`, `(` or `[`; `None` for the top level of the region.
        open: Option<(char, Span)>,
        /// What the braces belong to (for `{` only).
        block: Option<Block>,
        /// The first words of the current statement at this level.
        words: Vec<String>,
        /// The last keyword of the current statement at this level (`when`, `input`, …).
        clause: Option<String>,
        /// Whether the next token starts a new statement.
        fresh: bool,
    }

    #[derive(Clone, Debug)]
    struct Block {
        /// `workflow`, `step`, `app`, `service`, `agent`, `kind`, `policy`, `resources`, `with`,
        /// `record`, `use` or `block`.
        kind: &'static str,
        name: Option<String>,
    }

    impl Block {
        fn describe(&self) -> String {
            let named = |what: &str| match &self.name {
                Some(n) => format!("{what} `{n}`"),
                None => format!("the {what}"),
            };
            match self.kind {
                "workflow" | "step" | "app" | "service" | "agent" | "policy" => named(self.kind),
                "kind" => named("agent kind"),
                "resources" => "the `resources` block".into(),
                "with" => "the `with` block".into(),
                "record" => "the record".into(),
                "use" => "the import list".into(),
                _ => "the block".into(),
            }
        }

        /// What the block may hold, for help lines.
        fn members_help(&self) -> &'static str {
            match self.kind {
                "workflow" => "a workflow holds `param NAME: TYPE [= DEFAULT]` and `step NAME { … }` members",
                "step" => {
                    "a step holds `input`, `output` and `metric` ports, `resources { … }`, `retry N`, \
                     `timeout D` and `NAME = value` fields, one per line or separated by `,`"
                }
                "service" => "a service holds `NAME = value` fields, `slo …` objectives and `resources { … }`",
                "kind" => "an agent kind holds `config NAME: TYPE [= DEFAULT]`, `config NAME: TYPE?` (optional, no default), `sensor NAME: TYPE` and `action NAME(PARAMS)` members",
                "policy" => {
                    "a policy is `when CONDITION [for DURATION] then ACTION[, ACTION] [cooldown DURATION] \
                     [max N per DURATION]`"
                }
                "use" => "list the imported names separated by `,`: `use std.torch.{train_classifier, evaluate}`",
                _ => "write fields as `NAME = value`, one per line or separated by `,`",
            }
        }
    }

    struct Ctx {
        levels: Vec<Level>,
        prev: Option<Tok>,
        prev2: Option<Tok>,
    }

    impl Ctx {
        fn top(&self) -> Option<&Level> {
            self.levels.last()
        }

        /// The innermost statement level (not inside parentheses or brackets).
        fn stmt(&self) -> Option<&Level> {
            self.levels
                .iter()
                .rev()
                .find(|l| !matches!(l.open, Some(('(' | '[', _))))
        }

        fn block(&self) -> Option<&Block> {
            self.levels.iter().rev().find_map(|l| l.block.as_ref())
        }

        fn clause(&self) -> Option<&str> {
            self.stmt().and_then(|l| l.clause.as_deref())
        }

        fn head(&self) -> Option<&str> {
            self.stmt()
                .and_then(|l| l.words.first())
                .map(String::as_str)
        }
    }

    fn block_for(text: &str, level: &Level, prev: Option<&Tok>) -> Block {
        let word = |i: usize| level.words.get(i).cloned();
        let prev_s = prev.map(|p| p.span.text(text)).unwrap_or("");
        if matches!(level.open, Some(('(' | '[', _)))
            || matches!(prev_s, "=" | "," | "(" | "[" | ":")
        {
            return Block {
                kind: "record",
                name: None,
            };
        }
        if level.clause.as_deref() == Some("with") {
            return Block {
                kind: "with",
                name: None,
            };
        }
        match (word(0).as_deref(), word(1).as_deref()) {
            (Some("agent"), Some("kind")) => Block {
                kind: "kind",
                name: word(2),
            },
            (Some("extern"), _) => Block {
                kind: "step",
                name: word(2),
            },
            (Some("use"), _) => Block {
                kind: "use",
                name: None,
            },
            (Some("resources"), _) => Block {
                kind: "resources",
                name: None,
            },
            (Some(k @ ("workflow" | "step" | "app" | "service" | "agent" | "policy")), _) => {
                let kind = match k {
                    "workflow" => "workflow",
                    "step" => "step",
                    "app" => "app",
                    "service" => "service",
                    "agent" => "agent",
                    _ => "policy",
                };
                Block {
                    kind,
                    name: word(1),
                }
            }
            _ => Block {
                kind: "block",
                name: None,
            },
        }
    }

    fn scan(site: &Site<'_>) -> Ctx {
        let text = site.text;
        let mut ctx = Ctx {
            levels: vec![Level {
                fresh: true,
                ..Level::default()
            }],
            prev: None,
            prev2: None,
        };
        let start = site
            .code
            .partition_point(|t| t.span.start() < site.region.start());
        let end = site.code.partition_point(|t| t.span.start() < site.pos);
        let body = site.code.get(start..end.max(start)).unwrap_or(&[]);
        for tok in site.head.iter().chain(body) {
            let s = tok.span.text(text);
            let prev = ctx.prev;
            let in_group = ctx
                .top()
                .is_some_and(|l| matches!(l.open, Some(('(' | '[', _))));
            if let Some(level) = ctx.levels.last_mut() {
                if !in_group {
                    let new_stmt = level.fresh
                        || (tok.line_start
                            && tok.kind == TokKind::Word
                            && !recovery::continues(text, prev.as_ref()));
                    if new_stmt {
                        level.words.clear();
                        level.clause = None;
                        level.fresh = false;
                    }
                    if tok.kind == TokKind::Word {
                        if level.words.len() < 3 {
                            level.words.push(s.to_string());
                        }
                        if is_keyword(s) && !matches!(s, "and" | "or" | "not" | "true" | "false") {
                            level.clause = Some(s.to_string());
                        }
                    }
                }
            }
            if tok.kind == TokKind::Punct {
                match s {
                    "{" => {
                        let block = ctx.levels.last().map(|l| block_for(text, l, prev.as_ref()));
                        ctx.levels.push(Level {
                            open: Some(('{', tok.span)),
                            block,
                            fresh: true,
                            ..Level::default()
                        });
                    }
                    "(" | "[" => {
                        let c = if s == "(" { '(' } else { '[' };
                        ctx.levels.push(Level {
                            open: Some((c, tok.span)),
                            ..Level::default()
                        });
                    }
                    "}" | ")" | "]" => {
                        if ctx.levels.len() > 1 {
                            ctx.levels.pop();
                        }
                        if s == "}" {
                            if let Some(level) = ctx.levels.last_mut() {
                                level.fresh = true;
                            }
                        }
                    }
                    "," | ";" if !in_group => {
                        if let Some(level) = ctx.levels.last_mut() {
                            level.fresh = true;
                        }
                    }
                    _ => {}
                }
            }
            ctx.prev2 = ctx.prev;
            ctx.prev = Some(*tok);
        }
        ctx
    }

    /// How a token reads in a message: "`}`", "keyword `step`", "a string", "end of file".
    pub(super) fn show_tok(text: &str, tok: &Tok) -> String {
        let s = tok.span.text(text);
        let short: String = if s.chars().count() > 24 {
            s.chars().take(20).chain("…".chars()).collect()
        } else {
            s.to_string()
        };
        match tok.kind {
            TokKind::Str { .. } => "a string".into(),
            TokKind::Word if is_keyword(s) => format!("keyword `{s}`"),
            _ => format!("`{short}`"),
        }
    }

    fn noun(keyword: &str) -> &str {
        match keyword {
            "kind" => "agent kind",
            "fn" => "function",
            k => k,
        }
    }

    /// What an expected expression is, given the keyword before it.
    fn expr_role(prev_kw: Option<&str>) -> &'static str {
        match prev_kw {
            Some("when") => "a condition",
            Some("for" | "timeout" | "backoff" | "cooldown" | "per") => "a duration",
            Some("retry") => "a retry count",
            Some("max" | "every") => "a count",
            Some("slo") => "an objective such as `latency.p95 < 50ms`",
            Some("in") => "a search space such as `1..10` or `[\"a\", \"b\"]`",
            _ => "an expression",
        }
    }

    fn what(e: Exp, prev_kw: Option<&str>) -> String {
        match e {
            Exp::End => "the end of the declaration".into(),
            Exp::DeclName => "a name".into(),
            Exp::FieldName => "a field name".into(),
            Exp::MemberName => "a name".into(),
            Exp::ModuleName => "a module name".into(),
            Exp::Type => "a type".into(),
            Exp::Kind => "an agent kind".into(),
            Exp::Name => match prev_kw {
                Some("run") => "a workflow name".into(),
                Some("on") => "an event such as `training.succeeded`".into(),
                _ => "a name".into(),
            },
            Exp::Expr => expr_role(prev_kw).into(),
            Exp::Str => "a string".into(),
            Exp::Tok(t) => format!("`{t}`"),
            Exp::Kw(k) => format!("`{k}`"),
            Exp::Continue => "an operator".into(),
        }
    }

    fn list(items: &[String]) -> String {
        match items {
            [] => String::new(),
            [one] => one.clone(),
            [rest @ .., last] => format!("{} or {}", rest.join(", "), last),
        }
    }

    /// The syntax of a construct, for help lines.
    fn form(word: &str) -> Option<&'static str> {
        Some(match word {
            "app" => "an app is written `app NAME { namespace = \"…\", registry = \"…\" }`",
            "use" => "write `use std.module.item`, `use std.module.{a, b}` or `use \"./file.sflow\"`",
            "type" => "a type alias is written `type NAME = TYPE`, e.g. `type Images = list<File>`",
            "workflow" => "a workflow is written `workflow NAME { param …  step NAME { … } }`",
            "param" => "a param is written `param NAME: TYPE [= DEFAULT] [in SPACE]`, e.g. `param lr: float = 0.001`",
            "step" => "a step is written `step NAME { … }` inside a workflow",
            "input" => "an input is written `input NAME: TYPE [= SOURCE]`, e.g. `input data: Dataset = fit.model`",
            "output" => "an output is written `output NAME: TYPE`, e.g. `output model: Model`",
            "metric" => "a metric is written `metric NAME: TYPE`, e.g. `metric accuracy: ratio`",
            "resources" => "resources are written `resources { cpu = 2, memory = 4Gi }`",
            "retry" | "backoff" => "a retry is written `retry COUNT [backoff DURATION]`, e.g. `retry 2 backoff 10s`",
            "timeout" => "a timeout is written `timeout DURATION`, e.g. `timeout 30m`",
            "service" => "a service is written `service NAME { model = …, replicas = 1..8, slo latency.p95 < 50ms }`",
            "slo" => "an objective is written `slo latency.p95 < 50ms`",
            "agent" => "an agent is written `agent NAME: KIND { config = value, … }`, e.g. `agent tracker: Tracker { watch = predictor }`",
            "kind" => "an agent kind is written `agent kind NAME { config NAME: TYPE  sensor NAME: TYPE  action NAME(PARAMS) }`",
            "config" => "a config is written `config NAME: TYPE [= DEFAULT]`, or `config NAME: TYPE?` when it may be left out",
            "sensor" => "a sensor is written `sensor NAME: TYPE`",
            "action" => "an action is written `action NAME(PARAMS) [-> run WORKFLOW | -> webhook \"URL\"]`",
            "trigger" | "schedule" | "every" | "on" | "webhook" => {
                "a trigger is written `trigger NAME: SOURCE -> ACTION`, where SOURCE is `schedule \"CRON\"`, \
                 `every N SENSOR`, `on EVENT` or `webhook \"/path\"`, e.g. `trigger nightly: schedule \"0 2 * * *\" -> run training`"
            }
            "run" | "with" => {
                "an action is `run WORKFLOW [with { param = value }]` or an agent action call such as \
                 `planner.scale(predictor, +1)`"
            }
            "policy" | "when" | "for" | "then" | "cooldown" | "max" | "per" => {
                "a policy is written `policy NAME { when CONDITION [for DURATION] then ACTION[, ACTION] \
                 [cooldown DURATION] [max N per DURATION] }`"
            }
            "extern" | "fn" => "write `extern fn NAME(PARAMS) -> TYPE` or `extern step NAME(PARAMS) { … }`",
            _ => return None,
        })
    }

    fn closer(open: char) -> &'static str {
        match open {
            '{' => "}",
            '(' => ")",
            _ => "]",
        }
    }

    /// The member keyword of a block of kind `block` that `word` is probably a misspelling of
    /// (`backof` in a step). Only the keywords that may stand there are candidates, and short
    /// words must be close, so that `foo` never suggests `for`.
    fn did_you_mean(word: &str, block: Option<&str>) -> Option<&'static str> {
        let candidates: &[&'static str] = match block {
            Some("workflow") => &["param", "step"],
            Some("step") => &[
                "input",
                "output",
                "metric",
                "resources",
                "retry",
                "backoff",
                "timeout",
            ],
            Some("service") => &["slo", "resources"],
            Some("kind") => &["config", "sensor", "action"],
            Some("policy") => &["when", "for", "then", "cooldown", "max", "per"],
            _ => &[],
        };
        let limit = if word.chars().count() <= 4 { 1 } else { 2 };
        candidates
            .iter()
            .copied()
            .map(|k| (strsim::damerau_levenshtein(k, word), k))
            .filter(|&(d, _)| d > 0 && d <= limit)
            .min()
            .map(|(_, k)| k)
    }

    /// Builds the diagnostic for a pest failure.
    pub(super) fn describe(file: FileId, site: &Site<'_>, positives: &[Rule]) -> Diagnostic {
        let text = site.text;
        let mut exp = expected(positives);
        let ctx = scan(site);
        let found_i = site.code.partition_point(|t| t.span.start() < site.pos);
        let found = site.code.get(found_i).copied();
        let found_inside = found.filter(|f| f.span.start() < site.region.end());
        let prev = ctx.prev;
        let prev_s = prev.map(|p| p.span.text(text));
        let prev_kw =
            prev_s.filter(|s| prev.is_some_and(|p| p.kind == TokKind::Word) && is_keyword(s));
        // Leave out the unlikely readings: `retry = 2` after `retry`, a named argument after
        // `f(a`, a type argument list after `list<int`.
        if exp.len() > 1 && (prev_kw.is_some() || exp.contains(&Exp::Tok(","))) {
            exp.retain(|e| *e != Exp::Tok("="));
        }
        if exp.contains(&Exp::Tok(">")) {
            exp.retain(|e| *e != Exp::Tok("<"));
        }
        // Closing brackets read best last: "expected `,` or `]`".
        exp.sort_by_key(|e| matches!(e, Exp::Tok("}" | ")" | "]" | ">")));

        // Where to point: at the offending token when it is on the same line as what came
        // before, otherwise just after the last good token.
        let same_line = |a: usize, b: usize| !text.get(a..b).unwrap_or("\n").contains('\n');
        let point = match (found, prev) {
            (Some(f), Some(p)) if same_line(p.span.end(), f.span.start()) => f.span,
            (Some(f), None) if found_inside.is_some() => f.span,
            (_, Some(p)) => Span::point(p.span.end()),
            (_, None) => Span::point(site.pos),
        };
        let clause = ctx.clause().map(str::to_string);
        let head = ctx.head().map(str::to_string);
        // A hint about the unexpected token itself, when we can guess what was meant.
        let hint = found_inside.and_then(|f| {
            let s = f.span.text(text);
            if f.is_punct(text, "=") && matches!(clause.as_deref(), Some("output" | "metric")) {
                return Some(
                    "only an `input` is bound with `=`; an output or metric is produced by the step itself"
                        .to_string(),
                );
            }
            if f.kind == TokKind::Word && !is_keyword(s) {
                return did_you_mean(s, ctx.block().map(|b| b.kind)).map(|k| format!("did you mean `{k}`?"));
            }
            None
        });
        // The most specific syntax reminder: the clause's (`input …`), the statement's, then
        // that of the brackets or value being written, then the field's, then the block's.
        let group_help = match ctx.top().and_then(|l| l.open) {
            Some(('[', _)) => Some("a list is written `[a, b, c]`"),
            Some(('(', _)) => Some("arguments are separated by `,`: `f(a, name = b)`"),
            _ => None,
        };
        let value_help = exp.contains(&Exp::Expr).then_some(
            "a value is a literal (`42`, `0.5`, `30m`, `\"text\"`), a name (`fit.model`), a call \
             (`f(x)`), a list (`[a, b]`), a record (`{ a = 1 }`) or an operation (`a + b`)",
        );
        let in_field = head.as_deref().is_some_and(|h| !is_keyword(h))
            && ctx.block().is_some_and(|b| b.kind != "use");
        let field_help =
            in_field.then_some("a field is written `NAME = value`, e.g. `image = \"python:3.12\"`");
        // `run = …` is a field named by a keyword, not the `run` action: the keyword's form
        // would mislead.
        let keyword_field = prev_s == Some("=")
            && ctx.prev2.is_some_and(|p| {
                p.kind == TokKind::Word && Some(p.span.text(text)) == head.as_deref()
            });
        let help_form = clause
            .as_deref()
            .filter(|_| !keyword_field)
            .and_then(form)
            .or_else(|| head.as_deref().filter(|_| !keyword_field).and_then(form))
            .or(group_help)
            .or(value_help)
            .or(field_help)
            .or_else(|| ctx.block().and_then(|b| form(b.kind)));
        let generic_help = || -> String {
            if site.interp {
                return "an interpolation holds one expression, such as `{{ inputs.model }}` or `{{ epochs }}`".into();
            }
            help_form
                .map(str::to_string)
                .unwrap_or_else(|| match ctx.block() {
                    Some(b) => b.members_help().to_string(),
                    None => "check the syntax of this declaration in docs/language.md".into(),
                })
        };
        let mk = |message: String, at: Span, label: String, help: String| {
            Diagnostic::new(Code::E0001, file, at, message)
                .with_label(label)
                .with_help(help)
        };

        // 1. The construct was complete; what follows does not belong.
        if exp.contains(&Exp::End) {
            if let Some(f) = found_inside {
                let shown = show_tok(text, &f);
                let block = ctx.block().cloned();
                let where_ = match &block {
                    _ if site.interp => " in the interpolation".to_string(),
                    Some(b) => format!(" in {}", b.describe()),
                    None => String::new(),
                };
                let help = if f.is_punct(text, "}") {
                    "this `}` has no matching `{`; remove it".to_string()
                } else if let Some(hint) = &hint {
                    hint.clone()
                } else if site.interp {
                    generic_help()
                } else if let Some(b) = &block {
                    b.members_help().to_string()
                } else {
                    let decl = ctx
                        .levels
                        .first()
                        .and_then(|l| l.words.first())
                        .cloned()
                        .unwrap_or_default();
                    format!(
                        "the `{decl}` declaration ends before this; a new declaration starts with a keyword \
                         such as `workflow`, `service` or `policy`"
                    )
                };
                return mk(
                    format!("unexpected {shown}{where_}"),
                    f.span,
                    format!("unexpected {shown}"),
                    help,
                );
            }
        }

        // 2. The region ended inside brackets: the closing one is missing.
        if found_inside.is_none() {
            if let Some(level) = ctx.levels.iter().rev().find(|l| l.open.is_some()) {
                if let Some((open, open_span)) = level.open {
                    let close = closer(open);
                    if exp.contains(&Exp::Tok(close)) {
                        let what = match (open, &level.block) {
                            ('{', Some(b)) => b.describe(),
                            ('(', _) => "the parentheses".into(),
                            _ => "the list".into(),
                        };
                        return mk(
                            format!("expected `{close}` to close {what}"),
                            point,
                            format!("expected `{close}` here"),
                            format!("every `{open}` needs a matching `{close}`"),
                        )
                        .with_secondary(
                            file,
                            open_span,
                            format!("this `{open}` is never closed"),
                        );
                    }
                }
            }
        }

        // 3. Inside a block, a token that starts no member.
        let member_starts = exp.iter().any(|e| {
            matches!(
                e,
                Exp::FieldName
                    | Exp::Kw(
                        "param"
                            | "step"
                            | "input"
                            | "output"
                            | "metric"
                            | "config"
                            | "sensor"
                            | "action"
                            | "slo"
                    )
            )
        });
        if let (Some(f), true, true) = (found_inside, member_starts, exp.contains(&Exp::Tok("}"))) {
            let shown = show_tok(text, &f);
            let block = ctx.block().cloned().unwrap_or(Block {
                kind: "block",
                name: None,
            });
            let help = hint.unwrap_or_else(|| block.members_help().to_string());
            return mk(
                format!("unexpected {shown} in {}", block.describe()),
                f.span,
                format!("unexpected {shown}"),
                help,
            );
        }

        // 4. Something specific was expected.
        let decl_noun = decl_noun_before(text, &ctx);
        let after = || -> String {
            if let Some(n) = &decl_noun {
                return format!(" after the {n} name");
            }
            match (prev, prev_s) {
                (Some(p), Some(s)) => match p.kind {
                    TokKind::Str { .. } => " after the string".into(),
                    TokKind::Word if !is_keyword(s) && exp == [Exp::Tok("=")] => {
                        format!(" after the field name `{s}`")
                    }
                    _ => format!(" after `{s}`"),
                },
                _ => String::new(),
            }
        };
        let in_policy = ctx.block().is_some_and(|b| b.kind == "policy");
        let clause_s = clause.as_deref();
        let (message, label) = if exp.contains(&Exp::Kw("then")) && in_policy {
            let after = if clause_s == Some("for") {
                "the `for` duration"
            } else {
                "the policy condition"
            };
            (
                format!("expected `then` and an action after {after}"),
                "expected `then` here".to_string(),
            )
        } else if exp.contains(&Exp::Kw("when")) && in_policy {
            (
                "expected `when` and a condition to start the policy".to_string(),
                "expected `when` here".to_string(),
            )
        } else if exp.contains(&Exp::Tok("->"))
            && head.as_deref() == Some("trigger")
            && prev_s != Some(":")
        {
            (
                "expected `->` and an action after the trigger source".to_string(),
                "expected `->` here".to_string(),
            )
        } else if exp.contains(&Exp::Kw("schedule")) {
            (
                format!("expected a trigger source{}", after()),
                "expected `schedule`, `every`, `on` or `webhook` here".to_string(),
            )
        } else if exp.contains(&Exp::Kw("run")) && exp.contains(&Exp::Expr) {
            (
                format!("expected an action{}", after()),
                "expected an action here".to_string(),
            )
        } else if exp.contains(&Exp::Tok(":")) && decl_noun.is_some() {
            let n = decl_noun.clone().unwrap_or_default();
            let then = match n.as_str() {
                "trigger" => "a source",
                "agent" => "the agent's kind",
                _ => "a type",
            };
            (
                format!("expected `:` and {then} after the {n} name"),
                "expected `:` here".to_string(),
            )
        } else if exp == [Exp::Tok("->")] && head.as_deref() == Some("extern") {
            (
                "expected `->` and the result type after the parameter list".to_string(),
                "expected `->` here".to_string(),
            )
        } else if exp.contains(&Exp::Kw("per")) && clause_s == Some("max") {
            (
                "expected `per` and a duration after the count".to_string(),
                "expected `per` here".to_string(),
            )
        } else if clause_s == Some("every") && exp.contains(&Exp::Name) && !exp.contains(&Exp::Expr)
        {
            (
                "expected a sensor after the count, as in `every 1000 tracker.new_samples`"
                    .to_string(),
                "expected a sensor here".to_string(),
            )
        } else {
            let whats: Vec<String> = exp
                .iter()
                .filter(|e| **e != Exp::End)
                .map(|e| what(*e, prev_kw))
                .collect();
            let where_ = if site.interp && found_inside.is_none() && prev.is_none() {
                " inside `{{ }}`".to_string()
            } else {
                after()
            };
            let whats = if whats.is_empty() {
                vec!["something else".to_string()]
            } else {
                whats
            };
            // The label names the same alternatives as the message, but stays short: "expected
            // an event here", not the example too.
            let shorts: Vec<String> = whats
                .iter()
                .map(|w| w.split(" such as ").next().unwrap_or(w).to_string())
                .collect();
            (
                format!("expected {}{where_}", list(&whats)),
                format!("expected {} here", list(&shorts)),
            )
        };
        let found_keyword = found_inside
            .filter(|f| f.kind == TokKind::Word && is_keyword(f.span.text(text)))
            .map(|f| f.span.text(text));
        let help = if let (Some(kw), true) = (
            found_keyword,
            exp.contains(&Exp::Expr) || exp.contains(&Exp::Name),
        ) {
            format!("`{kw}` is a keyword and cannot be used as a name or value here")
        } else if exp == [Exp::Tok("=")]
            && decl_noun.is_none()
            && prev.is_some_and(|p| p.kind == TokKind::Word)
        {
            // `backof 3s`: most likely a misspelt member keyword.
            match did_you_mean(prev_s.unwrap_or(""), ctx.block().map(|b| b.kind)) {
                Some(k) => format!("did you mean `{k}`? (a field is written `NAME = value`)"),
                None => "a field is written `NAME = value`".to_string(),
            }
        } else {
            generic_help()
        };
        mk(message, point, label, help)
    }

    /// When the token before the error is the name in `KEYWORD NAME` (`step fit`), the noun
    /// for that keyword ("step").
    fn decl_noun_before(text: &str, ctx: &Ctx) -> Option<String> {
        let prev = ctx.prev?;
        let prev2 = ctx.prev2?;
        if prev.kind != TokKind::Word || is_keyword(prev.span.text(text)) {
            return None;
        }
        let kw = prev2.span.text(text);
        if prev2.kind == TokKind::Word && is_keyword(kw) {
            let known = matches!(
                kw,
                "app"
                    | "type"
                    | "workflow"
                    | "param"
                    | "step"
                    | "input"
                    | "output"
                    | "metric"
                    | "service"
                    | "agent"
                    | "kind"
                    | "config"
                    | "sensor"
                    | "action"
                    | "trigger"
                    | "policy"
                    | "fn"
            );
            return known.then(|| noun(kw).to_string());
        }
        // A parameter in a signature: `(name` or `, name`.
        if prev2.kind == TokKind::Punct && matches!(kw, "(" | ",") {
            let in_sig = ctx.top().is_some_and(|l| matches!(l.open, Some(('(', _))))
                && ctx
                    .stmt()
                    .and_then(|l| l.clause.as_deref())
                    .is_some_and(|c| matches!(c, "action" | "fn" | "step"));
            return in_sig.then(|| "parameter".to_string());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> SourceFile {
        let parse = parse(FileId(0), text);
        assert!(
            parse.diagnostics.is_empty(),
            "{text:?}: {:#?}",
            parse.diagnostics
        );
        parse.file
    }

    fn expr(text: &str) -> Expr {
        let file = ok(&format!("app a {{ x = {text} }}"));
        match file.items.into_iter().next() {
            Some(Item::App(app)) => app.fields.into_iter().next().map(|f| f.value),
            _ => None,
        }
        .unwrap_or(Expr {
            kind: ExprKind::Bool(false),
            span: Span::default(),
        })
    }

    /// A compact rendering of an expression tree.
    fn show(e: &Expr) -> String {
        match &e.kind {
            ExprKind::Int(n) => n.to_string(),
            ExprKind::Float(f) => format!("{f:?}"),
            ExprKind::Suffixed { digits, unit, .. } => format!("{digits}{unit}"),
            ExprKind::Bool(b) => b.to_string(),
            ExprKind::Str(s) => format!("{:?}", s.as_plain().unwrap_or_else(|| "<interp>".into())),
            ExprKind::Name(n) => n.name.clone(),
            ExprKind::Field { base, field } => format!("{}.{}", show(base), field.name),
            ExprKind::Call { callee, args } => {
                let args: Vec<String> = args
                    .iter()
                    .map(|a| match &a.name {
                        Some(n) => format!("{}={}", n.name, show(&a.value)),
                        None => show(&a.value),
                    })
                    .collect();
                format!("{}({})", show(callee), args.join(", "))
            }
            ExprKind::List(items) => format!(
                "[{}]",
                items.iter().map(show).collect::<Vec<_>>().join(", ")
            ),
            ExprKind::Record(fields) => format!(
                "{{{}}}",
                fields
                    .iter()
                    .map(|f| format!("{}={}", f.name.name, show(&f.value)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            ExprKind::Range { start, end } => format!("({}..{})", show(start), show(end)),
            ExprKind::Unary { op, operand } => format!("({}{})", op.symbol(), show(operand)),
            ExprKind::Binary { op, lhs, rhs } => {
                format!("({} {} {})", show(lhs), op.symbol(), show(rhs))
            }
            ExprKind::Paren(inner) => format!("[{}]", show(inner)),
        }
    }

    #[test]
    fn precedence_and_associativity() {
        assert_eq!(show(&expr("1 + 2 * 3 - 4")), "((1 + (2 * 3)) - 4)");
        assert_eq!(show(&expr("a or b and not c")), "(a or (b and (not c)))");
        assert_eq!(show(&expr("a || b && !c")), "(a or (b and (not c)))");
        assert_eq!(show(&expr("x.y > 1 + 2")), "(x.y > (1 + 2))");
        assert_eq!(show(&expr("1..2 + 3")), "(1..(2 + 3))");
        assert_eq!(show(&expr("-a.b(c)")), "(-a.b(c))");
        assert_eq!(show(&expr("(1 + 2) * 3")), "([(1 + 2)] * 3)");
        assert_eq!(show(&expr("f(a = 1, b)")), "f(a=1, b)");
        assert_eq!(show(&expr("[1, 2,]")), "[1, 2]");
        assert_eq!(show(&expr("{ a = 1, b = { c = 2 } }")), "{a=1, b={c=2}}");
        assert_eq!(show(&expr("a == b")), "(a == b)");
        assert_eq!(show(&expr("+1")), "(+1)");
    }

    #[test]
    fn numbers() {
        assert_eq!(expr("42").kind, ExprKind::Int(42));
        assert_eq!(expr("0.5").kind, ExprKind::Float(0.5));
        assert_eq!(expr("1e-3").kind, ExprKind::Float(1e-3));
        assert_eq!(expr("2.5e+3").kind, ExprKind::Float(2500.0));
        assert_eq!(
            expr("4Gi").kind,
            ExprKind::Suffixed {
                value: 4.0,
                digits: "4".into(),
                unit: "Gi".into()
            }
        );
        assert_eq!(
            expr("1.5e3ms").kind,
            ExprKind::Suffixed {
                value: 1500.0,
                digits: "1.5e3".into(),
                unit: "ms".into()
            }
        );
        assert_eq!(show(&expr("1..8")), "(1..8)");
    }

    #[test]
    fn strings_decode_escapes_and_interpolations() {
        let text = r#"app a { x = "a\"b\\ {{ inputs.model }} \{c\}" }"#;
        let e = expr(r#""a\"b\\ {{ inputs.model }} \{c\}""#);
        let ExprKind::Str(s) = e.kind else {
            panic!("not a string")
        };
        assert_eq!(s.parts.len(), 3);
        match &s.parts[0] {
            StrPart::Text { value, .. } => assert_eq!(value, "a\"b\\ "),
            other => panic!("{other:?}"),
        }
        match &s.parts[1] {
            StrPart::Interp { expr, span } => {
                assert_eq!(show(expr), "inputs.model");
                // Spans are absolute: they point inside the string of the file.
                assert_eq!(expr.span.text(text), "inputs.model");
                assert_eq!(span.text(text), "{{ inputs.model }}");
            }
            other => panic!("{other:?}"),
        }
        match &s.parts[2] {
            StrPart::Text { value, span } => {
                assert_eq!(value, " {c}");
                assert_eq!(span.text(text), r" \{c\}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// Expands the `keyword` rule of the grammar (quoted strings, `~`, `|` and one level of
    /// parentheses) into the words it accepts.
    fn grammar_keywords() -> Vec<String> {
        let grammar = include_str!("../../../../grammar/sflow.pest");
        let start = grammar.find("keyword = @{").unwrap_or(0);
        let end = grammar[start..]
            .find("~ !ident_char")
            .map_or(grammar.len(), |e| start + e);
        // Skip the first-letter test: the words follow its `~`.
        let body = &grammar[start + "keyword = @{".len()..end];
        let body = body.split_once("\n  ~ ").map_or(body, |(_, words)| words);
        let body = body
            .trim()
            .trim_start_matches('(')
            .trim_end()
            .trim_end_matches(')');
        let mut words = Vec::new();
        // Top-level alternatives are separated by `|` outside parentheses.
        let mut depth = 0;
        let mut alt = String::new();
        let mut alts = Vec::new();
        for c in body.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                '|' if depth == 0 => {
                    alts.push(std::mem::take(&mut alt));
                    continue;
                }
                _ => {}
            }
            alt.push(c);
        }
        alts.push(alt);
        for alt in alts {
            let quoted: Vec<&str> = alt.split('"').skip(1).step_by(2).collect();
            match alt.split_once('~') {
                Some(_) => {
                    let (first, rest) = quoted.split_first().unwrap_or((&"", &[]));
                    words.extend(rest.iter().map(|r| format!("{first}{r}")));
                }
                None => words.extend(quoted.iter().map(|w| w.to_string())),
            }
        }
        words.sort();
        words
    }

    #[test]
    fn keywords_in_the_grammar_match_the_ast_list() {
        assert_eq!(grammar_keywords(), ast::KEYWORDS);
        for &kw in ast::KEYWORDS {
            assert!(
                SflowParser::parse(Rule::keyword, kw).is_ok(),
                "`{kw}` is a keyword"
            );
            assert!(
                SflowParser::parse(Rule::name, kw).is_err(),
                "`{kw}` must not be a name"
            );
            for cut in 1..kw.len() {
                let prefix = &kw[..cut];
                let whole =
                    SflowParser::parse(Rule::keyword, prefix).is_ok_and(|p| p.as_str() == prefix);
                assert_eq!(whole, ast::is_keyword(prefix), "`{prefix}`");
            }
            let longer = format!("{kw}x");
            assert!(
                SflowParser::parse(Rule::name, &longer).is_ok(),
                "`{longer}` is a name"
            );
        }
    }

    #[test]
    fn doc_comments_attach_to_the_next_declaration_only() {
        let file = ok("/// One.\n///   Two.\n//// not doc\napp a {}\n/// Three\n\nworkflow w {\n  /// P\n  param p: int\n}\n");
        let docs: Vec<Option<String>> = file
            .items
            .iter()
            .map(|i| i.doc().map(|d| d.text.clone()))
            .collect();
        // `////` is a plain comment and breaks the run, so `app` has no doc.
        assert_eq!(docs, vec![None, Some("Three".to_string())]);
        let file = ok("/// One.\n///   Two.\napp a {}");
        assert_eq!(
            file.items[0].doc().map(|d| d.text.as_str()),
            Some("One.\n  Two.")
        );
        let file = ok("workflow w {\n  /// P\n  param p: int\n}\n");
        let Some(Item::Workflow(w)) = file.items.first() else {
            panic!()
        };
        assert_eq!(
            w.params()
                .next()
                .and_then(|p| p.doc.as_ref())
                .map(|d| d.text.as_str()),
            Some("P")
        );
    }

    #[test]
    fn field_sugar_for_step_members() {
        let file = ok("workflow w { step s { timeout = 5m, retry = 2, resources = { cpu = 1 } } }");
        let Some(Item::Workflow(w)) = file.items.first() else {
            panic!()
        };
        let step = w
            .steps()
            .next()
            .map(|s| s.members.clone())
            .unwrap_or_default();
        assert!(matches!(step[0], StepMember::Timeout(_)));
        assert!(matches!(step[1], StepMember::Retry(_)));
        assert!(matches!(step[2], StepMember::Resources(_)));
    }

    #[test]
    fn chained_comparisons_are_rejected() {
        let parse = parse(FileId(0), "app a { x = 1 < 2 < 3 }");
        assert_eq!(parse.diagnostics.len(), 1);
        assert_eq!(
            parse.diagnostics[0].message,
            "comparison operators cannot be chained"
        );
        assert_eq!(parse.file.items.len(), 1);
    }

    /// A workflow parsed a run of members at a time gives what parsing it whole gives: the
    /// same tree, spans, doc comments and diagnostics (E0002 and E0003 come from conversion).
    #[test]
    fn workflows_by_members_equal_whole_workflows() {
        let mut big = String::from("/// The app.\napp a {}\n/// The workflow.\nworkflow w {\n");
        for i in 0..100usize {
            big.push_str(&format!(
                "  /// Step {i}.\n  step s{i} {{ image = \"x:{{{{inputs.d}}}}\"; input d: T = s{}.o\n    output o: T, retry 2 backoff 1s }}\n  param p{i}: int = {i} in 1..8\n",
                i.saturating_sub(1)
            ));
        }
        big.push_str("  step param { x = 99999999999999999999 }\n}\n");
        let mnist = include_str!("../../../../examples/mnist/mnist.sflow");
        for text in [
            big.as_str(),
            mnist,
            "workflow w {}",
            "workflow w { ; step s {} ; }",
        ] {
            let fast = parse_with(FileId(0), text, true, None);
            let whole = parse_with(FileId(0), text, false, None);
            assert_eq!(fast, whole, "{text}");
        }
        let fast = parse_with(FileId(0), &big, true, None);
        assert_eq!(fast.diagnostics.len(), 2, "{:#?}", fast.diagnostics);
        match fast.file.items.get(1) {
            Some(Item::Workflow(w)) => assert_eq!(w.members.len(), 201),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn deep_inputs_do_not_overflow() {
        for text in [
            format!("app a {{ x = {}1 }}", "-".repeat(30_000)),
            format!("app a {{ x = 1{} }}", " + 1".repeat(30_000)),
            format!("app a {{ x = a{} }}", ".b".repeat(30_000)),
            format!(
                "app a {{ x = {}1{} }}",
                "(".repeat(30_000),
                ")".repeat(30_000)
            ),
            format!(
                "type t = {}int{}",
                "list<".repeat(30_000),
                ">".repeat(30_000)
            ),
            format!("app a {{ x = \"{{{{ {}1 }}}}\" }}", "(".repeat(30_000)),
            format!("app a {{ x = f{} }}", "()".repeat(30_000)),
        ] {
            let parse = parse(FileId(0), &text);
            assert!(!parse.diagnostics.is_empty(), "{}", &text[..40]);
        }
        // Reasonable depth is fine.
        ok(&format!(
            "app a {{ x = {}1{} }}",
            "(".repeat(50),
            ")".repeat(50)
        ));
    }
}
