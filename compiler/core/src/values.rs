//! Validators and converters for the values an sflow program hands to Kubernetes and to the
//! runtime: object names, cron schedules, image references, durations and resource quantities.
//!
//! Invariants:
//! - every function here is pure (no I/O, no clock) and never panics, whatever the input;
//! - every error that concerns a piece of its input carries the byte `offset` and `len` of the
//!   offending part *within that input*, so the type checker can shift it by the position of the
//!   string literal and point the diagnostic at the user's own characters;
//! - the checks are exactly as strict as the consumer downstream (the Kubernetes API server,
//!   Argo's cron parser, the distribution reference grammar), so a program that compiles never
//!   fails later on a malformed value.

use std::fmt;
use std::time::Duration;
use thiserror::Error;

// ───────────────────────────────────────── Kubernetes names ─────────────────────────────────────────

/// The longest RFC 1123 / RFC 1035 label (namespaces, Service names, most object names).
pub const DNS_LABEL_MAX: usize = 63;
/// The longest RFC 1123 subdomain (ConfigMaps, Deployments, …).
pub const DNS_SUBDOMAIN_MAX: usize = 253;

/// The Kubernetes object name an sflow identifier maps to: ASCII letters lowered, `_` → `-`.
///
/// Every other character is kept as it is (and then rejected by the `check_dns_*` functions), so
/// the result has exactly the byte length of `ident` and an error offset into the result is also
/// an offset into the identifier as the user wrote it.
pub fn kube_name(ident: &str) -> String {
    ident
        .chars()
        .map(|c| {
            if c == '_' {
                '-'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// Why a string is not a valid Kubernetes name, and where.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{reason}")]
pub struct NameError {
    /// Byte offset of the offending part within the checked name.
    pub offset: usize,
    /// Byte length of the offending part (0 for an empty name).
    pub len: usize,
    /// Human reason, to follow the name: "must start with a letter or digit",
    /// "longer than 63 characters (70)", "contains `.`".
    pub reason: String,
}

impl NameError {
    fn new(offset: usize, len: usize, reason: impl Into<String>) -> NameError {
        NameError {
            offset,
            len,
            reason: reason.into(),
        }
    }
}

/// Checks an RFC 1123 label: 1 to 63 characters of `[a-z0-9-]`, starting and ending with a
/// letter or digit (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`). Namespaces and most object names.
pub fn check_dns_label(name: &str) -> Result<(), NameError> {
    check_label(name, 0, false)
}

/// Checks an RFC 1035 label: like [`check_dns_label`] but it must start with a letter
/// (`[a-z]([-a-z0-9]*[a-z0-9])?`). Service names must be RFC 1035 labels.
pub fn check_dns1035_label(name: &str) -> Result<(), NameError> {
    check_label(name, 0, true)
}

/// Checks an RFC 1123 subdomain: at most 253 characters of dot-separated RFC 1123 labels.
pub fn check_dns_subdomain(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::new(0, 0, "is empty"));
    }
    let mut start = 0;
    for label in name.split('.') {
        let end = start + label.len();
        if label.is_empty() {
            // An empty label is a dot at the start, at the end, or next to another dot.
            return Err(if start == 0 {
                NameError::new(0, 1, "must start with a letter or digit")
            } else if end == name.len() {
                NameError::new(start - 1, 1, "must end with a letter or digit")
            } else {
                NameError::new(start - 1, 2, "contains `..`")
            });
        }
        check_label(label, start, false)?;
        start = end + 1;
    }
    if name.len() > DNS_SUBDOMAIN_MAX {
        return Err(too_long(name, 0, DNS_SUBDOMAIN_MAX));
    }
    Ok(())
}

/// The shared label check; `base` is the label's offset in the whole name (for subdomains).
///
/// The order of the checks matters for the message: a bad character is reported before a bad
/// first or last character (`_x` says "contains `_`", the actual mistake) and the length last
/// (fixing the characters usually comes first).
fn check_label(label: &str, base: usize, letter_first: bool) -> Result<(), NameError> {
    if label.is_empty() {
        return Err(NameError::new(base, 0, "is empty"));
    }
    if let Some((i, c)) = label
        .char_indices()
        .find(|&(_, c)| !matches!(c, 'a'..='z' | '0'..='9' | '-'))
    {
        return Err(NameError::new(base + i, c.len_utf8(), contains(c)));
    }
    let bytes = label.as_bytes();
    if letter_first && !bytes[0].is_ascii_lowercase() {
        return Err(NameError::new(base, 1, "must start with a letter"));
    }
    if bytes[0] == b'-' {
        return Err(NameError::new(base, 1, "must start with a letter or digit"));
    }
    if bytes[bytes.len() - 1] == b'-' {
        return Err(NameError::new(
            base + label.len() - 1,
            1,
            "must end with a letter or digit",
        ));
    }
    if label.len() > DNS_LABEL_MAX {
        return Err(too_long(label, base, DNS_LABEL_MAX));
    }
    Ok(())
}

fn too_long(text: &str, base: usize, max: usize) -> NameError {
    NameError::new(
        base + max,
        text.len() - max,
        format!("longer than {max} characters ({})", text.len()),
    )
}

/// "contains `c`", readable for invisible characters too.
fn contains(c: char) -> String {
    if c == ' ' {
        "contains a space".to_string()
    } else if c.is_ascii_uppercase() {
        format!("contains uppercase `{c}`")
    } else if c.is_control() || c.is_whitespace() {
        format!("contains {c:?}")
    } else {
        format!("contains `{c}`")
    }
}

// ─────────────────────────────────────────────── cron ───────────────────────────────────────────────

/// One of the five fields of a cron expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CronField {
    /// Minute, 0-59.
    Minute,
    /// Hour, 0-23.
    Hour,
    /// Day of the month, 1-31.
    DayOfMonth,
    /// Month, 1-12 or `JAN`-`DEC`.
    Month,
    /// Day of the week, 0-7 (0 and 7 are Sunday) or `SUN`-`SAT`.
    DayOfWeek,
}

impl CronField {
    /// The five fields in the order they are written.
    pub const ALL: [CronField; 5] = [
        CronField::Minute,
        CronField::Hour,
        CronField::DayOfMonth,
        CronField::Month,
        CronField::DayOfWeek,
    ];

    /// The field's name in messages ("hour", "day of month").
    pub fn name(self) -> &'static str {
        match self {
            CronField::Minute => "minute",
            CronField::Hour => "hour",
            CronField::DayOfMonth => "day of month",
            CronField::Month => "month",
            CronField::DayOfWeek => "day of week",
        }
    }

    /// The smallest and largest value the field accepts as written (day of week: 0-7).
    pub fn range(self) -> (u32, u32) {
        match self {
            CronField::Minute => (0, 59),
            CronField::Hour => (0, 23),
            CronField::DayOfMonth => (1, 31),
            CronField::Month => (1, 12),
            CronField::DayOfWeek => (0, 7),
        }
    }

    /// The range `*` stands for: like [`CronField::range`], except that `*` in the day of week
    /// means 0-6 (7 is only another spelling of Sunday, so `*/2` is Sun, Tue, Thu, Sat).
    fn star_range(self) -> (u32, u32) {
        match self {
            CronField::DayOfWeek => (0, 6),
            other => other.range(),
        }
    }

    fn expected(self) -> &'static str {
        match self {
            CronField::Minute => "a number 0-59",
            CronField::Hour => "a number 0-23",
            CronField::DayOfMonth => "a number 1-31",
            CronField::Month => "1-12 or JAN-DEC",
            CronField::DayOfWeek => "0-7 or SUN-SAT",
        }
    }

    fn names(self) -> &'static [&'static str] {
        match self {
            CronField::Month => &[
                "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
            ],
            CronField::DayOfWeek => &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
            _ => &[],
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for CronField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a cron expression is invalid, and where.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct CronError {
    /// Byte offset of the offending part within the expression.
    pub offset: usize,
    /// Byte length of the offending part.
    pub len: usize,
    /// What is wrong: "hour 24 is out of range 0-23".
    pub message: String,
}

impl CronError {
    fn new(offset: usize, len: usize, message: impl Into<String>) -> CronError {
        CronError {
            offset,
            len,
            message: message.into(),
        }
    }
}

/// The macros that stand for a whole expression, and what they mean.
const CRON_MACROS: [(&str, &str); 7] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

/// A valid cron schedule: the set of allowed values of each field.
///
/// Day-of-month and day-of-week combine as in Vixie cron and in the cron parser of Argo and
/// Kubernetes (robfig/cron): when both are restricted a day matches if *either* matches; when one
/// of them is `*` only the other one counts. "Restricted" follows robfig/cron exactly — a field is
/// unrestricted when one of its list items is `*` or `*/1` — because the cluster computes the
/// real fire times of an emitted `CronWorkflow` that way, and the local runtime must agree.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CronSchedule {
    /// Allowed values per field as bitsets, indexed by [`CronField::index`]; bit `v` is value
    /// `v`. Day of week uses bits 0-6 only (7 is folded into 0 when parsing).
    sets: [u64; 5],
    /// Whether the day-of-month field is unrestricted (`*`).
    dom_star: bool,
    /// Whether the day-of-week field is unrestricted (`*`).
    dow_star: bool,
}

/// Parses and validates a standard 5-field cron expression (minute hour day-of-month month
/// day-of-week) or one of the macros `@yearly @annually @monthly @weekly @daily @midnight
/// @hourly`.
///
/// Each field is a comma-separated list of `*`, `N`, `A-B`, `*/S`, `A-B/S` or `N/S` (from `N` to
/// the field's maximum, as Argo and Kubernetes read it); months may be written `JAN`-`DEC` and
/// weekdays `SUN`-`SAT`, in any case; day of week is 0-7 with both 0 and 7 meaning Sunday.
pub fn check_cron(expr: &str) -> Result<CronSchedule, CronError> {
    let tokens = split_whitespace_with_offsets(expr);
    if let Some(&(offset, first)) = tokens.first() {
        if first.starts_with('@') {
            if let Some(&(extra, _)) = tokens.get(1) {
                let end = tokens.last().map_or(extra, |&(o, t)| o + t.len());
                return Err(CronError::new(
                    extra,
                    end - extra,
                    format!("the macro `{first}` stands alone: remove what follows it"),
                ));
            }
            let Some(&(_, meaning)) = CRON_MACROS
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(first))
            else {
                let message = if first.eq_ignore_ascii_case("@reboot") {
                    "`@reboot` is not supported: a schedule needs times of day".to_string()
                } else {
                    format!(
                        "unknown macro `{first}`: expected one of {}",
                        CRON_MACROS
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                return Err(CronError::new(offset, first.len(), message));
            };
            // The macros' expansions are valid by construction; errors inside them cannot
            // happen, but if they did they would be reported at the macro itself.
            return check_cron(meaning).map_err(|e| CronError::new(offset, first.len(), e.message));
        }
    }
    if tokens.len() != 5 {
        let (offset, len) = match tokens.get(5) {
            // Too many: point at the surplus fields.
            Some(&(offset, _)) => (offset, expr.trim_end().len() - offset),
            // Too few (or none): point at what there is.
            None => match tokens.first() {
                Some(&(offset, _)) => (offset, expr.trim_end().len() - offset),
                None => (0, expr.len()),
            },
        };
        return Err(CronError::new(
            offset,
            len,
            format!(
                "expected 5 fields (minute hour day month weekday), found {}",
                tokens.len()
            ),
        ));
    }
    let mut sets = [0u64; 5];
    let mut stars = [false; 5];
    for (field, &(offset, text)) in CronField::ALL.into_iter().zip(&tokens) {
        let (set, star) = parse_cron_field(text, offset, field)?;
        sets[field.index()] = set;
        stars[field.index()] = star;
    }
    // 7 is another Sunday.
    let dow = &mut sets[CronField::DayOfWeek.index()];
    if *dow & (1 << 7) != 0 {
        *dow = (*dow & !(1 << 7)) | 1;
    }
    Ok(CronSchedule {
        sets,
        dom_star: stars[CronField::DayOfMonth.index()],
        dow_star: stars[CronField::DayOfWeek.index()],
    })
}

/// Whitespace-separated tokens with their byte offsets.
fn split_whitespace_with_offsets(text: &str) -> Vec<(usize, &str)> {
    let mut tokens = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                tokens.push((s, &text[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        tokens.push((s, &text[s..]));
    }
    tokens
}

/// Parses one field (`text` at byte `base` of the expression) into its bitset and whether it is
/// unrestricted in robfig/cron's sense (an item `*` or `*/1`).
fn parse_cron_field(text: &str, base: usize, field: CronField) -> Result<(u64, bool), CronError> {
    let mut set = 0u64;
    let mut star = false;
    let mut offset = base;
    for item in text.split(',') {
        if item.is_empty() {
            // Point at the comma that has nothing before or after it.
            let comma = if offset < base + text.len() {
                offset
            } else {
                offset - 1
            };
            return Err(CronError::new(
                comma,
                1,
                format!("empty item in the {field} list"),
            ));
        }
        let (item_set, item_star) = parse_cron_item(item, offset, field)?;
        set |= item_set;
        star |= item_star;
        offset += item.len() + 1;
    }
    Ok((set, star))
}

/// Parses one list item: `*`, `N`, `A-B`, each optionally followed by `/STEP`.
fn parse_cron_item(item: &str, base: usize, field: CronField) -> Result<(u64, bool), CronError> {
    let (range, step) = match item.find('/') {
        Some(slash) => (&item[..slash], Some((base + slash + 1, &item[slash + 1..]))),
        None => (item, None),
    };
    let step_value = match step {
        None => 1,
        Some((at, "")) => return Err(CronError::new(at - 1, 1, "missing step after `/`")),
        Some((at, text)) => match parse_cron_number(text) {
            Some(0) => return Err(CronError::new(at, text.len(), "step must be at least 1")),
            Some(n) => n,
            None => {
                return Err(CronError::new(
                    at,
                    text.len(),
                    format!("step `{text}` is not a number"),
                ))
            }
        },
    };
    let (max_lo, max_hi) = field.range();
    let (lo, hi, star) = if range == "*" {
        let (lo, hi) = field.star_range();
        (lo, hi, step_value == 1)
    } else if range.is_empty() {
        return Err(CronError::new(
            base,
            item.len(),
            format!("`{item}` has no range before the step: write `*{item}` or `A-B{item}`"),
        ));
    } else if let Some(dash) = range.find('-') {
        let (a, b) = (&range[..dash], &range[dash + 1..]);
        if a.is_empty() || b.is_empty() {
            return Err(CronError::new(
                base,
                range.len(),
                format!("range `{range}` needs a start and an end"),
            ));
        }
        let lo = parse_cron_value(a, base, field)?;
        let hi = parse_cron_value(b, base + dash + 1, field)?;
        if lo > hi {
            return Err(CronError::new(
                base,
                range.len(),
                format!(
                    "range {range} is backwards: {} {lo} comes after {hi}",
                    field.name()
                ),
            ));
        }
        (lo, hi, false)
    } else {
        let value = parse_cron_value(range, base, field)?;
        // `N/S` runs from N to the maximum, as robfig/cron (Argo, Kubernetes) reads it.
        let hi = if step.is_some() { max_hi } else { value };
        (value, hi, false)
    };
    debug_assert!(max_lo <= lo && hi <= max_hi);
    let mut set = 0u64;
    let mut v = lo;
    while v <= hi {
        set |= 1 << v;
        v = match v.checked_add(step_value) {
            Some(next) => next,
            None => break,
        };
    }
    Ok((set, star))
}

/// A plain decimal number of at most 9 digits (longer ones are out of range anyway).
fn parse_cron_number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let significant = text.trim_start_matches('0');
    if significant.len() > 9 {
        return Some(u32::MAX);
    }
    significant.parse().ok().or(Some(0))
}

/// Parses a value (number or, in the month and weekday fields, a name) and checks its range.
fn parse_cron_value(text: &str, offset: usize, field: CronField) -> Result<u32, CronError> {
    let (lo, hi) = field.range();
    if let Some(n) = parse_cron_number(text) {
        if n < lo || n > hi {
            let shown = if n == u32::MAX {
                text.to_string()
            } else {
                n.to_string()
            };
            return Err(CronError::new(
                offset,
                text.len(),
                format!("{field} {shown} is out of range {lo}-{hi}"),
            ));
        }
        return Ok(n);
    }
    let names = field.names();
    if let Some(i) = names
        .iter()
        .position(|name| name.eq_ignore_ascii_case(text))
    {
        // Months count from 1, weekdays from 0.
        return Ok(i as u32 + lo);
    }
    Err(CronError::new(
        offset,
        text.len(),
        format!(
            "`{text}` is not a valid {field} (expected {})",
            field.expected()
        ),
    ))
}

impl CronSchedule {
    /// Whether `value` is allowed in `field` (day of week: 0-6, or 7 for Sunday).
    pub fn allows(&self, field: CronField, value: u32) -> bool {
        let value = if field == CronField::DayOfWeek && value == 7 {
            0
        } else {
            value
        };
        value < 64 && self.sets[field.index()] & (1 << value) != 0
    }

    /// The allowed values of `field`, ascending (day of week: 0-6, Sunday = 0).
    pub fn values(&self, field: CronField) -> Vec<u32> {
        let set = self.sets[field.index()];
        (0..64).filter(|v| set & (1u64 << v) != 0).collect()
    }

    /// Whether the schedule fires at minute `t`. An invalid date never matches.
    pub fn matches(&self, t: NaiveMinute) -> bool {
        t.is_valid()
            && self.allows(CronField::Minute, t.minute.into())
            && self.allows(CronField::Hour, t.hour.into())
            && self.allows(CronField::Month, t.month.into())
            && self.day_matches(i64::from(t.year), t.month.into(), t.day.into())
    }

    /// The first minute strictly after `t` at which the schedule fires, in the same (UTC) civil
    /// time. `None` if `t` is not a valid date, or if the schedule never fires (`0 0 30 2 *`):
    /// the Gregorian calendar repeats every 400 years, so searching 401 years is conclusive.
    pub fn next_after(&self, t: NaiveMinute) -> Option<NaiveMinute> {
        if !t.is_valid() {
            return None;
        }
        let last_year = i64::from(t.year) + 401;
        let (mut y, mut mo, mut d, mut h, mut mi) = (
            i64::from(t.year),
            u32::from(t.month),
            u32::from(t.day),
            u32::from(t.hour),
            u32::from(t.minute) + 1,
        );
        // Each step either returns or moves strictly forward (to the next allowed minute, the
        // next hour, day or month), so the loop ends; the search is a few dozen steps a year.
        loop {
            // Carry overflowing fields upwards; each is at most one past its maximum.
            if mi > 59 {
                mi = 0;
                h += 1;
            }
            if h > 23 {
                h = 0;
                d += 1;
            }
            if d > days_in_month(y, mo) {
                d = 1;
                mo += 1;
            }
            if mo > 12 {
                mo = 1;
                y += 1;
            }
            if y > last_year {
                return None;
            }
            if !self.allows(CronField::Month, mo) {
                match next_bit(self.sets[CronField::Month.index()], mo) {
                    Some(next) if next <= 12 => mo = next,
                    _ => {
                        mo = 1;
                        y += 1;
                    }
                }
                (d, h, mi) = (1, 0, 0);
                continue;
            }
            if !self.day_matches(y, mo, d) {
                (d, h, mi) = (d + 1, 0, 0);
                continue;
            }
            match next_bit(self.sets[CronField::Hour.index()], h) {
                Some(next) if next <= 23 => {
                    if next != h {
                        (h, mi) = (next, 0);
                    }
                }
                _ => {
                    (d, h, mi) = (d + 1, 0, 0);
                    continue;
                }
            }
            match next_bit(self.sets[CronField::Minute.index()], mi) {
                Some(next) if next <= 59 => {
                    let year = i32::try_from(y).ok()?;
                    return NaiveMinute::new(year, mo as u8, d as u8, h as u8, next as u8);
                }
                _ => {
                    (h, mi) = (h + 1, 0);
                    continue;
                }
            }
        }
    }

    /// The day rule: both day fields restricted → either matches; otherwise both must match
    /// (one of them being `*` matches every day).
    fn day_matches(&self, year: i64, month: u32, day: u32) -> bool {
        let dom = self.allows(CronField::DayOfMonth, day);
        let dow = self.allows(CronField::DayOfWeek, weekday(year, month, day));
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// A canonical 5-field expression with the same meaning, in the dialect every consumer
    /// accepts (numbers only, day of week 0-6): what the manifests should carry. A full field is
    /// `*`, except a day field that was restricted, which is spelled out so that the
    /// day-of-month/day-of-week rule keeps its meaning.
    pub fn to_standard_string(&self) -> String {
        CronField::ALL
            .iter()
            .map(|&field| {
                let star = match field {
                    CronField::DayOfMonth => self.dom_star,
                    CronField::DayOfWeek => self.dow_star,
                    _ => {
                        let (lo, hi) = field.star_range();
                        self.sets[field.index()] == bits(lo, hi)
                    }
                };
                if star {
                    "*".to_string()
                } else {
                    compress(&self.values(field))
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_standard_string())
    }
}

/// Bits `lo..=hi` set.
fn bits(lo: u32, hi: u32) -> u64 {
    (lo..=hi).fold(0, |set, v| set | (1 << v))
}

/// The smallest set bit `>= from`, if any.
fn next_bit(set: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let rest = set >> from;
    (rest != 0).then(|| from + rest.trailing_zeros())
}

/// `1,2,3,5` → `1-3,5`: runs of three or more become ranges.
fn compress(values: &[u32]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < values.len() {
        let mut j = i;
        while j + 1 < values.len() && values[j + 1] == values[j] + 1 {
            j += 1;
        }
        if j >= i + 2 {
            parts.push(format!("{}-{}", values[i], values[j]));
        } else {
            parts.extend(values[i..=j].iter().map(u32::to_string));
        }
        i = j + 1;
    }
    parts.join(",")
}

/// A civil date and time to the minute, without a time zone (schedules are evaluated in UTC).
///
/// Fields compare in declaration order, so `Ord` is chronological for valid values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NaiveMinute {
    /// Proleptic Gregorian year.
    pub year: i32,
    /// Month, 1-12.
    pub month: u8,
    /// Day of the month, 1-31 (at most the month's length).
    pub day: u8,
    /// Hour, 0-23.
    pub hour: u8,
    /// Minute, 0-59.
    pub minute: u8,
}

impl NaiveMinute {
    /// The minute at the given date and time, or `None` if there is no such date or time.
    pub fn new(year: i32, month: u8, day: u8, hour: u8, minute: u8) -> Option<NaiveMinute> {
        let t = NaiveMinute {
            year,
            month,
            day,
            hour,
            minute,
        };
        t.is_valid().then_some(t)
    }

    /// Whether the fields name a real date (leap years included) and time.
    pub fn is_valid(&self) -> bool {
        (1..=12).contains(&self.month)
            && self.day >= 1
            && u32::from(self.day) <= days_in_month(i64::from(self.year), u32::from(self.month))
            && self.hour < 24
            && self.minute < 60
    }

    /// Day of the week, 0 = Sunday … 6 = Saturday.
    pub fn weekday(&self) -> u8 {
        weekday(
            i64::from(self.year),
            u32::from(self.month),
            u32::from(self.day),
        ) as u8
    }
}

impl fmt::Display for NaiveMinute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute
        )
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Day of the week (0 = Sunday) by days since 1970-01-01 (a Thursday), after H. Hinnant's
/// `days_from_civil`; exact for every year an `i32` holds.
fn weekday(year: i64, month: u32, day: u32) -> u32 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(month) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days + 4).rem_euclid(7) as u32
}

// ─────────────────────────────────────────── image references ───────────────────────────────────────

/// The longest repository name (registry and path together) the distribution spec accepts.
const IMAGE_NAME_MAX: usize = 255;
/// The longest tag.
const IMAGE_TAG_MAX: usize = 128;

/// A well-formed OCI/Docker image reference, split into its parts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// The registry host with optional port (`ghcr.io`, `localhost:5000`), when written.
    pub registry: Option<String>,
    /// The repository path (`acme/trainer`, `python`).
    pub repository: String,
    /// The tag (`3.12-slim`), when written.
    pub tag: Option<String>,
    /// The digest (`sha256:…`), when written.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Whether the reference names its registry (otherwise the container runtime's default
    /// registry, usually Docker Hub, is used).
    pub fn is_fully_qualified(&self) -> bool {
        self.registry.is_some()
    }

    /// The reference pulled from `registry` (`ghcr.io/acme`) when it names none itself:
    /// `trainer:1` → `ghcr.io/acme/trainer:1`. A fully qualified reference is returned as it is.
    pub fn qualified_with(&self, registry: &str) -> String {
        let registry = registry.trim_end_matches('/');
        if self.is_fully_qualified() || registry.is_empty() {
            self.to_string()
        } else {
            format!("{registry}/{self}")
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(registry) = &self.registry {
            write!(f, "{registry}/")?;
        }
        f.write_str(&self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Why an image reference is malformed, and where.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct ImageError {
    /// Byte offset of the offending part within the reference.
    pub offset: usize,
    /// Byte length of the offending part.
    pub len: usize,
    /// What is wrong.
    pub message: String,
}

impl ImageError {
    fn new(offset: usize, len: usize, message: impl Into<String>) -> ImageError {
        ImageError {
            offset,
            len,
            message: message.into(),
        }
    }
}

/// Checks an image reference against the distribution reference grammar:
/// `[HOST[:PORT]/]PATH[:TAG][@DIGEST]`, where the first component is a registry host when it
/// contains `.` or `:` or is `localhost`, path components are lowercase
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` separated by `/`, the tag is `[\w][\w.-]{0,127}`, and
/// the digest is `sha256:` and 64 lowercase hex digits (or `sha512:` and 128).
pub fn check_image(reference: &str) -> Result<ImageRef, ImageError> {
    if reference.is_empty() {
        return Err(ImageError::new(0, 0, "image reference is empty"));
    }
    if let Some((i, c)) = reference
        .char_indices()
        .find(|(_, c)| c.is_whitespace() || c.is_control())
    {
        return Err(ImageError::new(
            i,
            c.len_utf8(),
            "an image reference cannot contain whitespace",
        ));
    }
    let (name_and_tag, digest) = match reference.find('@') {
        Some(at) => {
            check_digest(&reference[at + 1..], at + 1)?;
            (&reference[..at], Some(reference[at + 1..].to_string()))
        }
        None => (reference, None),
    };
    // The tag is after a `:` in the last path component (a `:` before a `/` is a port).
    let last_component = name_and_tag.rfind('/').map_or(0, |slash| slash + 1);
    let (name, tag) = match name_and_tag[last_component..].find(':') {
        Some(colon) => {
            let colon = last_component + colon;
            check_tag(&name_and_tag[colon + 1..], colon)?;
            (
                &name_and_tag[..colon],
                Some(name_and_tag[colon + 1..].to_string()),
            )
        }
        None => (name_and_tag, None),
    };
    if name.is_empty() {
        return Err(ImageError::new(
            0,
            reference.len().min(1),
            "missing the repository name",
        ));
    }
    let (registry, path, path_offset) = match name.find('/') {
        Some(slash) if is_registry_host(&name[..slash]) => {
            check_registry(&name[..slash])?;
            (
                Some(name[..slash].to_string()),
                &name[slash + 1..],
                slash + 1,
            )
        }
        _ => (None, name, 0),
    };
    let mut offset = path_offset;
    for component in path.split('/') {
        check_path_component(component, offset, name.len())?;
        offset += component.len() + 1;
    }
    if name.len() > IMAGE_NAME_MAX {
        return Err(ImageError::new(
            0,
            name.len(),
            format!(
                "repository name is longer than {IMAGE_NAME_MAX} characters ({})",
                name.len()
            ),
        ));
    }
    Ok(ImageRef {
        registry,
        repository: path.to_string(),
        tag,
        digest,
    })
}

/// Docker's rule for telling a registry from the first path component.
fn is_registry_host(component: &str) -> bool {
    component.contains('.') || component.contains(':') || component == "localhost"
}

/// `host[:port]`: dot-separated `[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?` components or a
/// bracketed IPv6 address, then an optional numeric port.
fn check_registry(registry: &str) -> Result<(), ImageError> {
    let (host, port) = if registry.starts_with('[') {
        let Some(close) = registry.find(']') else {
            return Err(ImageError::new(
                0,
                registry.len(),
                "unclosed `[` in the registry address",
            ));
        };
        let inside = &registry[1..close];
        if inside.is_empty()
            || !inside
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(ImageError::new(
                0,
                close + 1,
                "invalid IPv6 address in the registry",
            ));
        }
        match &registry[close + 1..] {
            "" => (None, None),
            rest => match rest.strip_prefix(':') {
                Some(port) => (None, Some((close + 2, port))),
                None => {
                    return Err(ImageError::new(
                        close + 1,
                        rest.len(),
                        "expected `:PORT` after the IPv6 address",
                    ))
                }
            },
        }
    } else {
        match registry.find(':') {
            Some(colon) => (
                Some(&registry[..colon]),
                Some((colon + 1, &registry[colon + 1..])),
            ),
            None => (Some(registry), None),
        }
    };
    if let Some(host) = host {
        let mut offset = 0usize;
        for part in host.split('.') {
            if part.is_empty() {
                let at = offset
                    .saturating_sub(1)
                    .min(registry.len().saturating_sub(1));
                return Err(ImageError::new(
                    at,
                    1,
                    "empty component in the registry host name",
                ));
            }
            if let Some((i, c)) = part
                .char_indices()
                .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '-'))
            {
                return Err(ImageError::new(
                    offset + i,
                    c.len_utf8(),
                    format!("`{c}` is not allowed in a registry host name"),
                ));
            }
            if part.starts_with('-') || part.ends_with('-') {
                return Err(ImageError::new(
                    offset,
                    part.len(),
                    format!("registry host name component `{part}` must start and end with a letter or digit"),
                ));
            }
            offset += part.len() + 1;
        }
    }
    if let Some((at, port)) = port {
        if port.is_empty() {
            return Err(ImageError::new(
                at - 1,
                1,
                "missing the registry port after `:`",
            ));
        }
        if !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ImageError::new(
                at.saturating_sub(1),
                port.len() + 1,
                format!("registry port `{port}` is not a number"),
            ));
        }
    }
    Ok(())
}

/// One path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`. `offset` is its position in the
/// reference; `name_end` is where the name ends (to point at a trailing `/`).
fn check_path_component(component: &str, offset: usize, name_end: usize) -> Result<(), ImageError> {
    if component.is_empty() {
        // Point at the slash that has nothing after it (or, for a leading slash, at it).
        let slash = if offset < name_end {
            offset
        } else {
            offset - 1
        };
        return Err(ImageError::new(
            slash,
            1,
            "empty path component in the repository name",
        ));
    }
    if let Some((i, c)) = component
        .char_indices()
        .find(|&(_, c)| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '-'))
    {
        let message = if c.is_ascii_uppercase() {
            format!("repository names must be lowercase: found `{c}`")
        } else {
            format!("`{c}` is not allowed in a repository name")
        };
        return Err(ImageError::new(offset + i, c.len_utf8(), message));
    }
    let bytes = component.as_bytes();
    let is_sep = |b: u8| matches!(b, b'.' | b'_' | b'-');
    if is_sep(bytes[0]) {
        return Err(ImageError::new(
            offset,
            1,
            format!("path component `{component}` must start with a lowercase letter or digit"),
        ));
    }
    if is_sep(bytes[bytes.len() - 1]) {
        return Err(ImageError::new(
            offset + component.len() - 1,
            1,
            format!("path component `{component}` must end with a lowercase letter or digit"),
        ));
    }
    // Every run of separators must be `.`, `_`, `__` or any number of `-`.
    let mut i = 0;
    while i < bytes.len() {
        if !is_sep(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_sep(bytes[i]) {
            i += 1;
        }
        let run = &component[start..i];
        let valid = run == "." || run == "_" || run == "__" || run.bytes().all(|b| b == b'-');
        if !valid {
            return Err(ImageError::new(
                offset + start,
                run.len(),
                format!(
                    "invalid separator `{run}` in a repository name: use `.`, `_`, `__` or dashes"
                ),
            ));
        }
    }
    Ok(())
}

/// `[\w][\w.-]{0,127}`; `colon` is the offset of the `:` before the tag.
fn check_tag(tag: &str, colon: usize) -> Result<(), ImageError> {
    let start = colon + 1;
    if tag.is_empty() {
        return Err(ImageError::new(colon, 1, "empty tag after `:`"));
    }
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    if let Some((i, c)) = tag
        .char_indices()
        .find(|&(_, c)| !(word(c) || c == '.' || c == '-'))
    {
        return Err(ImageError::new(
            start + i,
            c.len_utf8(),
            format!("`{c}` is not allowed in a tag"),
        ));
    }
    if tag.starts_with(['.', '-']) {
        return Err(ImageError::new(
            start,
            1,
            "a tag must start with a letter, digit or `_`",
        ));
    }
    if tag.len() > IMAGE_TAG_MAX {
        return Err(ImageError::new(
            start,
            tag.len(),
            format!(
                "tag is longer than {IMAGE_TAG_MAX} characters ({})",
                tag.len()
            ),
        ));
    }
    Ok(())
}

/// `sha256:<64 hex>` or `sha512:<128 hex>`, lowercase; `start` is the digest's offset.
fn check_digest(digest: &str, start: usize) -> Result<(), ImageError> {
    let Some(colon) = digest.find(':') else {
        return Err(ImageError::new(
            start.saturating_sub(1),
            digest.len() + 1,
            "a digest must look like `sha256:` followed by 64 hex digits",
        ));
    };
    let (algorithm, hex) = (&digest[..colon], &digest[colon + 1..]);
    let expected = match algorithm {
        "sha256" => 64,
        "sha512" => 128,
        _ => {
            return Err(ImageError::new(
                start,
                algorithm.len(),
                format!("unsupported digest algorithm `{algorithm}`: use sha256"),
            ))
        }
    };
    let hex_start = start + colon + 1;
    if let Some((i, c)) = hex
        .char_indices()
        .find(|&(_, c)| !matches!(c, '0'..='9' | 'a'..='f'))
    {
        return Err(ImageError::new(
            hex_start + i,
            c.len_utf8(),
            format!("`{c}` is not a lowercase hex digit in the digest"),
        ));
    }
    if hex.len() != expected {
        return Err(ImageError::new(
            hex_start.min(start + digest.len()),
            hex.len(),
            format!(
                "a {algorithm} digest has {expected} hex digits, found {}",
                hex.len()
            ),
        ));
    }
    Ok(())
}

// ──────────────────────────────────────────── quantities ────────────────────────────────────────────

/// What a quantity measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuantityKind {
    /// A `duration`: `250ms`, `10s`, `5m`, `2h`, `1d`.
    Duration,
    /// A `cpu` quantity: cores (`2`, `0.5`) or millicores (`500m`).
    Cpu,
    /// A `memory` quantity: bytes, `Ki`…`Ei` (powers of 1024) or `k`…`E` (powers of 1000).
    Memory,
}

impl QuantityKind {
    /// The unit suffixes the kind accepts (`""`: no suffix).
    pub fn units(self) -> &'static [&'static str] {
        match self {
            QuantityKind::Duration => &DURATION_UNIT_NAMES,
            QuantityKind::Cpu => &CPU_UNIT_NAMES,
            QuantityKind::Memory => &MEMORY_UNIT_NAMES,
        }
    }

    fn name(self) -> &'static str {
        match self {
            QuantityKind::Duration => "duration",
            QuantityKind::Cpu => "cpu quantity",
            QuantityKind::Memory => "memory quantity",
        }
    }

    /// The accepted suffixes, as a help phrase.
    fn accepted(self) -> &'static str {
        match self {
            QuantityKind::Duration => "durations use ms, s, m, h or d",
            QuantityKind::Cpu => "cpu is written in cores (`2`, `0.5`) or millicores (`500m`)",
            QuantityKind::Memory => {
                "memory is written in bytes (no unit), Ki, Mi, Gi, Ti, Pi, Ei (powers of 1024) \
                 or k, M, G, T, P, E (powers of 1000)"
            }
        }
    }

    fn smallest(self) -> &'static str {
        match self {
            QuantityKind::Duration => "1ms",
            QuantityKind::Cpu => "1m (a thousandth of a core)",
            QuantityKind::Memory => "1 byte",
        }
    }
}

impl fmt::Display for QuantityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The suffixes of [`DURATION_UNITS`], [`parse_cpu`] and [`MEMORY_UNITS`], for messages.
static DURATION_UNIT_NAMES: [&str; 5] = ["ms", "s", "m", "h", "d"];
static CPU_UNIT_NAMES: [&str; 2] = ["", "m"];
static MEMORY_UNIT_NAMES: [&str; 13] = [
    "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "k", "M", "G", "T", "P", "E", "",
];

/// Duration units and their length in milliseconds.
const DURATION_UNITS: [(&str, u128); 5] = [
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];

/// Memory units and their size in bytes; the binary ones first (they are preferred when
/// formatting and when suggesting).
const MEMORY_UNITS: [(&str, u128); 13] = [
    ("Ki", 1 << 10),
    ("Mi", 1 << 20),
    ("Gi", 1 << 30),
    ("Ti", 1 << 40),
    ("Pi", 1 << 50),
    ("Ei", 1 << 60),
    ("k", 1_000),
    ("M", 1_000_000),
    ("G", 1_000_000_000),
    ("T", 1_000_000_000_000),
    ("P", 1_000_000_000_000_000),
    ("E", 1_000_000_000_000_000_000),
    ("", 1),
];

/// Why a number with a unit is not a valid quantity of the expected kind.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum UnitError {
    /// The suffix is not a unit of this kind.
    #[error("{}", unknown_unit_message(unit, *kind, *suggestion))]
    UnknownUnit {
        /// The suffix as written.
        unit: String,
        /// What was expected.
        kind: QuantityKind,
        /// The accepted unit the user probably meant (`GB` → `G`, `min` → `m`).
        suggestion: Option<&'static str>,
    },
    /// A duration written without a unit.
    #[error("a duration needs a unit: {}", QuantityKind::Duration.accepted())]
    MissingUnit,
    /// The digits are not a decimal number.
    #[error("`{digits}` is not a number")]
    InvalidNumber {
        /// The digits as written.
        digits: String,
    },
    /// The value is zero.
    #[error("a {kind} must be positive")]
    NotPositive {
        /// What was expected.
        kind: QuantityKind,
    },
    /// The value does not fit the 64 bits the manifests and the runtime use.
    #[error("{kind} `{text}` is too large")]
    TooLarge {
        /// What was expected.
        kind: QuantityKind,
        /// The literal as written.
        text: String,
    },
    /// The value is finer than the kind's precision (`0.5m` cpu, `1.5` bytes, `0.1ms`).
    #[error("{kind} `{text}` is finer than {}", kind.smallest())]
    TooPrecise {
        /// What was expected.
        kind: QuantityKind,
        /// The literal as written.
        text: String,
    },
}

impl UnitError {
    /// Whether the error is about the unit suffix (point at the suffix) rather than the number
    /// (point at the whole literal).
    pub fn is_about_unit(&self) -> bool {
        matches!(self, UnitError::UnknownUnit { .. } | UnitError::MissingUnit)
    }
}

fn unknown_unit_message(unit: &str, kind: QuantityKind, suggestion: Option<&str>) -> String {
    // Say what the unit is, when it belongs to another kind: the user mixed two up.
    let other = [
        QuantityKind::Duration,
        QuantityKind::Cpu,
        QuantityKind::Memory,
    ]
    .into_iter()
    .find(|&k| k != kind && !unit.is_empty() && k.units().contains(&unit));
    let mut message = match other {
        Some(other) => format!(
            "`{unit}` is a {other} unit, not a {kind} unit: {}",
            kind.accepted()
        ),
        None => format!("`{unit}` is not a {kind} unit: {}", kind.accepted()),
    };
    if let Some(suggestion) = suggestion {
        message.push_str(&format!("; did you mean `{suggestion}`?"));
    }
    message
}

/// The accepted unit a wrong suffix most likely meant.
fn suggest_unit(unit: &str, kind: QuantityKind) -> Option<&'static str> {
    let lower = unit.to_ascii_lowercase();
    match kind {
        QuantityKind::Duration => match lower.as_str() {
            "msec" | "msecs" | "millis" => Some("ms"),
            "sec" | "secs" | "second" | "seconds" => Some("s"),
            "min" | "mins" | "minute" | "minutes" => Some("m"),
            "hr" | "hrs" | "hour" | "hours" => Some("h"),
            "day" | "days" => Some("d"),
            _ => DURATION_UNITS
                .iter()
                .map(|(u, _)| *u)
                .find(|u| u.eq_ignore_ascii_case(unit)),
        },
        QuantityKind::Cpu => {
            (lower == "m" || lower == "mcpu" || lower == "millicores").then_some("m")
        }
        QuantityKind::Memory => {
            // `GiB` → `Gi`, `GB` → `G`, `gi` → `Gi`, `K` → `k`.
            let stem = if unit.len() > 1 && unit.ends_with(['B', 'b']) {
                &unit[..unit.len() - 1]
            } else {
                unit
            };
            MEMORY_UNITS
                .iter()
                .map(|(u, _)| *u)
                .find(|u| !u.is_empty() && u.eq_ignore_ascii_case(stem))
        }
    }
}

