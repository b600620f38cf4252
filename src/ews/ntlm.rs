//! NTLMv2 client messages (MS-NLMP): NEGOTIATE, parsing CHALLENGE, and
//! AUTHENTICATE with an NTLMv2 response.
//!
//! Only what HTTP authentication to Exchange needs: no signing or sealing,
//! so no key exchange. The client challenge and the time are parameters so
//! the computation is deterministic under test; the HTTP client draws the
//! challenge from the OS RNG and the time from `crate::clock`.

use hmac::{Hmac, Mac};
use md4::{Digest, Md4};
use md5::Md5;

use super::error::EwsError;

const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";

const NEGOTIATE_UNICODE: u32 = 0x0000_0001;
const NEGOTIATE_OEM: u32 = 0x0000_0002;
const REQUEST_TARGET: u32 = 0x0000_0004;
const NEGOTIATE_NTLM: u32 = 0x0000_0200;
const NEGOTIATE_ALWAYS_SIGN: u32 = 0x0000_8000;
const NEGOTIATE_EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
const NEGOTIATE_TARGET_INFO: u32 = 0x0080_0000;
const NEGOTIATE_128: u32 = 0x2000_0000;
const NEGOTIATE_56: u32 = 0x8000_0000;

/// Flags resa asks for and accepts.
const CLIENT_FLAGS: u32 = NEGOTIATE_UNICODE
    | NEGOTIATE_OEM
    | REQUEST_TARGET
    | NEGOTIATE_NTLM
    | NEGOTIATE_ALWAYS_SIGN
    | NEGOTIATE_EXTENDED_SESSIONSECURITY
    | NEGOTIATE_TARGET_INFO
    | NEGOTIATE_128
    | NEGOTIATE_56;

/// AV pair id of MsvAvTimestamp in the target info.
const AV_TIMESTAMP: u16 = 7;
const AV_EOL: u16 = 0;

type HmacMd5 = Hmac<Md5>;

fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match HmacMd5::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0; 16],
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// Credentials for NTLM.
#[derive(Clone)]
pub struct NtlmCredentials {
    pub domain: String,
    pub user: String,
    pub password: String,
    pub workstation: String,
}

impl std::fmt::Debug for NtlmCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password never reaches a log.
        f.debug_struct("NtlmCredentials")
            .field("domain", &self.domain)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl NtlmCredentials {
    /// Splits `DOMAIN\user` or `user@domain` (UPN: the domain stays empty,
    /// the server resolves it).
    pub fn from_login(login: &str, password: &str) -> Self {
        let (domain, user) = match login.split_once('\\') {
            Some((d, u)) => (d.to_owned(), u.to_owned()),
            None => (String::new(), login.to_owned()),
        };
        Self {
            domain,
            user,
            password: password.to_owned(),
            workstation: String::new(),
        }
    }
}

/// NTOWFv2 (MS-NLMP 3.3.2).
pub fn ntowf_v2(password: &str, user: &str, domain: &str) -> [u8; 16] {
    let nt_hash: [u8; 16] = Md4::digest(utf16le(password)).into();
    let identity = utf16le(&(user.to_uppercase() + domain));
    hmac_md5(&nt_hash, &[&identity])
}

/// The NEGOTIATE message (type 1), with no domain or workstation supplied.
pub fn negotiate_message() -> Vec<u8> {
    let mut m = Vec::with_capacity(32);
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&1u32.to_le_bytes());
    m.extend_from_slice(&CLIENT_FLAGS.to_le_bytes());
    // Empty DomainNameFields and WorkstationFields.
    m.extend_from_slice(&[0u8; 16]);
    m
}

/// What resa needs from a CHALLENGE message (type 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub flags: u32,
    pub server_challenge: [u8; 8],
    pub target_info: Vec<u8>,
}

fn u16_at(b: &[u8], i: usize) -> Result<u16, EwsError> {
    b.get(i..i + 2)
        .and_then(|s| s.try_into().ok())
        .map(u16::from_le_bytes)
        .ok_or_else(|| EwsError::Unauthorized("truncated NTLM challenge".into()))
}

fn u32_at(b: &[u8], i: usize) -> Result<u32, EwsError> {
    b.get(i..i + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| EwsError::Unauthorized("truncated NTLM challenge".into()))
}

