//! Keyset paging for the engine's listings: a page ends with a cursor holding the sort value and
//! the id of its last row, and the next page starts strictly after that pair, in the order of
//! an index. A page costs the same however many rows come before it, and rows inserted or
//! removed meanwhile neither repeat nor skip the rows that stay.

use base64::Engine as _;
use sea_orm::sea_query::LikeExpr;
use sea_orm::{ColumnTrait, Condition};
use serde::{Deserialize, Serialize};

/// A page of a listing, and where the next one starts (`None`: this is the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

/// Where a listing resumes. Opaque to clients: `encode` / `decode` (base64url of JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The sort the cursor was made for: a cursor of another sort is refused.
    #[serde(rename = "s")]
    pub sort: String,
    /// Descending or ascending, as the listing was.
    #[serde(rename = "d")]
    pub descending: bool,
    /// The last row's sort value, as text.
    #[serde(rename = "v")]
    pub value: String,
    /// The last row's id.
    #[serde(rename = "i")]
    pub id: String,
}

/// A cursor that is not one of ours, or not for this listing's sort and order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the cursor is not valid for this listing")]
pub struct BadCursor;

impl Cursor {
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    /// The cursor, if `text` is one made for `sort` in this order.
    pub fn decode(text: &str, sort: &str, descending: bool) -> Result<Self, BadCursor> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| BadCursor)?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| BadCursor)?;
        if cursor.sort != sort || cursor.descending != descending {
            return Err(BadCursor);
        }
        Ok(cursor)
    }
}

/// The largest page a listing returns, whatever is asked.
pub const MAX_LIMIT: u64 = 1000;

/// Rows strictly after (`sort`, `id`) = (`value`, `last_id`) in the listing's order. The
/// redundant bound on `sort` alone lets the database start its index scan at the cursor.
pub fn after(
    sort: impl ColumnTrait,
    id: impl ColumnTrait,
    value: sea_orm::Value,
    last_id: sea_orm::Value,
    descending: bool,
) -> Condition {
    let (bound, beyond, tie) = if descending {
        (sort.lte(value.clone()), sort.lt(value.clone()), id.lt(last_id))
    } else {
        (sort.gte(value.clone()), sort.gt(value.clone()), id.gt(last_id))
    };
    Condition::all().add(bound).add(Condition::any().add(beyond).add(Condition::all().add(sort.eq(value)).add(tie)))
}

/// A `LIKE` pattern matching text that starts with `prefix` (its `%`, `_` and `\` taken
/// literally).
pub fn starts_with(prefix: &str) -> LikeExpr {
    let escaped: String =
        prefix.chars().flat_map(|c| if matches!(c, '%' | '_' | '\\') { vec!['\\', c] } else { vec![c] }).collect();
    LikeExpr::new(format!("{escaped}%")).escape('\\')
}

/// Splits the `limit + 1` rows a listing read into the page and its next cursor.
pub fn finish<T>(mut rows: Vec<T>, limit: u64, cursor_of: impl Fn(&T) -> Cursor) -> Page<T> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more { rows.last().map(cursor_of) } else { None };
    Page { items: rows, next }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_is_refused_for_another_sort_order_or_garbage() {
        let cursor = Cursor { sort: "created_at".into(), descending: true, value: "v".into(), id: "i".into() };
        let text = cursor.encode();
        assert_eq!(Cursor::decode(&text, "created_at", true), Ok(cursor));
        assert_eq!(Cursor::decode(&text, "name", true), Err(BadCursor));
        assert_eq!(Cursor::decode(&text, "created_at", false), Err(BadCursor));
        for garbage in ["", "!!", "e30", "bm90IGpzb24", &"A".repeat(100_000)] {
            assert_eq!(Cursor::decode(garbage, "created_at", true), Err(BadCursor), "{garbage}");
        }
    }

    #[test]
    fn a_page_has_a_next_cursor_only_when_more_rows_were_read_than_asked() {
        let cursor = |n: &u32| Cursor { sort: "n".into(), descending: false, value: n.to_string(), id: n.to_string() };
        let page = finish(vec![1, 2, 3], 2, cursor);
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(page.next.map(|c| c.id), Some("2".into()));
        assert_eq!(finish(vec![1, 2], 2, cursor).next, None);
        assert_eq!(finish(Vec::<u32>::new(), 2, cursor).next, None);
    }
}