// ───────────────────────────────────────── URLs ─────────────────────────────────────────

/// Checks a tracking server's base URL (`app { tracking = mlflow("…") }`): `http://` or
/// `https://`, a host, an optional port in 1..65535, an optional path; no spaces, query or
/// fragment (the runtime appends MLflow's REST paths to it). The error says what is wrong.
pub fn check_http_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| "it must start with `http://` or `https://`".to_string())?;
    if let Some(c) = url.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("it contains {c:?}"));
    }
    if url.contains(['?', '#']) {
        return Err("it has a query or fragment; write the base URL only".into());
    }
    let authority = rest.split('/').next().unwrap_or("");
    if authority.contains('@') {
        return Err("credentials do not belong in the URL; set MLFLOW_TRACKING_TOKEN (or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD) for the runtime".into());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => return Err("an IPv6 host needs its closing `]`".into()),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("it names no host".into());
    }
    if let Some(port) = port {
        match port.parse::<u32>() {
            Ok(1..=65535) => {}
            _ => return Err(format!("`{port}` is not a port (1 to 65535)")),
        }
    }
    Ok(())
}

/// Parses a duration literal, split into its number (`"250"`, `"1.5"`) and unit (`"ms"`, `"s"`,
/// `"m"`, `"h"`, `"d"`). Durations are whole milliseconds and positive.
pub fn parse_duration(digits: &str, unit: &str) -> Result<Duration, UnitError> {
    if unit.is_empty() {
        return Err(UnitError::MissingUnit);
    }
    let factor = unit_factor(&DURATION_UNITS, unit, QuantityKind::Duration)?;
    let millis = scale(digits, unit, factor, QuantityKind::Duration)?;
    Ok(Duration::from_millis(millis))
}

