//! Feeds arbitrary bytes to the EWS response parser of every operation: it
//! must return a value or an error, never panic, loop or blow up memory.
//! Run with `cargo +nightly fuzz run parse_response` from the crate root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resa::ews::ops::{
    create_item::CreateItem, delete_item::DeleteItem, find_item::FindItem, get_events::GetEvents,
    get_folder::GetFolder, get_item::GetItem, get_streaming_events::GetStreamingEvents,
    get_user_availability::GetUserAvailability, resolve_names::ResolveNames, rooms::GetRoomLists, rooms::GetRooms,
    subscribe::Subscribe, sync_folder_items::SyncFolderItems, unsubscribe::Unsubscribe, update_item::UpdateItem,
};
use resa::ews::soap::read_response;

const CAP: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let _ = read_response::<SyncFolderItems>(data, CAP);
    let _ = read_response::<GetItem>(data, CAP);
    let _ = read_response::<CreateItem>(data, CAP);
    let _ = read_response::<FindItem>(data, CAP);
    let _ = read_response::<GetFolder>(data, CAP);
    let _ = read_response::<UpdateItem>(data, CAP);
    let _ = read_response::<DeleteItem>(data, CAP);
    let _ = read_response::<Subscribe>(data, CAP);
    let _ = read_response::<GetEvents>(data, CAP);
    let _ = read_response::<GetStreamingEvents>(data, CAP);
    let _ = read_response::<Unsubscribe>(data, CAP);
    let _ = read_response::<ResolveNames>(data, CAP);
    let _ = read_response::<GetRoomLists>(data, CAP);
    let _ = read_response::<GetRooms>(data, CAP);
    let _ = read_response::<GetUserAvailability>(data, CAP);
});
