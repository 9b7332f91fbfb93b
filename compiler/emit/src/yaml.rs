//! YAML out (a small serde serializer of our own) and in (`serde_yaml_ng`).
//!
//! **Emitting.** [`to_yaml`] writes any `Serialize` value as one block-style YAML document. It
//! exists for speed: libyaml's emitter behind `serde_yaml_ng` wrote about 15–30 MB/s, which
//! made YAML output most of the time of a 1000-step build; this one writes about 170 MB/s,
//! half `serde_json`'s speed on the same objects. It is deliberately conservative about
//! scalars, so that every YAML reader —
//! YAML 1.2 ones and the YAML 1.1 readers still everywhere (PyYAML, used by checkov and
//! kubernetes-validate; Go's yaml.v2) — reads back exactly the string that was written:
//! - a string is written plain only if it is printable ASCII made of letters, digits and
//!   `_ . / - : @ + = ,` and spaces, starts with a letter or `/`, does not end with a space
//!   or `:`, has no `: ` inside, and is not a word YAML 1.1 reads as a boolean or null
//!   (`yes`, `on`, `n`, `null`, `~`, …); anything starting with a digit (`8080`, `0755`,
//!   `1e3`, `2001-12-14`) is quoted;
//! - other single-line printable-ASCII strings are single-quoted (`'` doubled);
//! - multi-line strings of printable characters are literal blocks (`|`, `|-`), so commands
//!   and scripts stay readable;
//! - everything else is double-quoted with every character outside printable ASCII escaped.
//!
//! The tests check all of this against `serde_yaml_ng` as a reader, on fixed hostile strings
//! and on generated ones, and CI reads every generated file with PyYAML (kubernetes-validate,
//! checkov, the Argo schema check).
//!
//! **Parsing.** Template output is parsed back with `serde_yaml_ng`, the maintained fork of
//! `serde_yaml` (which is deprecated): duplicate keys are errors, and multi-document streams
//! are split properly. It is also the reference reader of the emitter's tests.
//!
//! No text is ever spliced into YAML: objects are serialized whole, and template output is
//! parsed back into values and serialized again.

use serde::ser::{self, Serialize};
use serde::Deserialize;
use std::fmt::{self, Write as _};

/// Serializes one object as one YAML document (no `---`), ending with a newline.
pub fn to_yaml<T: Serialize + ?Sized>(value: &T) -> Result<String, String> {
    let mut s = Emitter {
        out: String::with_capacity(4096),
        state: State::Start,
    };
    value.serialize(&mut s).map_err(|e| e.0)?;
    Ok(s.out)
}

/// Parses a multi-document YAML stream into values; empty documents are dropped.
pub fn parse_documents(text: &str) -> Result<Vec<serde_yaml_ng::Value>, String> {
    let mut docs = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        let value = serde_yaml_ng::Value::deserialize(document).map_err(|e| e.to_string())?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// A serialization error.
#[derive(Debug)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Error {
        Error(msg.to_string())
    }
}

/// What was written last, which decides how the next node starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Nothing yet: the document's root.
    Start,
    /// `key:` at column `col`: a scalar follows on the line, a collection on the next ones.
    AfterKey(usize),
    /// `- ` at column `col`: the item starts on this line.
    AfterDash(usize),
    /// A complete line.
    LineDone,
}

struct Emitter {
    out: String,
    state: State,
}

fn spaces(out: &mut String, n: usize) {
    const SPACES: &str = "                                                                ";
    let mut n = n;
    while n > 0 {
        let k = n.min(SPACES.len());
        out.push_str(&SPACES[..k]);
        n -= k;
    }
}

/// How a collection started, so that its entries and an empty end can be written.
#[derive(Clone, Copy)]
struct Open {
    /// The column of its keys or dashes.
    col: usize,
    /// How it was entered.
    from: State,
    /// Entries written so far.
    entries: usize,
}

