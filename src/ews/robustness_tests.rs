//! Malformed input gives typed errors, never panics: mutated samples and
//! random bytes through every response parser (the fuzz target in `fuzz/`
//! does the same at length).

use proptest::prelude::*;

use super::ops::{
    create_item::CreateItem, find_item::FindItem, get_events::GetEvents, get_item::GetItem,
    get_user_availability::GetUserAvailability, rooms::GetRooms, subscribe::Subscribe,
    sync_folder_items::SyncFolderItems,
};
use super::soap::read_response;

fn all_parsers(data: &[u8]) {
    let cap = 1 << 20;
    let _ = read_response::<SyncFolderItems>(data, cap);
    let _ = read_response::<GetItem>(data, cap);
    let _ = read_response::<CreateItem>(data, cap);
    let _ = read_response::<FindItem>(data, cap);
    let _ = read_response::<Subscribe>(data, cap);
    let _ = read_response::<GetEvents>(data, cap);
    let _ = read_response::<GetRooms>(data, cap);
    let _ = read_response::<GetUserAvailability>(data, cap);
}

const SEED: &str = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:GetItemResponse xmlns:m="m" xmlns:t="t"><m:ResponseMessages><m:GetItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items><t:CalendarItem><t:ItemId Id="a"/><t:Start>2026-01-01T00:00:00Z</t:Start><t:Recurrence><t:WeeklyRecurrence><t:Interval>1</t:Interval><t:DaysOfWeek>Monday</t:DaysOfWeek></t:WeeklyRecurrence><t:NoEndRecurrence><t:StartDate>2026-01-01Z</t:StartDate></t:NoEndRecurrence></t:Recurrence><t:ExtendedProperty><t:ExtendedFieldURI PropertySetId="x" PropertyId="3" PropertyType="Binary"/><t:Value>AAEC</t:Value></t:ExtendedProperty></t:CalendarItem></m:Items></m:GetItemResponseMessage></m:ResponseMessages></m:GetItemResponse></s:Body></s:Envelope>"#;

#[test]
fn the_seed_parses() {
    let r = read_response::<GetItem>(SEED.as_bytes(), 1 << 20);
    assert!(r.is_ok(), "{r:?}");
}

proptest! {
    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        all_parsers(&data);
    }

    #[test]
    fn mutated_responses_never_panic(
        cut in 0usize..SEED.len(),
        at in 0usize..SEED.len(),
        byte in any::<u8>(),
    ) {
        let mut data = SEED.as_bytes().to_vec();
        data[at] = byte;
        all_parsers(&data);
        all_parsers(&SEED.as_bytes()[..cut]);
    }
}
