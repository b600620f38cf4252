//! Active Directory's objectGUID: 16 bytes whose first three fields are stored
//! little-endian (Microsoft's GUID layout), unlike RFC 4122 text order.

use uuid::Uuid;

/// Converts the binary objectGUID to the UUID that Windows tools display
/// (`Get-ADUser` shows `a14b9e75-b486-43b5-...`). Returns `None` unless the
/// value is exactly 16 bytes.
pub fn guid_from_ad_bytes(bytes: &[u8]) -> Option<Uuid> {
    let b: [u8; 16] = bytes.try_into().ok()?;
    Some(Uuid::from_bytes_le(b))
}

/// The inverse, to search by GUID (`(objectGUID=\75\9e...)`).
pub fn guid_to_ad_bytes(id: Uuid) -> [u8; 16] {
    id.to_bytes_le()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ad_field_order() {
        // Bytes as ldapsearch shows them base64-encoded (dZ5LoYa0tUOrBq48g4hQjw==).
        let raw = [
            0x75, 0x9e, 0x4b, 0xa1, 0x86, 0xb4, 0xb5, 0x43, 0xab, 0x06, 0xae, 0x3c, 0x83, 0x88, 0x50, 0x8f,
        ];
        let id = guid_from_ad_bytes(&raw).expect("16 bytes");
        assert_eq!(id.to_string(), "a14b9e75-b486-43b5-ab06-ae3c8388508f");
        assert_eq!(guid_to_ad_bytes(id), raw);
        assert!(guid_from_ad_bytes(&raw[..15]).is_none());
    }
}