/// Parses a cpu quantity into millicores: cores without a unit (`"2"`, `"0.5"`) or millicores
/// with unit `"m"` (`"500"`). Positive, and at least 1m precise.
pub fn parse_cpu(digits: &str, unit: &str) -> Result<u64, UnitError> {
    let factor = unit_factor(&[("", 1_000), ("m", 1)], unit, QuantityKind::Cpu)?;
    scale(digits, unit, factor, QuantityKind::Cpu)
}

/// Parses a memory quantity into bytes: no unit (bytes), `Ki Mi Gi Ti Pi Ei` (powers of 1024)
/// or `k M G T P E` (powers of 1000). Positive, whole bytes (`0.5Gi` is fine, `1.5` is not).
pub fn parse_memory(digits: &str, unit: &str) -> Result<u64, UnitError> {
    let factor = unit_factor(&MEMORY_UNITS, unit, QuantityKind::Memory)?;
    scale(digits, unit, factor, QuantityKind::Memory)
}

fn unit_factor(units: &[(&str, u128)], unit: &str, kind: QuantityKind) -> Result<u128, UnitError> {
    units
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|&(_, factor)| factor)
        .ok_or_else(|| UnitError::UnknownUnit {
            unit: unit.to_string(),
            kind,
            suggestion: suggest_unit(unit, kind),
        })
}

