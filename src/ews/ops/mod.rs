//! One module per EWS operation: the request type, its response type, and
//! their XML in both directions.

pub mod create_item;
pub mod delete_item;
pub mod find_item;
pub mod get_events;
pub mod get_folder;
pub mod get_item;
pub mod get_streaming_events;
pub mod get_user_availability;
pub mod notification;
pub mod resolve_names;
pub mod rooms;
#[cfg(test)]
pub(crate) mod schema_fixtures;
pub mod subscribe;
pub mod sync_folder_items;
pub mod unsubscribe;
pub mod update_item;
