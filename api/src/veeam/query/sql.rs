//! The query service in SQL: a parsed filter becomes a `WHERE` condition and a sort an
//! `ORDER BY` over the store's tables, so the database filters, counts and pages.
//!
//! Each field of a query type has a `Source`. Text compares case-insensitively (`LOWER` on both
//! sides) and orders byte-wise (`COLLATE "C"` on PostgreSQL, SQLite's default); a comparison with
//! a null (a running session's EndTime) is false except `!=`, as in the filter grammar.

use super::filter::{Filter, Kind, Op, Value, compare};
use sea_orm::sea_query::{BinOper, CaseStatement, Condition, Expr, ExprTrait, Func};
use sea_orm::{DbBackend, Order};

/// Where a field's value comes from.
pub enum Source {
    /// An SQL expression over the table's columns, written here (never from input).
    Sql(&'static str),
    /// A value every row has.
    Const(Value),
    /// `prefix` followed by an id column (`text` is the whole as SQL): every row holds `prefix`
    /// and its canonical id, which `parse` recognises (lower-case) and types. Equality becomes a
    /// comparison of the id column itself, which its index answers; other comparisons compare
    /// the text.
    Id { prefix: &'static str, column: &'static str, text: &'static str, parse: fn(&str) -> Option<sea_orm::Value> },
    /// The value of a column mapped through a table known in Rust: (stored value, field value)
    /// for every stored value. (State names, operation names, a job's type from its spec.)
    Mapped { column: &'static str, values: Vec<(String, Value)> },
}

/// How a source translates; `backend` decides the collation clause.
pub struct Sql {
    pub backend: DbBackend,
}

impl Sql {
    /// The filter as a condition; `source` names where each field lives.
    pub fn condition(&self, filter: &Filter, source: &impl Fn(&str) -> Source) -> Condition {
        match filter {
            Filter::Or(parts) => parts.iter().fold(Condition::any(), |c, f| c.add(self.condition(f, source))),
            Filter::And(parts) => parts.iter().fold(Condition::all(), |c, f| c.add(self.condition(f, source))),
            Filter::Compare { field, op, value } => self.comparison(source(field), *op, value),
        }
    }

    fn comparison(&self, source: Source, op: Op, value: &Value) -> Condition {
        let passes = |actual: &Value| compare(actual, value).map_or(op == Op::Ne, |ordering| op.accepts(ordering));
        match source {
            Source::Const(actual) => truth(passes(&actual)),
            Source::Mapped { column, values } => {
                let stored: Vec<String> = values.into_iter().filter(|(_, v)| passes(v)).map(|(s, _)| s).collect();
                if stored.is_empty() { truth(false) } else { Condition::all().add(Expr::cust(column).is_in(stored)) }
            }
            Source::Id { prefix, column, text, parse } => {
                let id = match value {
                    Value::Text(v) if matches!(op, Op::Eq | Op::Ne) => {
                        v.to_ascii_lowercase().strip_prefix(prefix).and_then(parse)
                    }
                    _ => return self.comparison(Source::Sql(text), op, value),
                };
                match id {
                    Some(id) if op == Op::Eq => Condition::all().add(Expr::cust(column).eq(id)),
                    Some(id) => Condition::all().add(Expr::cust(column).ne(id)),
                    // No row holds a value that is not canonical.
                    None => truth(op == Op::Ne),
                }
            }
            Source::Sql(expr) => {
                let (lhs, rhs) = match value {
                    Value::Text(text) => (self.text(expr), Expr::from(Func::lower(Expr::val(text.clone())))),
                    Value::Time(at) => (Expr::cust(expr), Expr::val(*at)),
                    Value::Int(n) => (Expr::cust(expr), Expr::val(*n)),
                    Value::Enum(n) => (Expr::cust(expr), Expr::val(i64::try_from(*n).unwrap_or(i64::MAX))),
                    Value::Bool(b) => (Expr::cust(expr), Expr::val(*b)),
                    Value::Null => return truth(op == Op::Ne),
                };
                let compared = lhs.binary(binary(op), rhs);
                if op == Op::Ne {
                    Condition::any().add(compared).add(Expr::cust(format!("({expr}) IS NULL")))
                } else {
                    Condition::all().add(compared)
                }
            }
        }
    }

    /// `ORDER BY` terms for sorting on a field: nulls first ascending (last descending), text
    /// case-insensitively.
    pub fn order(&self, source: Source, kind: Kind, descending: bool) -> Vec<(Expr, Order)> {
        let order = if descending { Order::Desc } else { Order::Asc };
        match source {
            Source::Const(_) => Vec::new(),
            Source::Id { text, .. } => self.order(Source::Sql(text), kind, descending),
            Source::Mapped { column, values } => {
                // Rank the field values in Rust, then sort by the rank of each stored value.
                let mut ranked: Vec<&Value> = values.iter().map(|(_, v)| v).collect();
                ranked.sort_by(|a, b| compare(a, b).unwrap_or(std::cmp::Ordering::Equal));
                ranked.dedup_by(|a, b| compare(a, b) == Some(std::cmp::Ordering::Equal));
                let rank = |v: &Value| ranked.iter().position(|r| compare(r, v) == Some(std::cmp::Ordering::Equal));
                let case = values.iter().fold(CaseStatement::new(), |case, (stored, v)| {
                    case.case(Expr::cust(column).eq(stored.clone()), Expr::val(rank(v).unwrap_or(0) as i64))
                });
                if values.is_empty() { Vec::new() } else { vec![(Expr::Case(Box::new(case)), order)] }
            }
            Source::Sql(expr) => {
                let value = if matches!(kind, Kind::Text) { self.text(expr) } else { Expr::cust(expr) };
                vec![
                    (Expr::cust(format!("CASE WHEN ({expr}) IS NULL THEN 0 ELSE 1 END")), order.clone()),
                    (value, order),
                ]
            }
        }
    }

    fn text(&self, expr: &str) -> Expr {
        match self.backend {
            DbBackend::Postgres => Expr::cust(format!("LOWER({expr}) COLLATE \"C\"")),
            _ => Expr::cust(format!("LOWER({expr})")),
        }
    }
}

fn truth(holds: bool) -> Condition {
    Condition::all().add(Expr::cust(if holds { "1 = 1" } else { "1 = 0" }))
}

fn binary(op: Op) -> BinOper {
    match op {
        Op::Eq => BinOper::Equal,
        Op::Ne => BinOper::NotEqual,
        Op::Lt => BinOper::SmallerThan,
        Op::Gt => BinOper::GreaterThan,
        Op::Le => BinOper::SmallerThanOrEqual,
        Op::Ge => BinOper::GreaterThanOrEqual,
    }
}
