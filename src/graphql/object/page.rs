//! Cursor pagination (the Relay connection shape of async-graphql): `edges { cursor node }`,
//! `nodes`, `pageInfo` and `totalCount`. Forward only (`first`, `after`); a cursor is opaque
//! (base64 of the last item's sort key) and stays valid while items are added before it.

use async_graphql::connection::{Connection, CursorType, Edge, OpaqueCursor};
use async_graphql::{OutputType, SimpleObject};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::domain::error::{DomainError, DomainResult};
use crate::domain::paging::CursorPage;

/// Fields of every connection beside its edges.
#[derive(SimpleObject)]
pub struct PageTotal {
    /// Items in the whole list, on every page together.
    pub total_count: i64,
}

pub type CursorConnection<Position, Node> = Connection<OpaqueCursor<Position>, Node, PageTotal>;

/// Reads an `after` argument; a string that is not one of this list's cursors is bad input.
pub fn decode_after<Position>(after: Option<&str>) -> DomainResult<Option<Position>>
where
    Position: Serialize + DeserializeOwned + Send + Sync,
{
    after
        .map(|cursor| {
            OpaqueCursor::<Position>::decode_cursor(cursor)
                .map(|decoded| decoded.0)
                .map_err(|_| DomainError::bad_field("after", "is not a cursor of this list"))
        })
        .transpose()
}

/// The connection of one page: each item with the cursor of its position.
pub fn connection<Item, Position, Node>(
    page: CursorPage<Item>,
    after_given: bool,
    position: impl Fn(&Item) -> Position,
    node: impl Fn(Item) -> Node,
) -> CursorConnection<Position, Node>
where
    Position: Serialize + DeserializeOwned + Send + Sync,
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