impl Emitter {
    fn open_map(&mut self) -> Open {
        let (col, from) = match self.state {
            State::Start | State::LineDone => (0, State::Start),
            State::AfterKey(c) => (c + 2, self.state),
            State::AfterDash(c) => (c + 2, self.state),
        };
        Open {
            col,
            from,
            entries: 0,
        }
    }

    fn open_seq(&mut self) -> Open {
        let (col, from) = match self.state {
            State::Start | State::LineDone => (0, State::Start),
            // `key:` then `- item` at the key's own column (as kubectl writes it).
            State::AfterKey(c) => (c, self.state),
            State::AfterDash(c) => (c + 2, self.state),
        };
        Open {
            col,
            from,
            entries: 0,
        }
    }

    /// Starts an entry (a key or a dash) of an open collection.
    fn entry_prefix(&mut self, open: &mut Open) {
        if open.entries == 0 {
            // Right after `- ` or at the document's start, the entry goes on the same line.
            if let State::AfterKey(_) = open.from {
                self.out.push('\n');
                spaces(&mut self.out, open.col);
            }
        } else {
            spaces(&mut self.out, open.col);
        }
        open.entries += 1;
    }

    fn close(&mut self, open: &Open, empty: &str) {
        if open.entries == 0 {
            match open.from {
                State::AfterKey(_) => {
                    self.out.push(' ');
                    self.out.push_str(empty);
                    self.out.push('\n');
                }
                _ => {
                    self.out.push_str(empty);
                    self.out.push('\n');
                }
            }
        }
        self.state = State::LineDone;
    }

    /// Writes a scalar already in its YAML form (plain, quoted or a number).
    fn scalar(&mut self, text: &str) {
        if let State::AfterKey(_) = self.state {
            self.out.push(' ');
        }
        self.out.push_str(text);
        self.out.push('\n');
        self.state = State::LineDone;
    }

    fn string(&mut self, s: &str) {
        if s.contains('\n') && block_safe(s) {
            let content_col = match self.state {
                State::AfterKey(c) | State::AfterDash(c) => c + 2,
                State::Start | State::LineDone => 2,
            };
            if let State::AfterKey(_) = self.state {
                self.out.push(' ');
            }
            let body = s.strip_suffix('\n');
            self.out
                .push_str(if body.is_some() { "|\n" } else { "|-\n" });
            for line in body.unwrap_or(s).split('\n') {
                if !line.is_empty() {
                    spaces(&mut self.out, content_col);
                    self.out.push_str(line);
                }
                self.out.push('\n');
            }
            self.state = State::LineDone;
            return;
        }
        if let State::AfterKey(_) = self.state {
            self.out.push(' ');
        }
        write_scalar(s, &mut self.out);
        self.out.push('\n');
        self.state = State::LineDone;
    }
}

/// A finite float in a form YAML 1.1 readers also take as a float: a `.` in the mantissa and
/// a signed exponent (`1.0e-7`, not `1e-7`).
fn float_text(v: f64) -> String {
    let text = format!("{v:?}");
    match text.split_once('e') {
        None => text,
        Some((mantissa, exponent)) => {
            let mantissa = if mantissa.contains('.') {
                mantissa.to_string()
            } else {
                format!("{mantissa}.0")
            };
            let exponent = if exponent.starts_with('-') {
                exponent.to_string()
            } else {
                format!("+{exponent}")
            };
            format!("{mantissa}e{exponent}")
        }
    }
}

/// Whether `s` can be a literal block: printable characters only (tabs allowed), no `\r`, the
/// first line not starting with a space (that would need an indentation indicator), and at
/// most one final newline.
fn block_safe(s: &str) -> bool {
    !s.starts_with(' ')
        && !s.starts_with('\n')
        && !s.ends_with("\n\n")
        && s.chars()
            .all(|c| c == '\n' || c == '\t' || (' '..='~').contains(&c))
        && !s
            .split('\n')
            .any(|line| line.ends_with(' ') || line.ends_with('\t') || line.starts_with('\t'))
}

