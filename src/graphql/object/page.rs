//! Cursor pagination (the Relay connection shape of async-graphql): `edges { cursor node }`,
//! `nodes`, `pageInfo` and `totalCount`. Forward only (`first`, `after`); every list's cursor is
//! one opaque format (base64 of the item's sort time and id) and stays valid while items are added
//! before it.

use async_graphql::connection::{Connection, CursorType, Edge, OpaqueCursor};
use async_graphql::{OutputType, SimpleObject};
use serde::{Deserialize, Serialize};

use crate::domain::error::{DomainError, DomainResult};
use crate::domain::paging::CursorPage;

/// Fields of every connection beside its edges.
#[derive(SimpleObject)]
pub struct PageTotal {
    /// Items in the whole list, on every page together.
    pub total_count: i64,
}

/// An item's place in a newest-first list, as its cursor holds it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Position {
    /// The sort time, unix milliseconds. Key cursors named it `created` and invoice cursors
    /// `start` before the lists shared one format: those cursors still read.
    #[serde(alias = "created", alias = "start")]
    pub at: i64,
    pub id: String,
}

pub type CursorConnection<Node> = Connection<OpaqueCursor<Position>, Node, PageTotal>;

/// The refusal of an `after` that is not a cursor of the list.
pub fn not_a_cursor() -> DomainError {
    DomainError::bad_field("after", "is not a cursor of this list")
}

/// Reads an `after` argument; a string that is not one of this list's cursors is bad input.
pub fn decode_after(after: Option<&str>) -> DomainResult<Option<Position>> {
    after
        .map(|cursor| {
            OpaqueCursor::<Position>::decode_cursor(cursor)
                .map(|decoded| decoded.0)
                .map_err(|_| not_a_cursor())
        })
        .transpose()
}

/// The connection of one page: each item with the cursor of its position.
pub fn connection<Item, Node>(
    page: CursorPage<Item>,
    after_given: bool,
    position: impl Fn(&Item) -> Position,
    node: impl Fn(Item) -> Node,
) -> CursorConnection<Node>
where
    Node: OutputType,
{
    let mut connection = Connection::with_additional_fields(
        after_given,
        page.has_next,
        PageTotal {
            total_count: i64::try_from(page.total).unwrap_or(i64::MAX),
        },
    );
    connection.edges.extend(
        page.items
            .into_iter()
            .map(|item| Edge::new(OpaqueCursor(position(&item)), node(item))),
    );
    connection
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_of_either_list_from_before_the_shared_format_still_reads() {
        for (old, at) in [
            (serde_json::json!({ "created": 5, "id": "k" }), 5),
            (serde_json::json!({ "start": 7, "id": "k" }), 7),
        ] {
            let cursor = OpaqueCursor(old).encode_cursor();
            let position = decode_after(Some(&cursor)).unwrap().unwrap();
            assert_eq!((position.at, position.id.as_str()), (at, "k"));
        }
        let current = OpaqueCursor(Position {
            at: 9,
            id: "i".to_owned(),
        })
        .encode_cursor();
        assert_eq!(decode_after(Some(&current)).unwrap().unwrap().at, 9);
        assert!(decode_after(Some("eyJ4IjoxfQ")).is_err());
    }
}
