//! A request's query string, read strictly, for the faces that share this reading (Daytona's,
//! Vercel's): whole numbers in a range, booleans spelled `true` or `false`, and never a NUL
//! (which no stored text holds). Each face turns a `QueryError` into its own 400.

use actix_web::HttpRequest;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("The query string is malformed")]
    Malformed,
    #[error("The query string must not hold a NUL")]
    Nul,
    #[error("{name} must not be greater than {max}, {name} must not be less than {min}")]
    Number { name: String, min: u64, max: u64 },
    #[error("Validation failed (boolean string is expected)")]
    Bool { name: String },
}

/// The query string's name-value pairs, in order.
#[derive(Debug, Clone, Default)]
pub struct QueryPairs(Vec<(String, String)>);

impl QueryPairs {
    pub fn of(req: &HttpRequest) -> Result<Self, QueryError> {
        Self::parse(req.query_string())
    }

    pub fn parse(text: &str) -> Result<Self, QueryError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(text).map_err(|_| QueryError::Malformed)?;
        if pairs.iter().any(|(k, v)| k.contains('\0') || v.contains('\0')) {
            return Err(QueryError::Nul);
        }
        Ok(QueryPairs(pairs))
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of any of `names` (`states`, `states[]`), in order.
    pub fn all<'a>(&'a self, names: &'a [&str]) -> impl Iterator<Item = &'a str> {
        self.0.iter().filter(|(k, _)| names.contains(&k.as_str())).map(|(_, v)| v.as_str())
    }

    /// A whole number in `range`, `default` when absent.
    pub fn number(&self, name: &str, range: std::ops::RangeInclusive<u64>, default: u64) -> Result<u64, QueryError> {
        match self.get(name) {
            None => Ok(default),
            Some(text) => text.parse::<u64>().ok().filter(|n| range.contains(n)).ok_or_else(|| QueryError::Number {
                name: name.to_owned(),
                min: *range.start(),
                max: *range.end(),
            }),
        }
    }

    /// `true` or `false` (exactly), `None` when absent.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, QueryError> {
        match self.get(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(QueryError::Bool { name: name.to_owned() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_are_read_strictly() {
        let q = QueryPairs::parse("limit=5&force=true&states=a&states%5B%5D=b&x=1").expect("parse");
        assert_eq!((q.get("limit"), q.get("nothing")), (Some("5"), None));
        assert_eq!(q.number("limit", 1..=200, 100), Ok(5));
        assert_eq!(q.number("page", 1..=9, 1), Ok(1), "absent: the default");
        assert!(matches!(q.number("x", 2..=9, 3), Err(QueryError::Number { .. })));
        assert_eq!(q.bool("force"), Ok(Some(true)));
        assert!(matches!(q.bool("limit"), Err(QueryError::Bool { .. })));
        assert_eq!(q.all(&["states", "states[]"]).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(QueryPairs::parse("a=%00").map(|_| ()), Err(QueryError::Nul));
        assert!(QueryPairs::parse("limit=-1").expect("parse").number("limit", 1..=5, 1).is_err());
    }
}