/// `digits × factor` as an exact positive integer of base units (ms, millicores, bytes).
fn scale(digits: &str, unit: &str, factor: u128, kind: QuantityKind) -> Result<u64, UnitError> {
    let text = || format!("{digits}{unit}");
    let (mantissa, exp10) = parse_decimal(digits).ok_or_else(|| UnitError::InvalidNumber {
        digits: digits.to_string(),
    })?;
    if mantissa == 0 {
        return Err(UnitError::NotPositive { kind });
    }
    let too_large = || UnitError::TooLarge { kind, text: text() };
    let mut value = mantissa.checked_mul(factor).ok_or_else(too_large)?;
    if exp10 >= 0 {
        let power = u32::try_from(exp10)
            .ok()
            .and_then(|e| 10u128.checked_pow(e))
            .ok_or_else(too_large)?;
        value = value.checked_mul(power).ok_or_else(too_large)?;
    } else {
        // A divisor beyond u128 is larger than any value: then the value is below one unit.
        let divisor = u32::try_from(-exp10)
            .ok()
            .and_then(|e| 10u128.checked_pow(e));
        match divisor {
            Some(divisor) if value % divisor == 0 => value /= divisor,
            _ => return Err(UnitError::TooPrecise { kind, text: text() }),
        }
    }
    u64::try_from(value).map_err(|_| too_large())
}