impl Challenge {
    pub fn parse(b: &[u8]) -> Result<Self, EwsError> {
        let bad = |m: &str| EwsError::Unauthorized(format!("NTLM challenge: {m}"));
        if b.get(..8) != Some(SIGNATURE.as_slice()) || u32_at(b, 8)? != 2 {
            return Err(bad("not a CHALLENGE message"));
        }
        let flags = u32_at(b, 20)?;
        let server_challenge: [u8; 8] = b
            .get(24..32)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| bad("truncated"))?;
        let target_info = if b.len() >= 48 {
            let len = usize::from(u16_at(b, 40)?);
            let off = u32_at(b, 44)? as usize;
            b.get(off..off.saturating_add(len))
                .ok_or_else(|| bad("target info out of bounds"))?
                .to_vec()
        } else {
            Vec::new()
        };
        Ok(Self {
            flags,
            server_challenge,
            target_info,
        })
    }

    /// MsvAvTimestamp from the target info, when the server sent one.
    pub fn timestamp(&self) -> Option<u64> {
        let t = &self.target_info;
        let mut i = 0;
        while i + 4 <= t.len() {
            let id = u16::from_le_bytes([t[i], t[i + 1]]);
            let len = usize::from(u16::from_le_bytes([t[i + 2], t[i + 3]]));
            if id == AV_EOL {
                return None;
            }
            if id == AV_TIMESTAMP && len == 8 {
                let v = t.get(i + 4..i + 12)?;
                return v.try_into().ok().map(u64::from_le_bytes);
            }
            i += 4 + len;
        }
        None
    }
}

/// The NTLMv2 responses and session key for a challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Response {
    pub lm_response: Vec<u8>,
    pub nt_response: Vec<u8>,
    pub nt_proof_str: [u8; 16],
    pub session_base_key: [u8; 16],
}

/// Computes the NTLMv2 responses (MS-NLMP 3.3.2). `timestamp` is a Windows
/// FILETIME (100 ns since 1601); the server's MsvAvTimestamp wins over it.
pub fn v2_response(
    creds: &NtlmCredentials,
    challenge: &Challenge,
    client_challenge: [u8; 8],
    timestamp: u64,
) -> V2Response {
    let key = ntowf_v2(&creds.password, &creds.user, &creds.domain);
    let server_time = challenge.timestamp();
    let time = server_time.unwrap_or(timestamp);
    let mut temp = Vec::with_capacity(28 + challenge.target_info.len() + 4);
    temp.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 0]);
    temp.extend_from_slice(&time.to_le_bytes());
    temp.extend_from_slice(&client_challenge);
    temp.extend_from_slice(&[0; 4]);
    temp.extend_from_slice(&challenge.target_info);
    temp.extend_from_slice(&[0; 4]);
    let nt_proof_str = hmac_md5(&key, &[&challenge.server_challenge, &temp]);
    let mut nt_response = nt_proof_str.to_vec();
    nt_response.extend_from_slice(&temp);
    // With a server timestamp the LM response must be zeros (MS-NLMP 3.1.5.1.2).
    let lm_response = if server_time.is_some() {
        vec![0; 24]
    } else {
        let mut lm = hmac_md5(&key, &[&challenge.server_challenge, &client_challenge]).to_vec();
        lm.extend_from_slice(&client_challenge);
        lm
    };
    V2Response {
        lm_response,
        nt_response,
        nt_proof_str,
        session_base_key: hmac_md5(&key, &[&nt_proof_str]),
    }
}

/// The AUTHENTICATE message (type 3) answering `challenge`.
pub fn authenticate_message(
    creds: &NtlmCredentials,
    challenge: &Challenge,
    client_challenge: [u8; 8],
    timestamp: u64,
) -> Vec<u8> {
    let r = v2_response(creds, challenge, client_challenge, timestamp);
    let domain = utf16le(&creds.domain);
    let user = utf16le(&creds.user);
    let workstation = utf16le(&creds.workstation);
    let flags = (challenge.flags & CLIENT_FLAGS) | NEGOTIATE_UNICODE | NEGOTIATE_NTLM;
    let payloads: [&[u8]; 6] = [&r.lm_response, &r.nt_response, &domain, &user, &workstation, &[]];
    const HEADER: usize = 64;
    let mut m = Vec::with_capacity(HEADER + payloads.iter().map(|p| p.len()).sum::<usize>());
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&3u32.to_le_bytes());
    let mut offset = HEADER;
    for p in payloads {
        // Field lengths are u16 on the wire; user names and target info are
        // far below that, and a truncated length would only fail the login.
        let len = u16::try_from(p.len()).unwrap_or(u16::MAX);
        m.extend_from_slice(&len.to_le_bytes());
        m.extend_from_slice(&len.to_le_bytes());
        m.extend_from_slice(&(offset as u32).to_le_bytes());
        offset += p.len();
    }
    m.extend_from_slice(&flags.to_le_bytes());
    for p in payloads {
        m.extend_from_slice(p);
    }
    m
}