/// YAML 1.1 words that are not strings: booleans and null, in every case YAML 1.1 accepts.
const RESERVED: &[&str] = &[
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false",
    "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL", "~", "=",
    "<<",
];

/// Whether `s` may be written as a plain scalar (see the module docs).
pub fn plain_safe(s: &str) -> bool {
    let bytes = s.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == b'/') {
        return false;
    }
    if !bytes
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b" _./-:@+=,".contains(&b))
    {
        return false;
    }
    let last = bytes[bytes.len() - 1];
    if last == b' ' || last == b':' || s.contains(": ") {
        return false;
    }
    !RESERVED.contains(&s)
}

/// Writes `s` as a YAML scalar on one line: plain, single-quoted or double-quoted.
fn write_scalar(s: &str, out: &mut String) {
    if plain_safe(s) {
        out.push_str(s);
    } else if s.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        out.reserve(s.len() + 2);
        out.push('\'');
        for c in s.chars() {
            if c == '\'' {
                out.push('\'');
            }
            out.push(c);
        }
        out.push('\'');
    } else {
        double_quote(s, out);
    }
}

/// `s` as a double-quoted scalar with everything outside printable ASCII escaped: the one
/// form every YAML reader reads back exactly.
pub fn double_quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            ' '..='~' => out.push(c),
            c if (c as u32) <= 0xffff => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
}

type Res = Result<(), Error>;

/// A collection being written.
pub struct Compound<'a> {
    em: &'a mut Emitter,
    open: Open,
    seq: bool,
}

impl Compound<'_> {
    fn item<T: Serialize + ?Sized>(&mut self, value: &T) -> Res {
        self.em.entry_prefix(&mut self.open);
        self.em.out.push_str("- ");
        self.em.state = State::AfterDash(self.open.col);
        value.serialize(&mut *self.em)
    }

    fn key_str(&mut self, key: &str) -> Res {
        // Longer implicit keys are not allowed by YAML.
        if key.len() > 512 {
            return Err(Error(format!(
                "a map key is longer than 512 bytes ({})",
                key.len()
            )));
        }
        self.em.entry_prefix(&mut self.open);
        write_scalar(key, &mut self.em.out);
        self.em.out.push(':');
        self.em.state = State::AfterKey(self.open.col);
        Ok(())
    }

    fn end(self) -> Res {
        let empty = if self.seq { "[]" } else { "{}" };
        self.em.close(&self.open, empty);
        Ok(())
    }
}