/// `[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?` as `mantissa × 10^exp10`, exactly; `None` when the
/// text is not such a number or its digits overflow (a number no quantity could hold).
fn parse_decimal(text: &str) -> Option<(u128, i64)> {
    let (number, exponent) = match text.find(['e', 'E']) {
        Some(e) => (&text[..e], Some(&text[e + 1..])),
        None => (text, None),
    };
    let (whole, fraction) = match number.find('.') {
        Some(dot) => (&number[..dot], Some(&number[dot + 1..])),
        None => (number, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || fraction.is_some_and(|f| !all_digits(f)) {
        return None;
    }
    // Trailing zeros of the fraction carry no value; dropping them keeps `1.000…0` in range.
    let fraction = fraction.unwrap_or("").trim_end_matches('0');
    let mut mantissa: u128 = 0;
    for b in whole.bytes().chain(fraction.bytes()) {
        mantissa = mantissa
            .checked_mul(10)?
            .checked_add(u128::from(b - b'0'))?;
    }
    let mut exp10 = -(fraction.len() as i64);
    if let Some(exponent) = exponent {
        let (negative, magnitude) = match exponent.strip_prefix(['+', '-']) {
            Some(rest) => (exponent.starts_with('-'), rest),
            None => (false, exponent),
        };
        if !all_digits(magnitude) {
            return None;
        }
        // Anything beyond 4 digits is out of every range; clamp so the arithmetic stays small.
        let magnitude: i64 = magnitude
            .trim_start_matches('0')
            .parse()
            .unwrap_or(0)
            .min(10_000);
        exp10 += if negative { -magnitude } else { magnitude };
    }
    Some((mantissa, exp10))
}

/// The canonical Kubernetes spelling of a cpu quantity: whole cores as a plain number (`2`),
/// anything else in millicores (`500m`, `1500m`).
// `is_multiple_of` needs Rust 1.87; the workspace's rust-version is 1.85.
#[allow(clippy::manual_is_multiple_of)]
pub fn format_cpu(millicores: u64) -> String {
    if millicores % 1000 == 0 {
        (millicores / 1000).to_string()
    } else {
        format!("{millicores}m")
    }
}

/// The canonical Kubernetes spelling of a memory quantity: the exact form with the fewest
/// digits, binary units winning ties (`4Gi`, `512Mi`, `2G`, `1500`).
pub fn format_memory(bytes: u64) -> String {
    if bytes == 0 {
        return "0".to_string();
    }
    let bytes = u128::from(bytes);
    let mut best = bytes.to_string();
    // MEMORY_UNITS lists binary units first, so on equal length a binary form is kept.
    for &(unit, factor) in MEMORY_UNITS.iter().filter(|(u, _)| !u.is_empty()) {
        if bytes % factor == 0 {
            let candidate = format!("{}{unit}", bytes / factor);
            let digits = |s: &str| s.bytes().filter(u8::is_ascii_digit).count();
            if digits(&candidate) < digits(&best) {
                best = candidate;
            }
        }
    }
    best
}

/// The shortest exact spelling of a duration in sflow units (`1500ms`, `30m`, `2h`, `1d`);
/// sub-millisecond parts are dropped.
// `is_multiple_of` needs Rust 1.87; the workspace's rust-version is 1.85.
#[allow(clippy::manual_is_multiple_of)]
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis == 0 {
        return "0s".to_string();
    }
    let (unit, factor) = DURATION_UNITS
        .iter()
        .rev()
        .find(|(_, factor)| millis % factor == 0)
        .copied()
        .unwrap_or(("ms", 1));
    format!("{}{unit}", millis / factor)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // ── names ──

    #[test]
    fn kube_name_lowers_and_dashes_keeping_offsets() {
        assert_eq!(kube_name("Fit_Model"), "fit-model");
        assert_eq!(kube_name("a1_b2"), "a1-b2");
        assert_eq!(kube_name("é_x"), "é-x");
        assert_eq!(kube_name("é_x").len(), "é_x".len());
        assert_eq!(kube_name("Fit"), kube_name("fit"));
    }

    #[test]
    fn dns_labels() {
        let good = [
            "a",
            "mnist",
            "fit-model",
            "0",
            "a1",
            "1a",
            "a--b",
            &"a".repeat(63),
        ];
        for name in good {
            assert_eq!(check_dns_label(name), Ok(()), "{name}");
        }
        let long = "a".repeat(70);
        let bad: &[(&str, usize, usize, &str)] = &[
            ("", 0, 0, "is empty"),
            ("-a", 0, 1, "must start with a letter or digit"),
            ("a-", 1, 1, "must end with a letter or digit"),
            ("a.b", 1, 1, "contains `.`"),
            ("fit_model", 3, 1, "contains `_`"),
            ("Fit", 0, 1, "contains uppercase `F`"),
            ("a b", 1, 1, "contains a space"),
            ("aé", 1, 2, "contains `é`"),
            ("a\tb", 1, 1, "contains '\\t'"),
            (&long, 63, 7, "longer than 63 characters (70)"),
        ];
        for &(name, offset, len, reason) in bad {
            assert_eq!(
                check_dns_label(name),
                Err(NameError::new(offset, len, reason)),
                "{name:?}"
            );
        }
    }

    #[test]
    fn dns1035_labels_start_with_a_letter() {
        assert_eq!(check_dns1035_label("predictor"), Ok(()));
        assert_eq!(check_dns1035_label("p-1"), Ok(()));
        assert_eq!(
            check_dns1035_label("1p"),
            Err(NameError::new(0, 1, "must start with a letter"))
        );
        assert_eq!(
            check_dns1035_label("-p"),
            Err(NameError::new(0, 1, "must start with a letter"))
        );
        assert_eq!(
            check_dns1035_label("p-"),
            Err(NameError::new(1, 1, "must end with a letter or digit"))
        );
        assert_eq!(
            check_dns1035_label(""),
            Err(NameError::new(0, 0, "is empty"))
        );
    }

    #[test]
    fn dns_subdomains() {
        for name in [
            "a",
            "a.b",
            "mnist-plan.v1",
            "0.0.0",
            &format!("{}.{}", "a".repeat(63), "b".repeat(63)),
        ] {
            assert_eq!(check_dns_subdomain(name), Ok(()), "{name}");
        }
        let long_label = format!("x.{}", "a".repeat(64));
        let long_name = vec!["a".repeat(50); 6].join(".");
        let bad: &[(&str, usize, usize, &str)] = &[
            ("", 0, 0, "is empty"),
            (".a", 0, 1, "must start with a letter or digit"),
            ("a.", 1, 1, "must end with a letter or digit"),
            ("a..b", 1, 2, "contains `..`"),
            ("a.-b", 2, 1, "must start with a letter or digit"),
            ("a.b-.c", 3, 1, "must end with a letter or digit"),
            ("a.B", 2, 1, "contains uppercase `B`"),
            ("a_b.c", 1, 1, "contains `_`"),
            (&long_label, 65, 1, "longer than 63 characters (64)"),
            (&long_name, 253, 52, "longer than 253 characters (305)"),
        ];
        for &(name, offset, len, reason) in bad {
            assert_eq!(
                check_dns_subdomain(name),
                Err(NameError::new(offset, len, reason)),
                "{name:?}"
            );
        }
    }

    // ── cron ──

    fn t(year: i32, month: u8, day: u8, hour: u8, minute: u8) -> NaiveMinute {
        NaiveMinute::new(year, month, day, hour, minute).unwrap()
    }

    #[test]
    fn cron_accepts_the_standard_forms() {
        let good = [
            "0 2 * * *",
            "*/5 * * * *",
            "0 0 1,15 * *",
            "0 9-17 * * MON-FRI",
            "0 9-17/2 * * 1-5",
            "30 4 1 jan *",
            "0 0 * DEC sun",
            "0 0 * * 7",
            "0 0 * * 0-7",
            "5/15 * * * *",
            "59 23 31 12 6",
            "0 0 29 2 *",
            "  0   2 * * *  ",
            "0\t2\t*\t*\t*",
            "00 02 * * *",
            "@daily",
            "@HOURLY",
            "@yearly",
            "@annually",
            "@monthly",
            "@weekly",
            "@midnight",
        ];
        for expr in good {
            assert!(check_cron(expr).is_ok(), "{expr}: {:?}", check_cron(expr));
        }
    }

    #[test]
    fn cron_errors_point_at_the_bad_part() {
        let bad: &[(&str, usize, usize, &str)] = &[
            ("0 24 * * *", 2, 2, "hour 24 is out of range 0-23"),
            ("60 * * * *", 0, 2, "minute 60 is out of range 0-59"),
            ("0 0 0 * *", 4, 1, "day of month 0 is out of range 1-31"),
            ("0 0 32 * *", 4, 2, "day of month 32 is out of range 1-31"),
            ("0 0 * 13 *", 6, 2, "month 13 is out of range 1-12"),
            ("0 0 * * 8", 8, 1, "day of week 8 is out of range 0-7"),
            ("0 0 * * 99999999999", 8, 11, "day of week 99999999999 is out of range 0-7"),
            ("0 2 * * * *", 10, 1, "expected 5 fields (minute hour day month weekday), found 6"),
            ("0 0 2 * * * 2024", 10, 6, "expected 5 fields (minute hour day month weekday), found 7"),
            ("0 2 * *", 0, 7, "expected 5 fields (minute hour day month weekday), found 4"),
            (" 0 2 * * ", 1, 7, "expected 5 fields (minute hour day month weekday), found 4"),
            ("", 0, 0, "expected 5 fields (minute hour day month weekday), found 0"),
            ("   ", 0, 3, "expected 5 fields (minute hour day month weekday), found 0"),
            ("x * * * *", 0, 1, "`x` is not a valid minute (expected a number 0-59)"),
            ("0 0 * foo *", 6, 3, "`foo` is not a valid month (expected 1-12 or JAN-DEC)"),
            ("0 0 * * MONDAY", 8, 6, "`MONDAY` is not a valid day of week (expected 0-7 or SUN-SAT)"),
            ("0 0 MON * *", 4, 3, "`MON` is not a valid day of month (expected a number 1-31)"),
            ("0 0 * * JAN", 8, 3, "`JAN` is not a valid day of week (expected 0-7 or SUN-SAT)"),
            ("5-2 * * * *", 0, 3, "range 5-2 is backwards: minute 5 comes after 2"),
            ("0 0 * * FRI-SUN", 8, 7, "range FRI-SUN is backwards: day of week 5 comes after 0"),
            ("*/0 * * * *", 2, 1, "step must be at least 1"),
            ("*/ * * * *", 1, 1, "missing step after `/`"),
            ("*/x * * * *", 2, 1, "step `x` is not a number"),
            ("1/2/3 * * * *", 2, 3, "step `2/3` is not a number"),
            ("/5 * * * *", 0, 2, "`/5` has no range before the step: write `*/5` or `A-B/5`"),
            ("1- * * * *", 0, 2, "range `1-` needs a start and an end"),
            ("-1 * * * *", 0, 2, "range `-1` needs a start and an end"),
            ("1-2-3 * * * *", 2, 3, "`2-3` is not a valid minute (expected a number 0-59)"),
            ("*-5 * * * *", 0, 1, "`*` is not a valid minute (expected a number 0-59)"),
            ("0 1,,2 * * *", 4, 1, "empty item in the hour list"),
            ("0 1, * * *", 3, 1, "empty item in the hour list"),
            ("0 ,1 * * *", 2, 1, "empty item in the hour list"),
            ("0 0 1,40 * *", 6, 2, "day of month 40 is out of range 1-31"),
            ("@daly", 0, 5, "unknown macro `@daly`: expected one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly"),
            ("@reboot", 0, 7, "`@reboot` is not supported: a schedule needs times of day"),
            ("@daily 5 *", 7, 3, "the macro `@daily` stands alone: remove what follows it"),
            ("0 2 * * é", 8, 2, "`é` is not a valid day of week (expected 0-7 or SUN-SAT)"),
        ];
        for &(expr, offset, len, message) in bad {
            assert_eq!(
                check_cron(expr),
                Err(CronError::new(offset, len, message)),
                "{expr:?}"
            );
        }
    }

    #[test]
    fn cron_sets() {
        let s = check_cron("0 9-17/2 * * MON-FRI").unwrap();
        assert_eq!(s.values(CronField::Minute), vec![0]);
        assert_eq!(s.values(CronField::Hour), vec![9, 11, 13, 15, 17]);
        assert_eq!(s.values(CronField::DayOfWeek), vec![1, 2, 3, 4, 5]);
        assert_eq!(
            check_cron("5/20 * * * *")
                .unwrap()
                .values(CronField::Minute),
            vec![5, 25, 45]
        );
        assert_eq!(
            check_cron("* * * * 7")
                .unwrap()
                .values(CronField::DayOfWeek),
            vec![0]
        );
        assert_eq!(
            check_cron("* * * * */2")
                .unwrap()
                .values(CronField::DayOfWeek),
            vec![0, 2, 4, 6]
        );
        assert!(check_cron("* * * * 7")
            .unwrap()
            .allows(CronField::DayOfWeek, 7));
        assert_eq!(
            check_cron("@weekly").unwrap(),
            check_cron("0 0 * * 0").unwrap()
        );
        assert_eq!(
            check_cron("0 0 * * sun,Sat")
                .unwrap()
                .values(CronField::DayOfWeek),
            vec![0, 6]
        );
        assert_eq!(
            check_cron("0 0 1 jun-AUG *")
                .unwrap()
                .values(CronField::Month),
            vec![6, 7, 8]
        );
    }

    #[test]
    fn cron_standard_string() {
        let cases = [
            ("0 2 * * *", "0 2 * * *"),
            ("*/15 * * * *", "0,15,30,45 * * * *"),
            ("0 9-17 * * MON-FRI", "0 9-17 * * 1-5"),
            ("0 0 * * 7", "0 0 * * 0"),
            ("0 0 * * 0-7", "0 0 * * 0-6"),
            ("0 0 1-31 * 1", "0 0 1-31 * 1"),
            ("* * * * *", "* * * * *"),
            ("0 0 1,2,4 * *", "0 0 1,2,4 * *"),
            ("@hourly", "0 * * * *"),
        ];
        for (expr, standard) in cases {
            let schedule = check_cron(expr).unwrap();
            assert_eq!(schedule.to_standard_string(), standard, "{expr}");
            // Re-parsing the standard form gives the same schedule.
            assert_eq!(check_cron(standard).unwrap(), schedule, "{expr}");
        }
    }

    #[test]
    fn naive_minute() {
        assert!(NaiveMinute::new(2024, 2, 29, 0, 0).is_some());
        assert!(NaiveMinute::new(2023, 2, 29, 0, 0).is_none());
        assert!(NaiveMinute::new(1900, 2, 29, 0, 0).is_none());
        assert!(NaiveMinute::new(2000, 2, 29, 0, 0).is_some());
        assert!(NaiveMinute::new(2024, 4, 31, 0, 0).is_none());
        assert!(NaiveMinute::new(2024, 1, 1, 24, 0).is_none());
        assert!(NaiveMinute::new(2024, 13, 1, 0, 0).is_none());
        assert!(NaiveMinute::new(2024, 1, 0, 0, 0).is_none());
        assert_eq!(t(1970, 1, 1, 0, 0).weekday(), 4);
        assert_eq!(t(2024, 3, 1, 0, 0).weekday(), 5);
        assert_eq!(t(2000, 1, 1, 0, 0).weekday(), 6);
        assert_eq!(t(1600, 3, 1, 0, 0).weekday(), 3);
        assert_eq!(t(-1, 12, 31, 0, 0).weekday(), 5);
        assert_eq!(t(2024, 3, 1, 2, 5).to_string(), "2024-03-01 02:05");
        assert!(t(2024, 1, 1, 0, 0) < t(2024, 1, 1, 0, 1));
    }

    #[test]
    fn next_after_simple_schedules() {
        let cases = [
            ("0 2 * * *", t(2024, 3, 1, 1, 59), t(2024, 3, 1, 2, 0)),
            ("0 2 * * *", t(2024, 3, 1, 2, 0), t(2024, 3, 2, 2, 0)),
            ("*/15 * * * *", t(2024, 3, 1, 2, 7), t(2024, 3, 1, 2, 15)),
            ("*/15 * * * *", t(2024, 3, 1, 23, 50), t(2024, 3, 2, 0, 0)),
            ("* * * * *", t(2024, 12, 31, 23, 59), t(2025, 1, 1, 0, 0)),
            ("@yearly", t(2024, 6, 1, 0, 0), t(2025, 1, 1, 0, 0)),
            ("@monthly", t(2024, 1, 31, 12, 0), t(2024, 2, 1, 0, 0)),
            ("@hourly", t(2024, 1, 31, 23, 0), t(2024, 2, 1, 0, 0)),
            // 2024-03-01 is a Friday; the next Sunday is the 3rd.
            ("@weekly", t(2024, 3, 1, 0, 0), t(2024, 3, 3, 0, 0)),
            ("30 9 * * MON", t(2024, 3, 1, 0, 0), t(2024, 3, 4, 9, 30)),
            (
                "0 9-17 * * MON-FRI",
                t(2024, 3, 1, 17, 0),
                t(2024, 3, 4, 9, 0),
            ),
            // Day 31 skips the short months.
            ("0 0 31 * *", t(2024, 4, 1, 0, 0), t(2024, 5, 31, 0, 0)),
            // Feb 29 waits for the next leap year; 2100 is not one.
            ("0 0 29 2 *", t(2024, 3, 1, 0, 0), t(2028, 2, 29, 0, 0)),
            ("0 0 29 2 *", t(2096, 3, 1, 0, 0), t(2104, 2, 29, 0, 0)),
            ("0 12 * JUN *", t(2024, 7, 1, 0, 0), t(2025, 6, 1, 12, 0)),
            ("15 10 * * *", t(2024, 3, 1, 10, 15), t(2024, 3, 2, 10, 15)),
            ("15 10 * * *", t(2024, 3, 1, 10, 14), t(2024, 3, 1, 10, 15)),
            ("0 0 * * 7", t(2024, 3, 1, 0, 0), t(2024, 3, 3, 0, 0)),
        ];
        for (expr, after, expected) in cases {
            let schedule = check_cron(expr).unwrap();
            assert_eq!(
                schedule.next_after(after),
                Some(expected),
                "{expr} after {after}"
            );
            assert!(schedule.matches(expected), "{expr}");
        }
    }

    #[test]
    fn next_after_day_of_month_or_day_of_week() {
        // Both restricted: the 13th OR a Friday. From 2024-03-01 (Fri) the next is Fri the 8th,
        // then the 13th (a Wednesday), then Fri the 15th.
        let s = check_cron("0 0 13 * FRI").unwrap();
        let first = s.next_after(t(2024, 3, 1, 0, 0)).unwrap();
        assert_eq!(first, t(2024, 3, 8, 0, 0));
        let second = s.next_after(first).unwrap();
        assert_eq!(second, t(2024, 3, 13, 0, 0));
        assert_eq!(s.next_after(second), Some(t(2024, 3, 15, 0, 0)));
        // Day of month `*`: only the weekday counts.
        let s = check_cron("0 0 * * FRI").unwrap();
        assert_eq!(s.next_after(t(2024, 3, 1, 0, 0)), Some(t(2024, 3, 8, 0, 0)));
        // Day of week `*`: only the day of month counts.
        let s = check_cron("0 0 13 * *").unwrap();
        assert_eq!(
            s.next_after(t(2024, 3, 1, 0, 0)),
            Some(t(2024, 3, 13, 0, 0))
        );
        // `1-31` is restricted (robfig/cron and Vixie agree), so with a weekday it is an OR:
        // every day matches.
        let s = check_cron("0 0 1-31 * MON").unwrap();
        assert_eq!(s.next_after(t(2024, 3, 1, 0, 0)), Some(t(2024, 3, 2, 0, 0)));
        // `*/1` is unrestricted, like `*`.
        let s = check_cron("0 0 */1 * MON").unwrap();
        assert_eq!(s.next_after(t(2024, 3, 1, 0, 0)), Some(t(2024, 3, 4, 0, 0)));
        // `*/2` is restricted in robfig/cron: odd days OR Mondays.
        let s = check_cron("0 0 */2 * MON").unwrap();
        assert_eq!(s.next_after(t(2024, 3, 1, 0, 0)), Some(t(2024, 3, 3, 0, 0)));
        assert_eq!(s.next_after(t(2024, 3, 3, 0, 0)), Some(t(2024, 3, 4, 0, 0)));
    }

    #[test]
    fn next_after_never_or_invalid() {
        assert_eq!(
            check_cron("0 0 30 2 *")
                .unwrap()
                .next_after(t(2024, 1, 1, 0, 0)),
            None
        );
        assert_eq!(
            check_cron("0 0 31 4,6,9,11 *")
                .unwrap()
                .next_after(t(2024, 1, 1, 0, 0)),
            None
        );
        // Feb 30 OR a Sunday: the Sunday rescues it.
        assert_eq!(
            check_cron("0 0 30 2 SUN")
                .unwrap()
                .next_after(t(2024, 1, 1, 0, 0)),
            Some(t(2024, 2, 4, 0, 0))
        );
        let invalid = NaiveMinute {
            year: 2024,
            month: 2,
            day: 30,
            hour: 0,
            minute: 0,
        };
        assert_eq!(check_cron("* * * * *").unwrap().next_after(invalid), None);
        assert!(!check_cron("* * * * *").unwrap().matches(invalid));
        // The end of time does not overflow.
        let last = t(i32::MAX, 12, 31, 23, 59);
        assert_eq!(check_cron("* * * * *").unwrap().next_after(last), None);
        assert_eq!(
            check_cron("0 0 1 1 *")
                .unwrap()
                .next_after(t(i32::MAX - 1, 6, 1, 0, 0)),
            Some(t(i32::MAX, 1, 1, 0, 0))
        );
    }

    #[test]
    fn next_after_agrees_with_a_minute_by_minute_scan() {
        let exprs = [
            "*/7 3-5 * * *",
            "0 0 13 * FRI",
            "10 0 1,15 * 1-2",
            "0 12 */3 FEB,MAR *",
            "59 23 * * 0",
        ];
        for expr in exprs {
            let s = check_cron(expr).unwrap();
            let mut now = t(2023, 12, 25, 0, 0);
            for _ in 0..30 {
                let next = s.next_after(now).unwrap();
                // Scan forward one minute at a time, checking nothing matches in between.
                let mut scan = step_minute(now);
                while scan < next {
                    assert!(!s.matches(scan), "{expr}: {scan} matches before {next}");
                    scan = step_minute(scan);
                }
                assert!(s.matches(next), "{expr}: {next}");
                now = next;
            }
        }
    }

    fn step_minute(t: NaiveMinute) -> NaiveMinute {
        let mut n = t;
        n.minute += 1;
        if n.minute == 60 {
            n.minute = 0;
            n.hour += 1;
        }
        if n.hour == 24 {
            n.hour = 0;
            n.day += 1;
        }
        if !n.is_valid() && n.month <= 12 && n.day > 1 {
            n.day = 1;
            n.month += 1;
        }
        if n.month == 13 {
            n.month = 1;
            n.year += 1;
        }
        n
    }

    // ── images ──

    /// reference, registry, repository, tag, digest
    type ImageCase<'a> = (
        &'a str,
        Option<&'a str>,
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
    );

    #[test]
    fn images_parse_into_parts() {
        let cases: &[ImageCase] = &[
            ("python:3.12-slim", None, "python", Some("3.12-slim"), None),
            ("python", None, "python", None, None),
            ("acme/trainer", None, "acme/trainer", None, None),
            ("ghcr.io/acme/trainer:v1", Some("ghcr.io"), "acme/trainer", Some("v1"), None),
            ("localhost/app", Some("localhost"), "app", None, None),
            ("localhost:5000/app:latest", Some("localhost:5000"), "app", Some("latest"), None),
            ("registry.example.com:443/a/b/c", Some("registry.example.com:443"), "a/b/c", None, None),
            ("[::1]:5000/app", Some("[::1]:5000"), "app", None, None),
            ("my-registry/app", None, "my-registry/app", None, None),
            ("x/a.b__c--d_e/f", None, "x/a.b__c--d_e/f", None, None),
            ("foo_bar/x", None, "foo_bar/x", None, None),
            ("app:_x", None, "app", Some("_x"), None),
            ("app:V1.0-RC", None, "app", Some("V1.0-RC"), None),
            ("localhost:5000", None, "localhost", Some("5000"), None),
            (
                "python@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                None,
                "python",
                None,
                Some("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
            ),
            (
                "ghcr.io/a/b:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                Some("ghcr.io"),
                "a/b",
                Some("1"),
                Some("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
            ),
        ];
        for &(reference, registry, repository, tag, digest) in cases {
            let image = check_image(reference).unwrap_or_else(|e| panic!("{reference}: {e:?}"));
            assert_eq!(image.registry.as_deref(), registry, "{reference}");
            assert_eq!(image.repository, repository, "{reference}");
            assert_eq!(image.tag.as_deref(), tag, "{reference}");
            assert_eq!(image.digest.as_deref(), digest, "{reference}");
            assert_eq!(image.to_string(), reference);
        }
    }

    #[test]
    fn image_errors_point_at_the_bad_part() {
        let hex64 = "0123456789abcdef".repeat(4);
        let long_tag = format!("app:{}", "t".repeat(129));
        let long_name = format!("{}:1", "a/".repeat(129).trim_end_matches('/'));
        let bad_hex = format!("app@sha256:{}G", &hex64[..63]);
        let short_hex = format!("app@sha256:{}", &hex64[..12]);
        let md5 = format!("app@md5:{hex64}");
        let bad: &[(&str, usize, usize, &str)] = &[
            ("", 0, 0, "image reference is empty"),
            (
                "Python:3",
                0,
                1,
                "repository names must be lowercase: found `P`",
            ),
            (
                "acme/Trainer",
                5,
                1,
                "repository names must be lowercase: found `T`",
            ),
            (
                "ghcr.io/Acme/x",
                8,
                1,
                "repository names must be lowercase: found `A`",
            ),
            (
                "acme//x",
                5,
                1,
                "empty path component in the repository name",
            ),
            ("acme/", 4, 1, "empty path component in the repository name"),
            ("/acme", 0, 1, "empty path component in the repository name"),
            ("acme/x:", 6, 1, "empty tag after `:`"),
            ("app:v1!", 6, 1, "`!` is not allowed in a tag"),
            (
                "app:.v1",
                4,
                1,
                "a tag must start with a letter, digit or `_`",
            ),
            (
                "app:-v1",
                4,
                1,
                "a tag must start with a letter, digit or `_`",
            ),
            (&long_tag, 4, 129, "tag is longer than 128 characters (129)"),
            ("app:1:2", 5, 1, "`:` is not allowed in a tag"),
            (
                "py thon",
                2,
                1,
                "an image reference cannot contain whitespace",
            ),
            (
                "a..b",
                1,
                2,
                "invalid separator `..` in a repository name: use `.`, `_`, `__` or dashes",
            ),
            (
                "a___b",
                1,
                3,
                "invalid separator `___` in a repository name: use `.`, `_`, `__` or dashes",
            ),
            (
                "a-_b",
                1,
                2,
                "invalid separator `-_` in a repository name: use `.`, `_`, `__` or dashes",
            ),
            (
                "x/-a",
                2,
                1,
                "path component `-a` must start with a lowercase letter or digit",
            ),
            (
                "x/a_",
                3,
                1,
                "path component `a_` must end with a lowercase letter or digit",
            ),
            ("x/a+b", 3, 1, "`+` is not allowed in a repository name"),
            (":latest", 0, 1, "missing the repository name"),
            (
                "ghcr.io:abc/app",
                7,
                4,
                "registry port `abc` is not a number",
            ),
            ("ghcr.io:/app", 7, 1, "missing the registry port after `:`"),
            (
                "gh_cr.io/app",
                2,
                1,
                "`_` is not allowed in a registry host name",
            ),
            (
                "-ghcr.io/app",
                0,
                5,
                "registry host name component `-ghcr` must start and end with a letter or digit",
            ),
            (
                "ghcr..io/app",
                4,
                1,
                "empty component in the registry host name",
            ),
            ("[::1/app", 0, 4, "unclosed `[` in the registry address"),
            (
                "app@",
                3,
                1,
                "a digest must look like `sha256:` followed by 64 hex digits",
            ),
            (&md5, 4, 3, "unsupported digest algorithm `md5`: use sha256"),
            (
                &bad_hex,
                74,
                1,
                "`G` is not a lowercase hex digit in the digest",
            ),
            (
                &short_hex,
                11,
                12,
                "a sha256 digest has 64 hex digits, found 12",
            ),
            (
                &long_name,
                0,
                257,
                "repository name is longer than 255 characters (257)",
            ),
        ];
        for &(reference, offset, len, message) in bad {
            assert_eq!(
                check_image(reference),
                Err(ImageError::new(offset, len, message)),
                "{reference:?}"
            );
        }
    }

    #[test]
    fn image_qualification() {
        let local = check_image("trainer:1").unwrap();
        assert!(!local.is_fully_qualified());
        assert_eq!(
            local.qualified_with("ghcr.io/acme"),
            "ghcr.io/acme/trainer:1"
        );
        assert_eq!(
            local.qualified_with("ghcr.io/acme/"),
            "ghcr.io/acme/trainer:1"
        );
        assert_eq!(local.qualified_with(""), "trainer:1");
        let remote = check_image("quay.io/x/y:2").unwrap();
        assert!(remote.is_fully_qualified());
        assert_eq!(remote.qualified_with("ghcr.io/acme"), "quay.io/x/y:2");
    }

    // ── quantities ──

    #[test]
    fn durations() {
        let good = [
            ("250", "ms", 250),
            ("10", "s", 10_000),
            ("5", "m", 300_000),
            ("2", "h", 7_200_000),
            ("1", "d", 86_400_000),
            ("1.5", "s", 1_500),
            ("0.5", "m", 30_000),
            ("1e3", "ms", 1_000),
            ("2.50", "s", 2_500),
            ("007", "s", 7_000),
        ];
        for (digits, unit, millis) in good {
            assert_eq!(
                parse_duration(digits, unit),
                Ok(Duration::from_millis(millis)),
                "{digits}{unit}"
            );
        }
        assert_eq!(
            parse_duration("0", "s"),
            Err(UnitError::NotPositive {
                kind: QuantityKind::Duration
            })
        );
        assert_eq!(parse_duration("10", ""), Err(UnitError::MissingUnit));
        assert_eq!(
            parse_duration("0.5", "ms"),
            Err(UnitError::TooPrecise {
                kind: QuantityKind::Duration,
                text: "0.5ms".into()
            })
        );
        assert_eq!(
            parse_duration("99999999999999999999", "d"),
            Err(UnitError::TooLarge {
                kind: QuantityKind::Duration,
                text: "99999999999999999999d".into()
            })
        );
        assert_eq!(
            parse_duration("1x", "s"),
            Err(UnitError::InvalidNumber {
                digits: "1x".into()
            })
        );
        assert_eq!(
            parse_duration("-1", "s"),
            Err(UnitError::InvalidNumber {
                digits: "-1".into()
            })
        );
        assert_eq!(
            parse_duration(".5", "s"),
            Err(UnitError::InvalidNumber {
                digits: ".5".into()
            })
        );
        assert_eq!(
            parse_duration("5.", "s"),
            Err(UnitError::InvalidNumber {
                digits: "5.".into()
            })
        );
    }

    #[test]
    fn unit_error_messages() {
        let message = |e: Result<u64, UnitError>| e.map_err(|e| e.to_string());
        let duration = |d: &str, u: &str| {
            parse_duration(d, u)
                .map(|d| d.as_millis() as u64)
                .map_err(|e| e.to_string())
        };
        assert_eq!(duration("5", "Gi"), Err("`Gi` is a memory quantity unit, not a duration unit: durations use ms, s, m, h or d".into()));
        assert_eq!(
            duration("5", "min"),
            Err(
                "`min` is not a duration unit: durations use ms, s, m, h or d; did you mean `m`?"
                    .into()
            )
        );
        assert_eq!(
            duration("5", "S"),
            Err(
                "`S` is not a duration unit: durations use ms, s, m, h or d; did you mean `s`?"
                    .into()
            )
        );
        assert_eq!(
            duration("5", ""),
            Err("a duration needs a unit: durations use ms, s, m, h or d".into())
        );
        assert_eq!(
            message(parse_cpu("2", "Gi")),
            Err("`Gi` is a memory quantity unit, not a cpu quantity unit: cpu is written in cores (`2`, `0.5`) or millicores (`500m`)".into())
        );
        assert_eq!(
            message(parse_cpu("2", "s")),
            Err("`s` is a duration unit, not a cpu quantity unit: cpu is written in cores (`2`, `0.5`) or millicores (`500m`)".into())
        );
        assert_eq!(
            message(parse_memory("4", "GB")),
            Err("`GB` is not a memory quantity unit: memory is written in bytes (no unit), Ki, Mi, Gi, Ti, Pi, Ei (powers of 1024) or k, M, G, T, P, E (powers of 1000); did you mean `G`?".into())
        );
        assert_eq!(
            parse_memory("4", "GiB")
                .unwrap_err()
                .to_string()
                .rsplit("; ")
                .next(),
            Some("did you mean `Gi`?")
        );
        assert_eq!(
            parse_memory("4", "gi")
                .unwrap_err()
                .to_string()
                .rsplit("; ")
                .next(),
            Some("did you mean `Gi`?")
        );
        assert_eq!(
            parse_memory("4", "K")
                .unwrap_err()
                .to_string()
                .rsplit("; ")
                .next(),
            Some("did you mean `k`?")
        );
        assert!(parse_memory("4", "m")
            .unwrap_err()
            .to_string()
            .starts_with("`m` is a duration unit, not a memory quantity unit"));
        assert_eq!(
            message(parse_cpu("0", "")),
            Err("a cpu quantity must be positive".into())
        );
        assert_eq!(
            message(parse_cpu("0.5", "m")),
            Err("cpu quantity `0.5m` is finer than 1m (a thousandth of a core)".into())
        );
        assert_eq!(
            message(parse_memory("1.5", "")),
            Err("memory quantity `1.5` is finer than 1 byte".into())
        );
        assert_eq!(
            message(parse_memory("x", "")),
            Err("`x` is not a number".into())
        );
        assert!(UnitError::MissingUnit.is_about_unit());
        assert!(parse_memory("4", "GB").unwrap_err().is_about_unit());
        assert!(!parse_memory("0", "Gi").unwrap_err().is_about_unit());
    }

    #[test]
    fn cpu() {
        let good = [
            ("2", "", 2000),
            ("0.5", "", 500),
            ("500", "m", 500),
            ("1.25", "", 1250),
            ("0.001", "", 1),
            ("1", "m", 1),
            ("64", "", 64_000),
        ];
        for (digits, unit, millicores) in good {
            assert_eq!(parse_cpu(digits, unit), Ok(millicores), "{digits}{unit}");
        }
        assert!(matches!(
            parse_cpu("0.0005", ""),
            Err(UnitError::TooPrecise { .. })
        ));
        assert!(matches!(
            parse_cpu("1e30", ""),
            Err(UnitError::TooLarge { .. })
        ));
    }

    #[test]
    fn memory() {
        let good = [
            ("4", "Gi", 4 << 30),
            ("512", "Mi", 512 << 20),
            ("1", "Ki", 1024),
            ("0.5", "Gi", 1 << 29),
            ("1", "k", 1000),
            ("2", "G", 2_000_000_000),
            ("1", "Ei", 1 << 60),
            ("8", "E", 8_000_000_000_000_000_000),
            ("1000", "", 1000),
            ("1.5", "k", 1500),
            ("1e3", "", 1000),
        ];
        for (digits, unit, bytes) in good {
            assert_eq!(parse_memory(digits, unit), Ok(bytes), "{digits}{unit}");
        }
        assert!(matches!(
            parse_memory("16", "Ei"),
            Err(UnitError::TooLarge { .. })
        ));
        assert!(matches!(
            parse_memory("20", "E"),
            Err(UnitError::TooLarge { .. })
        ));
        assert!(matches!(
            parse_memory("1e-50", "Gi"),
            Err(UnitError::TooPrecise { .. })
        ));
        assert!(matches!(
            parse_memory("1e99999999999", "Gi"),
            Err(UnitError::TooLarge { .. })
        ));
        assert_eq!(
            parse_memory("1.0000000000000000000000000000000000000000000", "Gi"),
            Ok(1 << 30)
        );
    }

    #[test]
    fn formatting() {
        assert_eq!(format_cpu(500), "500m");
        assert_eq!(format_cpu(2000), "2");
        assert_eq!(format_cpu(1500), "1500m");
        assert_eq!(format_cpu(0), "0");
        assert_eq!(format_memory(4 << 30), "4Gi");
        assert_eq!(format_memory(512 << 20), "512Mi");
        assert_eq!(format_memory(2_000_000_000), "2G");
        assert_eq!(format_memory(1000), "1k");
        assert_eq!(format_memory(1024), "1Ki");
        assert_eq!(format_memory(1500), "1500");
        assert_eq!(format_memory(1_536 << 20), "1536Mi");
        assert_eq!(format_memory(0), "0");
        assert_eq!(format_memory(u64::MAX), u64::MAX.to_string());
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_secs(1800)), "30m");
        assert_eq!(format_duration(Duration::from_secs(86_400)), "1d");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }

    proptest::proptest! {
        /// Whatever the input, the validators never panic and their errors point inside it, on
        /// character boundaries (the checker slices the user's text with them).
        #[test]
        fn errors_stay_inside_the_input(text in "\\PC{0,40}", picky in "[-a-zA-Z0-9_./:@*,# ]{0,40}") {
            for input in [text.as_str(), picky.as_str()] {
                let inside = |offset: usize, len: usize| {
                    offset + len <= input.len() && input.is_char_boundary(offset) && input.is_char_boundary(offset + len)
                };
                if let Err(e) = check_cron(input) { proptest::prop_assert!(inside(e.offset, e.len), "{input:?} {e:?}"); }
                if let Err(e) = check_image(input) { proptest::prop_assert!(inside(e.offset, e.len), "{input:?} {e:?}"); }
                for check in [check_dns_label, check_dns1035_label, check_dns_subdomain] {
                    if let Err(e) = check(input) { proptest::prop_assert!(inside(e.offset, e.len), "{input:?} {e:?}"); }
                }
                let _ = (parse_duration(input, "s"), parse_cpu(input, ""), parse_memory("1", input));
            }
        }

        /// A parsed image reference prints back exactly as written.
        #[test]
        fn images_round_trip(reference in "([a-z0-9]{1,5}\\.[a-z]{2,3}(:[0-9]{1,4})?/)?[a-z0-9]{1,4}((_|__|-+)[a-z0-9]{1,4})?(/[a-z0-9]{1,4}([.]|_|__|-+)[a-z0-9]{1,4}){0,2}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,10})?") {
            let image = check_image(&reference);
            proptest::prop_assert!(image.is_ok(), "{reference}: {image:?}");
            proptest::prop_assert_eq!(image.map(|i| i.to_string()).unwrap_or_default(), reference);
        }

        /// `next_after` is strictly later and matches, and a valid cron string round-trips.
        #[test]
        fn next_after_is_later_and_matches(minute in 0u8..60, hour in 0u8..24, day in 1u8..29, month in 1u8..13, year in 1970i32..2100, expr in proptest::sample::select(vec!["*/7 3-5 * * *", "0 0 13 * FRI", "0 12 */3 FEB,MAR *", "@weekly", "0 0 29 2 *", "15,45 */6 1-7 * MON"])) {
            let schedule = check_cron(expr).map_err(|e| proptest::test_runner::TestCaseError::fail(e.message))?;
            let now = t(year, month, day, hour, minute);
            let next = schedule.next_after(now);
            proptest::prop_assert!(next.is_some_and(|n| n > now && schedule.matches(n)), "{expr} {now} {next:?}");
            proptest::prop_assert_eq!(check_cron(&schedule.to_standard_string()).ok(), Some(schedule));
        }
    }

    #[test]
    fn formatting_round_trips() {
        let split = |s: &str| {
            let at = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            (s[..at].to_string(), s[at..].to_string())
        };
        let mut x: u64 = 1;
        for _ in 0..2000 {
            // A cheap deterministic walk over magnitudes and bit patterns.
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            for value in [
                x >> (x % 64),
                (x % 4096) << (x % 50),
                (x % 1000) * 1_000_000,
            ] {
                if value == 0 {
                    continue;
                }
                let (d, u) = split(&format_memory(value));
                assert_eq!(parse_memory(&d, &u), Ok(value), "{value}");
                let (d, u) = split(&format_cpu(value));
                assert_eq!(parse_cpu(&d, &u), Ok(value), "{value}");
                let millis = value % (1 << 50);
                if millis > 0 {
                    let (d, u) = split(&format_duration(Duration::from_millis(millis)));
                    assert_eq!(
                        parse_duration(&d, &u),
                        Ok(Duration::from_millis(millis)),
                        "{millis}"
                    );
                }
            }
        }
    }
}