/// Converts Unix seconds to a Windows FILETIME.
pub fn filetime_from_unix(secs: i64) -> u64 {
    const EPOCH_DIFF: i64 = 11_644_473_600;
    ((secs + EPOCH_DIFF).max(0) as u64) * 10_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
            .collect()
    }

    /// MS-NLMP 4.2.1 common values and 4.2.4 NTLMv2 authentication results.
    fn spec() -> (NtlmCredentials, Challenge) {
        let creds = NtlmCredentials {
            domain: "Domain".into(),
            user: "User".into(),
            password: "Password".into(),
            workstation: "COMPUTER".into(),
        };
        // 4.2.4: AV pairs MsvAvNbDomainName "Domain", MsvAvNbComputerName "Server", EOL.
        let target_info = hex("02 00 0c 00 44 00 6f 00 6d 00 61 00 69 00 6e 00
             01 00 0c 00 53 00 65 00 72 00 76 00 65 00 72 00 00 00 00 00");
        let challenge = Challenge {
            flags: 0xe28a_8233,
            server_challenge: [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef],
            target_info,
        };
        (creds, challenge)
    }

    #[test]
    fn ms_nlmp_ntowf_v2() {
        assert_eq!(
            ntowf_v2("Password", "User", "Domain").to_vec(),
            hex("0c 86 8a 40 3b fd 7a 93 a3 00 1e f2 2e f0 2e 3f")
        );
    }

    #[test]
    fn ms_nlmp_v2_responses() {
        let (creds, challenge) = spec();
        let r = v2_response(&creds, &challenge, [0xaa; 8], 0);
        assert_eq!(
            r.lm_response,
            hex("86 c3 50 97 ac 9c ec 10 25 54 76 4a 57 cc cc 19 aa aa aa aa aa aa aa aa")
        );
        assert_eq!(
            r.nt_proof_str.to_vec(),
            hex("68 cd 0a b8 51 e5 1c 96 aa bc 92 7b eb ef 6a 1c")
        );
        assert_eq!(
            r.session_base_key.to_vec(),
            hex("8d e4 0c ca db c1 4a 82 f1 5c b0 ad 0d e9 5c a3")
        );
    }

    #[test]
    fn messages_are_well_formed() {
        let n = negotiate_message();
        assert_eq!(&n[..8], SIGNATURE);
        assert_eq!(n.len(), 32);
        let (creds, challenge) = spec();
        let m = authenticate_message(&creds, &challenge, [0xaa; 8], 0);
        assert_eq!(&m[..8], SIGNATURE);
        assert_eq!(u32_at(&m, 8).ok(), Some(3));
        // The user name field points at "User" in UTF-16LE.
        let len = usize::from(u16_at(&m, 36).unwrap_or(0));
        let off = u32_at(&m, 40).unwrap_or(0) as usize;
        assert_eq!(m.get(off..off + len), Some(utf16le("User").as_slice()));
    }

    #[test]
    fn challenge_parsing_is_bounded() {
        assert!(Challenge::parse(b"").is_err());
        assert!(Challenge::parse(b"NTLMSSP\0\x02\0\0\0").is_err());
        let mut c = b"NTLMSSP\0".to_vec();
        c.extend_from_slice(&2u32.to_le_bytes());
        c.extend_from_slice(&[0; 8]);
        c.extend_from_slice(&CLIENT_FLAGS.to_le_bytes());
        c.extend_from_slice(&[7; 8]);
        c.extend_from_slice(&[0; 8]);
        // Target info claiming 100 bytes at offset 1000.
        c.extend_from_slice(&100u16.to_le_bytes());
        c.extend_from_slice(&100u16.to_le_bytes());
        c.extend_from_slice(&1000u32.to_le_bytes());
        assert!(Challenge::parse(&c).is_err());
        c.truncate(40);
        assert_eq!(Challenge::parse(&c).ok().map(|c| c.server_challenge), Some([7; 8]));
    }

    #[test]
    fn server_timestamp_is_used_and_zeroes_lm() {
        let (creds, mut challenge) = spec();
        let mut ti = vec![7, 0, 8, 0];
        ti.extend_from_slice(&42u64.to_le_bytes());
        ti.extend_from_slice(&[0, 0, 0, 0]);
        challenge.target_info = ti;
        assert_eq!(challenge.timestamp(), Some(42));
        let r = v2_response(&creds, &challenge, [1; 8], 99);
        assert_eq!(r.lm_response, vec![0; 24]);
        assert_eq!(&r.nt_response[24..32], &42u64.to_le_bytes());
    }
}