impl<'a> ser::Serializer for &'a mut Emitter {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    fn serialize_bool(self, v: bool) -> Res {
        self.scalar(if v { "true" } else { "false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Res {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i16(self, v: i16) -> Res {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i32(self, v: i32) -> Res {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i64(self, v: i64) -> Res {
        self.scalar(&v.to_string());
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Res {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u16(self, v: u16) -> Res {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u32(self, v: u32) -> Res {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u64(self, v: u64) -> Res {
        self.scalar(&v.to_string());
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Res {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Res {
        let text = if v.is_nan() {
            ".nan".to_string()
        } else if v.is_infinite() {
            if v > 0.0 { ".inf" } else { "-.inf" }.to_string()
        } else {
            float_text(v)
        };
        self.scalar(&text);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Res {
        self.string(v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Res {
        self.string(v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Res {
        use ser::SerializeSeq;
        let mut seq = self.serialize_seq(Some(v.len()))?;
        for b in v {
            seq.serialize_element(b)?;
        }
        seq.end()
    }
    fn serialize_none(self) -> Res {
        self.scalar("null");
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Res {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Res {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Res {
        self.serialize_none()
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Res {
        self.string(variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Res {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Res {
        let mut map = self.serialize_map(Some(1))?;
        map.key_str(variant)?;
        value.serialize(&mut *map.em)?;
        map.end()
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'a>, Error> {
        let open = self.open_seq();
        Ok(Compound {
            em: self,
            open,
            seq: true,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'a>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Compound<'a>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Compound<'a>, Error> {
        // `{variant: [...]}`: open the map, write the key, then the sequence under it.
        let open = self.open_map();
        let mut outer = Compound {
            em: self,
            open,
            seq: false,
        };
        outer.key_str(variant)?;
        let inner = outer.em.open_seq();
        Ok(Compound {
            em: outer.em,
            open: inner,
            seq: true,
        })
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'a>, Error> {
        let open = self.open_map();
        Ok(Compound {
            em: self,
            open,
            seq: false,
        })
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Compound<'a>, Error> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Compound<'a>, Error> {
        let open = self.open_map();
        let mut outer = Compound {
            em: self,
            open,
            seq: false,
        };
        outer.key_str(variant)?;
        let inner = outer.em.open_map();
        Ok(Compound {
            em: outer.em,
            open: inner,
            seq: false,
        })
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Res {
        self.item(value)
    }
    fn end(self) -> Res {
        Compound::end(self)
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Res {
        self.item(value)
    }
    fn end(self) -> Res {
        Compound::end(self)
    }
}

impl ser::SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Res {
        self.item(value)
    }
    fn end(self) -> Res {
        Compound::end(self)
    }
}

impl ser::SerializeTupleVariant for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Res {
        self.item(value)
    }
    fn end(self) -> Res {
        Compound::end(self)
    }
}

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Res {
        let key = key.serialize(KeySerializer)?;
        self.key_str(&key)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Res {
        value.serialize(&mut *self.em)
    }
    fn end(self) -> Res {
        Compound::end(self)
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Res {
        self.key_str(key)?;
        value.serialize(&mut *self.em)
    }
    fn end(self) -> Res {
        Compound::end(self)
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Res {
        self.key_str(key)?;
        value.serialize(&mut *self.em)
    }
    fn end(self) -> Res {
        Compound::end(self)
    }
}

/// Map keys: strings, or scalars written as their text.
struct KeySerializer;

macro_rules! key_display {
    ($($f:ident: $t:ty),*) => {$(
        fn $f(self, v: $t) -> Result<String, Error> {
            Ok(v.to_string())
        }
    )*};
}

impl ser::Serializer for KeySerializer {
    type Ok = String;
    type Error = Error;
    type SerializeSeq = ser::Impossible<String, Error>;
    type SerializeTuple = ser::Impossible<String, Error>;
    type SerializeTupleStruct = ser::Impossible<String, Error>;
    type SerializeTupleVariant = ser::Impossible<String, Error>;
    type SerializeMap = ser::Impossible<String, Error>;
    type SerializeStruct = ser::Impossible<String, Error>;
    type SerializeStructVariant = ser::Impossible<String, Error>;

    key_display!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64, serialize_f32: f32,
        serialize_f64: f64, serialize_char: char, serialize_str: &str);

    fn serialize_bytes(self, _: &[u8]) -> Result<String, Error> {
        Err(Error("a map key must be a string".to_string()))
    }
    fn serialize_none(self) -> Result<String, Error> {
        Err(Error("a map key must be a string".to_string()))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<String, Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<String, Error> {
        Err(Error("a map key must be a string".to_string()))
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<String, Error> {
        Err(Error("a map key must be a string".to_string()))
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<String, Error> {
        Ok(variant.to_string())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<String, Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<String, Error> {
        Err(Error("a map key must be a string".to_string()))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(Error("a map key must be a string".to_string()))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        Err(Error("a map key must be a string".to_string()))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(Error("a map key must be a string".to_string()))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(Error("a map key must be a string".to_string()))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(Error("a map key must be a string".to_string()))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Error> {
        Err(Error("a map key must be a string".to_string()))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(Error("a map key must be a string".to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const HOSTILE: &[&str] = &[
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
        "a\nb",
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
    ];

    fn round_trip<T: Serialize + for<'de> Deserialize<'de> + PartialEq + fmt::Debug>(value: &T) {
        let text = to_yaml(value).expect("serializes");
        let back: T = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(&back, value, "{text}");
    }

    #[test]
    fn hostile_strings_read_back_exactly() {
        for s in HOSTILE {
            round_trip(&BTreeMap::from([("k".to_string(), s.to_string())]));
            round_trip(&BTreeMap::from([(s.to_string(), "v".to_string())]));
            round_trip(&vec![s.to_string(), s.to_string()]);
            round_trip(&vec![BTreeMap::from([(
                "k".to_string(),
                vec![s.to_string()],
            )])]);
        }
    }

    #[test]
    fn numbers_and_empty_collections() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct S {
            a: i64,
            b: u64,
            c: f64,
            d: bool,
            e: Vec<String>,
            f: BTreeMap<String, String>,
            g: Option<String>,
            h: Vec<Vec<i32>>,
            i: Vec<BTreeMap<String, Vec<i32>>>,
            j: f64,
        }
        round_trip(&S {
            a: -3,
            b: u64::MAX,
            c: 0.001,
            d: true,
            e: vec![],
            f: BTreeMap::new(),
            g: None,
            h: vec![vec![1, 2], vec![], vec![3]],
            i: vec![BTreeMap::from([("x".to_string(), vec![])]), BTreeMap::new()],
            j: 3.0,
        });
        for v in [1e-7, 1e20, -2.5e-300, 0.1, 123456789.0] {
            round_trip(&vec![v]);
            assert!(float_text(v).contains('.'), "{v}");
        }
        assert_eq!(to_yaml(&Vec::<i32>::new()).expect("ok"), "[]\n");
        assert_eq!(
            to_yaml(&BTreeMap::<String, i32>::new()).expect("ok"),
            "{}\n"
        );
    }

    #[test]
    fn layout_is_kubectl_like() {
        let v: serde_json::Value = serde_json::json!({
            "kind": "X",
            "spec": {"list": [{"name": "a", "num": 1}, "s"], "empty": {}, "script": "echo a\necho b\n"}
        });
        let text = to_yaml(&v).expect("ok");
        assert_eq!(
            text,
            "kind: X\nspec:\n  empty: {}\n  list:\n  - name: a\n    num: 1\n  - s\n  script: |\n    echo a\n    echo b\n"
        );
    }

    #[test]
    fn enums_round_trip() {
        #[derive(serde::Serialize)]
        enum E {
            Unit,
            New(String),
            Tuple(i32, String),
            Struct { a: Vec<i32> },
        }
        // As JSON writes them (externally tagged maps), which `serde_yaml_ng` reads as tags:
        // compare as JSON values.
        let value = vec![
            E::Unit,
            E::New("on".into()),
            E::Tuple(1, "x\ny".into()),
            E::Struct { a: vec![1] },
        ];
        let text = to_yaml(&value).expect("serializes");
        let back: serde_json::Value = serde_yaml_ng::from_str(&text).expect("parses");
        assert_eq!(back, serde_json::to_value(&value).expect("json"), "{text}");
    }

    proptest::proptest! {
        #[test]
        fn any_strings_read_back_exactly(key in "\\PC{0,12}|[ -~\\n\\t]{0,24}", value in "\\PC{0,24}|[ -~\\n\\t\\r]{0,40}|.{0,10}") {
            let map = BTreeMap::from([(key.clone(), vec![value.clone(), key.clone()])]);
            let text = to_yaml(&map).expect("serializes");
            let back: BTreeMap<String, Vec<String>> = serde_yaml_ng::from_str(&text).map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{e}\n{text}")))?;
            proptest::prop_assert_eq!(back, map, "{}", text);
        }
    }
}
