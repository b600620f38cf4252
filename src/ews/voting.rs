//! PidLidVerbStream (MS-OXOMSG 2.2.1.74): the voting buttons Outlook shows
//! on an approval message ("Approuver;Refuser").

use super::types::{ExtendedFieldUri, ExtendedProperty};

/// Latin-1 stands in for the ANSI code page: the French button labels resa
/// uses are all inside it; anything else becomes '?'.
fn ansi(s: &str) -> Vec<u8> {
    s.chars().map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')).collect()
}

/// Builds the verb stream for these options, in order (ids from 1).
/// Labels are cut at 255 characters, the most the format can count.
pub fn verb_stream(options: &[&str]) -> Vec<u8> {
    let labels: Vec<String> = options.iter().map(|o| o.chars().take(255).collect()).collect();
    let mut out = Vec::new();
    out.extend_from_slice(&0x0102u16.to_le_bytes());
    out.extend_from_slice(&(labels.len() as u32).to_le_bytes());
    for (i, label) in labels.iter().enumerate() {
        let name = ansi(label);
        let count = name.len() as u8;
        out.extend_from_slice(&4u32.to_le_bytes());
        out.push(count);
        out.extend_from_slice(&name);
        out.push(8);
        out.extend_from_slice(b"IPM.Note");
        out.push(0);
        out.push(count);
        out.extend_from_slice(&name);
        out.extend_from_slice(&0u32.to_le_bytes());
        out.push(0);
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        // SendBehavior 2: Outlook asks whether to edit the response first.
        out.extend_from_slice(&2u32.to_le_bytes());
        out.extend_from_slice(&2u32.to_le_bytes());
        out.extend_from_slice(&(i as u32 + 1).to_le_bytes());
        out.extend_from_slice(&u32::MAX.to_le_bytes());
    }
    out.extend_from_slice(&0x0104u16.to_le_bytes());
    for label in &labels {
        let wide: Vec<u8> = label.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let count = label.encode_utf16().count() as u8;
        out.push(count);
        out.extend_from_slice(&wide);
        out.push(count);
        out.extend_from_slice(&wide);
    }
    out
}

/// The labels of a verb stream, in order (the Unicode ones when present);
/// `None` when the stream is malformed.
pub fn labels(stream: &[u8]) -> Option<Vec<String>> {
    let mut pos = 0usize;
    let take = |pos: &mut usize, n: usize| -> Option<&[u8]> {
        let out = stream.get(*pos..*pos + n)?;
        *pos += n;
        Some(out)
    };
    if take(&mut pos, 2)? != 0x0102u16.to_le_bytes() {
        return None;
    }
    let count = u32::from_le_bytes(take(&mut pos, 4)?.try_into().ok()?) as usize;
    if count > 64 {
        return None;
    }
    let mut ansi_labels = Vec::with_capacity(count);
    for _ in 0..count {
        take(&mut pos, 4)?;
        let n = usize::from(*take(&mut pos, 1)?.first()?);
        ansi_labels.push(take(&mut pos, n)?.iter().map(|b| char::from(*b)).collect::<String>());
        let n = usize::from(*take(&mut pos, 1)?.first()?);
        take(&mut pos, n)?;
        let n = usize::from(*take(&mut pos, 1)?.first()?);
        take(&mut pos, n)?;
        let n = usize::from(*take(&mut pos, 1)?.first()?);
        take(&mut pos, n)?;
        take(&mut pos, 29)?;
    }
    if take(&mut pos, 2) != Some(&0x0104u16.to_le_bytes()[..]) {
        return Some(ansi_labels);
    }
    let mut wide_labels = Vec::with_capacity(count);
    for _ in 0..count {
        let n = usize::from(*take(&mut pos, 1)?.first()?);
        let units: Vec<u16> = take(&mut pos, 2 * n)?
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        wide_labels.push(String::from_utf16(&units).ok()?);
        let n = usize::from(*take(&mut pos, 1)?.first()?);
        take(&mut pos, 2 * n)?;
    }
    Some(wide_labels)
}

/// The extended property to put on a message for these voting options.
pub fn voting_property(options: &[&str]) -> ExtendedProperty {
    ExtendedProperty::binary(ExtendedFieldUri::verb_stream(), &verb_stream(options))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MS-OXOMSG 4.5 "Sending a Message with Voting Options" (Yes/No/Maybe).
    #[test]
    fn matches_the_spec_example() {
        let spec = "02 01 03 00 00 00 04 00 00 00 03 59 65 73 08 49
            50 4D 2E 4E 6F 74 65 00 03 59 65 73 00 00 00 00
            00 00 00 00 00 01 00 00 00 02 00 00 00 02 00 00
            00 01 00 00 00 FF FF FF FF 04 00 00 00 02 4E 6F
            08 49 50 4D 2E 4E 6F 74 65 00 02 4E 6F 00 00 00
            00 00 00 00 00 00 01 00 00 00 02 00 00 00 02 00
            00 00 02 00 00 00 FF FF FF FF 04 00 00 00 05 4D
            61 79 62 65 08 49 50 4D 2E 4E 6F 74 65 00 05 4D
            61 79 62 65 00 00 00 00 00 00 00 00 00 01 00 00
            00 02 00 00 00 02 00 00 00 03 00 00 00 FF FF FF
            FF 04 01 03 59 00 65 00 73 00 03 59 00 65 00 73
            00 02 4E 00 6F 00 02 4E 00 6F 00 05 4D 00 61 00
            79 00 62 00 65 00 05 4D 00 61 00 79 00 62 00 65
            00";
        let expected: Vec<u8> = spec
            .split_whitespace()
            .filter_map(|h| u8::from_str_radix(h, 16).ok())
            .collect();
        assert_eq!(verb_stream(&["Yes", "No", "Maybe"]), expected);
    }
}
