//! The query service's filter grammar:
//!
//! ```text
//! or         := and (',' and)*
//! and        := factor (';' factor)*
//! factor     := '(' or ')' | comparison
//! comparison := field op value        op := == | != | >= | <= | > | <
//! value      := "quoted, "" for a quote" | bare text up to ; , or )
//! ```
//!
//! Nesting is bounded: more than `MAX_DEPTH` open parentheses is a 400, so no input can drive the
//! recursive descent (or the recursive matching and dropping of the tree) into a stack overflow.
//!
//! Field names and values are case-insensitive. Fields are typed per query type; a value that
//! does not fit its field's type is a 400, not an empty result. Enum fields compare by their
//! index in Veeam's documented order (`Result>Success` is Warning or Failed).

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use std::cmp::Ordering;

/// The deepest parenthesis nesting a filter may have. Real filters nest two or three levels.
pub const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Text,
    Time,
    Int,
    Bool,
    Enum(&'static [&'static str]),
}

/// A field's value on one row; `Null` for an absent one (e.g. EndTime of a running session).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Text(String),
    Time(DateTime<Utc>),
    Int(i64),
    Bool(bool),
    Enum(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Or(Vec<Filter>),
    And(Vec<Filter>),
    Compare { field: &'static str, op: Op, value: Value },
}

/// The fields of one query type and their kinds. (`super::sql` says where each is stored.)
pub struct Schema {
    pub type_name: &'static str,
    pub fields: &'static [(&'static str, Kind)],
}

impl Schema {
    pub fn field(&self, name: &str) -> Result<(&'static str, Kind), String> {
        self.fields
            .iter()
            .find(|(f, _)| f.eq_ignore_ascii_case(name))
            .copied()
            .ok_or_else(|| format!("Unknown field '{name}' for query type {}.", self.type_name))
    }
}

impl Op {
    /// Whether a value that compares to the filter's value as `ordering` passes.
    pub fn accepts(self, ordering: Ordering) -> bool {
        match self {
            Op::Eq => ordering == Ordering::Equal,
            Op::Ne => ordering != Ordering::Equal,
            Op::Lt => ordering == Ordering::Less,
            Op::Gt => ordering == Ordering::Greater,
            Op::Le => ordering != Ordering::Greater,
            Op::Ge => ordering != Ordering::Less,
        }
    }
}

/// How two values of one field order; `None` when either is null (a null equals nothing but is
/// unequal to everything). Text compares case-insensitively.
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Text(a), Value::Text(b)) => Some(a.to_lowercase().cmp(&b.to_lowercase())),
        (Value::Time(a), Value::Time(b)) => Some(a.cmp(b)),
        (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Enum(a), Value::Enum(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

pub fn parse(text: &str, schema: &Schema) -> Result<Filter, String> {
    let mut parser = Parser { chars: text.chars().collect(), pos: 0, depth: 0, schema };
    let filter = parser.or()?;
    parser.skip_spaces();
    if parser.pos < parser.chars.len() {
        return Err(format!("Unexpected '{}' at position {} of the filter.", parser.chars[parser.pos], parser.pos + 1));
    }
    Ok(filter)
}

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    /// Parentheses open at `pos`.
    depth: usize,
    schema: &'a Schema,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn or(&mut self) -> Result<Filter, String> {
        let mut parts = vec![self.and()?];
        while self.peek() == Some(',') {
            self.pos += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Filter::Or(parts) })
    }

    fn and(&mut self) -> Result<Filter, String> {
        let mut parts = vec![self.factor()?];
        while self.peek() == Some(';') {
            self.pos += 1;
            parts.push(self.factor()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Filter::And(parts) })
    }

    fn factor(&mut self) -> Result<Filter, String> {
        self.skip_spaces();
        if self.peek() == Some('(') {
            if self.depth == MAX_DEPTH {
                return Err(format!("The filter nests parentheses deeper than {MAX_DEPTH} levels."));
            }
            self.pos += 1;
            self.depth += 1;
            let inner = self.or()?;
            self.depth -= 1;
            self.skip_spaces();
            if self.peek() != Some(')') {
                return Err(format!("Missing ')' at position {} of the filter.", self.pos + 1));
            }
            self.pos += 1;
            self.skip_spaces();
            return Ok(inner);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Filter, String> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            self.pos += 1;
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        if name.is_empty() {
            return Err(format!("Expected a field name at position {} of the filter.", start + 1));
        }
        let (field, kind) = self.schema.field(&name)?;
        self.skip_spaces();
        let op = self.op().ok_or_else(|| format!("Expected ==, !=, <, >, <= or >= after '{name}'."))?;
        self.skip_spaces();
        let raw = self.value()?;
        let value = typed(&raw, kind).ok_or_else(|| format!("'{raw}' is not a valid value for {field}."))?;
        self.skip_spaces();
        Ok(Filter::Compare { field, op, value })
    }

    fn op(&mut self) -> Option<Op> {
        let two: String = self.chars.iter().skip(self.pos).take(2).collect();
        let (op, len) = match two.as_str() {
            "==" => (Op::Eq, 2),
            "!=" => (Op::Ne, 2),
            ">=" => (Op::Ge, 2),
            "<=" => (Op::Le, 2),
            _ if two.starts_with('>') => (Op::Gt, 1),
            _ if two.starts_with('<') => (Op::Lt, 1),
            _ => return None,
        };
        self.pos += len;
        Some(op)
    }

    fn value(&mut self) -> Result<String, String> {
        if self.peek() == Some('"') {
            self.pos += 1;
            let mut out = String::new();
            loop {
                match self.peek() {
                    None => return Err("Unterminated quoted value in the filter.".into()),
                    Some('"') if self.chars.get(self.pos + 1) == Some(&'"') => {
                        out.push('"');
                        self.pos += 2;
                    }
                    Some('"') => {
                        self.pos += 1;
                        return Ok(out);
                    }
                    Some(c) => {
                        out.push(c);
                        self.pos += 1;
                    }
                }
            }
        }
        let start = self.pos;
        while self.peek().is_some_and(|c| !matches!(c, ';' | ',' | ')' | '(')) {
            self.pos += 1;
        }
        let bare: String = self.chars[start..self.pos].iter().collect::<String>().trim().to_owned();
        if bare.is_empty() {
            return Err(format!("Expected a value at position {} of the filter.", start + 1));
        }
        Ok(bare)
    }
}

fn typed(raw: &str, kind: Kind) -> Option<Value> {
    match kind {
        Kind::Text => Some(Value::Text(raw.to_owned())),
        Kind::Int => raw.parse().ok().map(Value::Int),
        Kind::Bool => raw.to_ascii_lowercase().parse().ok().map(Value::Bool),
        Kind::Enum(names) => names.iter().position(|n| n.eq_ignore_ascii_case(raw)).map(Value::Enum),
        Kind::Time => parse_time(raw).map(Value::Time),
    }
}

/// `2025-08-15T06:00:00Z`, with or without fraction and `Z` (then UTC), or a bare date.
pub fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&Utc));
    }
    let naive = raw.trim_end_matches(['Z', 'z']);
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(naive, format) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(naive, "%Y-%m-%d").ok()?.and_hms_opt(0, 0, 0).map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESULTS: &[&str] = &["Success", "Warning", "Failed"];

    fn schema() -> Schema {
        Schema {
            type_name: "Test",
            fields: &[("JobName", Kind::Text), ("Result", Kind::Enum(RESULTS)), ("CreationTime", Kind::Time)],
        }
    }

    fn cmp(field: &'static str, op: Op, value: Value) -> Filter {
        Filter::Compare { field, op, value }
    }

    fn text(s: &str) -> Value {
        Value::Text(s.to_owned())
    }

    fn time(s: &str) -> Value {
        Value::Time(parse_time(s).expect("time"))
    }

    #[test]
    fn filters_combine_with_and_or_and_parentheses_into_typed_comparisons() {
        let parsed = |f: &str| parse(f, &schema()).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(
            parsed("jobname==\"Nightly\";creationtime>\"2026-11-21T00:00:00Z\""),
            Filter::And(vec![
                cmp("JobName", Op::Eq, text("Nightly")),
                cmp("CreationTime", Op::Gt, time("2026-11-21T00:00:00Z"))
            ])
        );
        assert_eq!(
            parsed("result==Failed,result==warning"),
            Filter::Or(vec![cmp("Result", Op::Eq, Value::Enum(2)), cmp("Result", Op::Eq, Value::Enum(1))])
        );
        assert_eq!(
            parsed("JOBNAME==nightly;(result==\"Success\",result==\"Failed\")"),
            Filter::And(vec![
                cmp("JobName", Op::Eq, text("nightly")),
                Filter::Or(vec![cmp("Result", Op::Eq, Value::Enum(0)), cmp("Result", Op::Eq, Value::Enum(2))])
            ])
        );
        assert_eq!(parsed("Result>Success"), cmp("Result", Op::Gt, Value::Enum(0)));
        assert_eq!(
            parsed("CreationTime>=2026-11-22T10:00:00"),
            cmp("CreationTime", Op::Ge, time("2026-11-22T10:00:00Z"))
        );
        assert_eq!(parsed("jobname==\"Hourly \"\"fast\"\"\""), cmp("JobName", Op::Eq, text("Hourly \"fast\"")));
        assert_eq!(parsed("jobname!=Nightly"), cmp("JobName", Op::Ne, text("Nightly")));
        assert_eq!(parsed(" jobname == a b "), cmp("JobName", Op::Eq, text("a b")));
    }

    #[test]
    fn comparisons_follow_the_operator_and_nulls_equal_nothing() {
        assert!(
            Op::Le.accepts(Ordering::Equal) && Op::Le.accepts(Ordering::Less) && !Op::Le.accepts(Ordering::Greater)
        );
        assert!(Op::Ne.accepts(Ordering::Less) && !Op::Ne.accepts(Ordering::Equal));
        assert_eq!(compare(&text("NIGHTLY"), &text("nightly")), Some(Ordering::Equal));
        assert_eq!(compare(&Value::Null, &text("x")), None);
    }

    fn depth(filter: &Filter) -> usize {
        match filter {
            Filter::Or(parts) | Filter::And(parts) => 1 + parts.iter().map(depth).max().unwrap_or(0),
            Filter::Compare { .. } => 0,
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_parsed_or_refused_without_panicking(text in "\\PC{0,300}") {
            let _ = parse(&text, &schema());
        }

        #[test]
        fn grammar_soup_of_any_length_is_parsed_or_refused_within_the_depth_limit(
            tokens in proptest::collection::vec(
                proptest::sample::select(vec!["(", ")", ";", ",", "jobname", "result", "==", "!=", ">=", "<", "\"", "\"\"", "a", " ", "Failed", "2026-11-22"]),
                0..4000,
            )
        ) {
            if let Ok(filter) = parse(&tokens.concat(), &schema()) {
                // Each level of the tree is at most one parenthesis plus its Or and And.
                proptest::prop_assert!(depth(&filter) <= 2 * (MAX_DEPTH + 1));
            }
        }
    }

    #[test]
    fn nesting_up_to_the_limit_parses() {
        let nested = format!("{}jobname==Nightly{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert_eq!(parse(&nested, &schema()), Ok(cmp("JobName", Op::Eq, text("Nightly"))));
    }

    #[test]
    fn malformed_filters_are_rejected_with_a_reason() {
        let s = schema();
        for (bad, says) in [
            ("colour==red", "Unknown field"),
            ("jobname=Nightly", "Expected =="),
            ("result==Maybe", "not a valid value"),
            ("creationtime>yesterday", "not a valid value"),
            ("(jobname==a", "Missing ')'"),
            ("jobname==\"open", "Unterminated"),
            ("jobname==a;", "Expected a field"),
            ("jobname==a)", "Unexpected ')'"),
            (format!("{}jobname==a{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1)).as_str(), "deeper than"),
            ("(".repeat(100_000).as_str(), "deeper than"),
        ] {
            let err = parse(bad, &s).expect_err(bad);
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
